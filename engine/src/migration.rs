//! The migration runbook: the steps an operator would take, in order, each resumable from the task's metadata.

use crate::cdc::position::Position;
use crate::cdc::sync::{self, Control, SyncReport};
use crate::codes;
use crate::config::{MigrationType, TaskConfig};
use crate::copy::{self, CopyOptions, CopyReport};
use crate::error::{Error, Result, ResultExt};
use crate::meta::{Meta, Phase, Step};
use crate::mysql::conn::{Role, Server, ServerInfo};
use crate::progress::CopyProgress;
use crate::schema::apply::{self, ApplyReport};
use crate::schema::introspect;
use crate::schema::model::{ObjectKind, SourceSchema};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;
use tracing::{debug, info};

/// How to run (not part of the task file).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Draw progress bars on the terminal.
    pub progress: bool,
    /// Steers incremental sync (stop, or drain up to the source's position); None runs until stopped by an error.
    pub control: Option<watch::Receiver<Control>>,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub task: String,
    pub source: ServerInfo,
    pub destination: ServerInfo,
    pub phase_at_start: Phase,
    pub phase: Phase,
    pub objects: Vec<(String, usize)>,
    pub skipped: Vec<String>,
    pub schema_pre: ApplyReport,
    pub copy: Option<CopyReport>,
    pub sync: Option<SyncReport>,
    pub schema_post: ApplyReport,
    pub seconds: f64,
}

/// Runs the task's steps, resuming where the metadata says it stopped. With incremental, the run keeps syncing
/// until `opts.control` says stop or drain.
pub async fn run(cfg: &TaskConfig, opts: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();

    // 1. Connect to both servers (credentials, TLS, versions).
    let source = Server::connect(&cfg.source, "source").await?;
    let destination = Server::connect(&cfg.destination, "destination").await?;
    info!(source = %source.info.version, destination = %destination.info.version, "connected");

    // 2. Open the task's metadata on the destination and derive where the task stands.
    let meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let dst_pool = destination.pool(Role::Write, 2);
    let mut dst = dst_pool.get_conn().await.ctx("destination")?;
    meta.ensure(&mut dst).await?;
    let phase_at_start = meta.load(&mut dst).await?.phase();
    info!(task = %cfg.task.name, phase = phase_at_start.as_str(), "task state");

    let result = steps(cfg, opts, &source, &destination, &meta, &mut dst).await;
    let report = match result {
        Ok((schema, schema_pre, copy, sync, schema_post)) => {
            let phase = meta.load(&mut dst).await?.phase();
            RunReport {
                task: cfg.task.name.clone(),
                source: source.info.clone(),
                destination: destination.info.clone(),
                phase_at_start,
                phase,
                objects: [
                    ObjectKind::Database,
                    ObjectKind::Table,
                    ObjectKind::View,
                    ObjectKind::Function,
                    ObjectKind::Procedure,
                    ObjectKind::Trigger,
                    ObjectKind::Event,
                ]
                .iter()
                .map(|k| (k.as_str().to_string(), schema.count(*k)))
                .collect(),
                skipped: schema.skipped,
                schema_pre,
                copy,
                sync,
                schema_post,
                seconds: started.elapsed().as_secs_f64(),
            }
        }
        Err(e) => {
            // Record the failure durably so `ferry status` shows it; the run can be resumed.
            let _ = meta.mark_failed(&mut dst, &e).await;
            let phase = meta
                .load(&mut dst)
                .await
                .map(|t| t.phase())
                .unwrap_or(phase_at_start);
            // Pool::disconnect waits for every connection to come back: return ours first.
            drop(dst);
            let _ = dst_pool.disconnect().await;
            return Err(e.context(format!(
                "task `{}` stopped in phase {} (the destination holds what was done so far; run again to resume)",
                cfg.task.name,
                phase.as_str()
            )));
        }
    };
    drop(dst);
    let _ = dst_pool.disconnect().await;
    Ok(report)
}

type Steps = (
    SourceSchema,
    ApplyReport,
    Option<CopyReport>,
    Option<SyncReport>,
    ApplyReport,
);

async fn steps(
    cfg: &TaskConfig,
    opts: &RunOptions,
    source: &Server,
    destination: &Server,
    meta: &Meta,
    dst: &mut mysql_async::Conn,
) -> Result<Steps> {
    // 3. Read the selected objects from the source (every run: the copy needs the table shapes).
    debug!("reading the selected objects from the source");
    let src_pool = source.pool(Role::Introspect, 1);
    let mut src = src_pool.get_conn().await.ctx("source")?;
    let schema = introspect::read(&mut src, &cfg.objects, &cfg.metadata.schema).await?;
    drop(src);
    let _ = src_pool.disconnect().await;
    for s in &schema.skipped {
        tracing::warn!("{s}");
    }

    // 4. Schema, pre-data: databases, tables with their FKs, functions, procedures, views.
    let mut schema_pre = ApplyReport::default();
    let state = meta.load(dst).await?;
    if cfg.has(MigrationType::Schema) && !state.schema_pre_done {
        schema_pre = apply::pre_data(dst, meta, &schema).await?;
    }
    if !state.schema_pre_done {
        meta.mark_done(dst, Step::SchemaPre).await?;
    }

    // 5. Binlog start position P0, recorded before any row is copied: replaying from it covers every change the
    //    copy may have missed.
    let incremental = cfg.has(MigrationType::Incremental);
    if incremental && meta.cdc(dst).await?.p0.is_none() {
        let copied_any = meta.progress(dst).await?.iter().any(|t| t.chunks_done > 0);
        if state.full_done || copied_any {
            return Err(Error::definite(
                &codes::CDC_NO_START,
                format!(
                    "task `{}` copied rows without a recorded binlog position",
                    cfg.task.name
                ),
            ));
        }
        let pool = source.pool(Role::Introspect, 1);
        let mut c = pool.get_conn().await.ctx("source")?;
        let p0 = match &cfg.incremental.start {
            Some(s) => Position::given(source.info.flavor, &s.file, s.pos, &s.gtid),
            None => Position::start_point(&mut c, source.info.flavor).await?,
        };
        drop(c);
        let _ = pool.disconnect().await;
        meta.record_p0(dst, &p0).await?;
        info!(p0 = %p0, "binlog start position recorded");
    }

    // 6. Full copy: chunk by key, copy in parallel, each chunk committed with its checkpoint.
    let mut copy_report = None;
    if cfg.has(MigrationType::Full) && !state.full_done {
        debug!("full copy");
        let progress = Arc::new(CopyProgress::new(opts.progress));
        let copy_opts = CopyOptions {
            workers: cfg.full.workers,
            chunk_rows: cfg.full.chunk_rows,
            park_displaced: incremental,
            ..CopyOptions::default()
        };
        copy_report = Some(
            copy::run(
                source,
                destination,
                meta,
                &schema.tables,
                &copy_opts,
                progress,
            )
            .await?,
        );
    }
    // 7. P1: the source's position once every row is copied; catch-up (idempotent) mode ends there.
    if incremental && meta.cdc(dst).await?.p1.is_none() {
        let pool = source.pool(Role::Introspect, 1);
        let mut c = pool.get_conn().await.ctx("source")?;
        let p1 = Position::current(&mut c, source.info.flavor).await?;
        drop(c);
        let _ = pool.disconnect().await;
        meta.record_p1(dst, &p1).await?;
        info!(p1 = %p1, "end-of-copy position recorded");
    }
    if !state.full_done {
        meta.mark_done(dst, Step::Full).await?;
    }

    // 8. Incremental: apply the binlog from the checkpoint (P0 at first) until stopped. Triggers and events wait
    //    for cutover: a trigger on the destination would fire again for rows the binlog already carries.
    if incremental {
        let (_keep, default_rx) = watch::channel(Control::Run);
        let control = opts.control.clone().unwrap_or(default_rx);
        let report = sync::run(cfg, source, destination, meta, &schema.tables, control).await?;
        return Ok((
            schema,
            schema_pre,
            copy_report,
            Some(report),
            ApplyReport::default(),
        ));
    }

    // 9. Schema, post-data: triggers (would fire again for copied rows if created earlier) and events (disabled
    //    until cutover, so they do not write to the destination while it is still a copy).
    let mut schema_post = ApplyReport::default();
    if cfg.has(MigrationType::Schema) && !state.schema_post_done {
        schema_post = apply::post_data(dst, meta, &schema).await?;
    }
    if !state.schema_post_done {
        meta.mark_done(dst, Step::SchemaPost).await?;
    }
    Ok((schema, schema_pre, copy_report, None, schema_post))
}
