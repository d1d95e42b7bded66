//! The migration runbook: the steps an operator would take, in order, each resumable from the task's metadata.

use crate::cdc::position::Position;
use crate::cdc::sync::{self, Control, SyncReport};
use crate::codes;
use crate::config::{ConflictMode, MigrationType, TaskConfig};
use crate::copy::{self, CopyOptions, CopyReport};
use crate::error::{Error, Result, ResultExt};
use crate::failpoint;
use crate::meta::{Meta, Phase, Step};
use crate::mysql::conn::{Role, Server, ServerInfo};
use crate::precheck::Outcome;
use crate::progress::CopyProgress;
use crate::schema::apply::{self, ApplyReport};
use crate::schema::introspect;
use crate::schema::model::{NameMap, ObjectKind, SourceSchema};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// How to run (not part of the task file).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Draw progress bars on the terminal.
    pub progress: bool,
    /// Steers incremental sync (stop, or drain up to the source's position) and pauses the copy; None runs until
    /// stopped by an error.
    pub control: Option<watch::Receiver<Control>>,
    /// The admin endpoint's handles: the throttles it changes at runtime, and its address to record in the
    /// metadata (for `ferry pause|resume|stop|throttle`). None: throttles from the task file.
    pub live: Option<(std::sync::Arc<crate::admin::Live>, std::net::SocketAddr)>,
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
    run_marking(cfg, opts, &std::sync::atomic::AtomicBool::new(false)).await
}

/// `run`, setting `claimed` once the run took the task (past its precheck, under its generation): errors before
/// that (bad input, a failed precheck) are never auto-resumed.
async fn run_marking(
    cfg: &TaskConfig,
    opts: &RunOptions,
    claimed: &std::sync::atomic::AtomicBool,
) -> Result<RunReport> {
    let started = Instant::now();

    // 0. A task that was cut over or released does not run again, whatever its precheck would say.
    refuse_finished(cfg).await?;

    // 1. Precheck: every item (servers, binlog, selected objects, names on the destination); a failure stops the
    //    task before anything is written, warnings are logged (acknowledged ones are not).
    let pre = crate::precheck::run(cfg).await;
    for i in pre.items.iter().filter(|i| i.outcome == Outcome::Warning) {
        warn!(
            code = i.code.unwrap_or("-"),
            "precheck: {}: {}", i.name, i.found
        );
    }
    if let Some(e) = pre.refusal() {
        return Err(e);
    }

    // 2. Connect to both servers (credentials, TLS, versions).
    let source = Server::connect(&cfg.source, "source").await?;
    let destination = Server::connect(&cfg.destination, "destination").await?;
    info!(source = %source.info.version, destination = %destination.info.version, "connected");

    // 3. Open the task's metadata on the destination and derive where the task stands.
    //    The process writes under the task's current generation: a cutover moves it on, and this process's
    //    writes are fenced off from then on (FERRY-CUT-001); a task already cut over does not run (FERRY-CUT-002).
    let mut meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let dst_pool = destination.pool(Role::Write, 2);
    let mut dst = dst_pool.get_conn().await.ctx("destination")?;
    meta.ensure(&mut dst).await?;
    meta.claim(&mut dst).await?;
    claimed.store(true, std::sync::atomic::Ordering::Relaxed);
    let meta = meta;
    if let Some((_, addr)) = &opts.live {
        meta.record_admin(&mut dst, &addr.to_string()).await?;
        info!(admin = %addr, "admin endpoint");
    }
    let phase_at_start = meta.load(&mut dst).await?.phase();
    info!(task = %cfg.task.name, phase = phase_at_start.as_str(), "task state");

    let result = steps(cfg, opts, &source, &destination, &meta, &mut dst).await;
    // The session the steps used may have died in an outage they rode out (sync retries on its own sessions):
    // what follows uses a fresh one.
    drop(dst);
    let mut dst = match dst_pool.get_conn().await {
        Ok(c) => c,
        Err(reconnect) => {
            let _ = dst_pool.disconnect().await;
            return Err(match result {
                Ok(_) => Error::from(reconnect).context("destination, after the run"),
                Err(e) => e.context(format!(
                    "task `{}` stopped (the destination could not be reached to record it; run again to resume)",
                    cfg.task.name
                )),
            });
        }
    };
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
            // A process a cutover fenced off says so, whatever it stumbled on first.
            let e = meta.fenced_instead(&mut dst, e).await;
            // Record the failure durably so `ferry status` shows it; the run can be resumed. A stop the
            // operator asked for is not a failure.
            if e.code().id != codes::RUN_STOPPED.id {
                let _ = meta.mark_failed(&mut dst, &e).await;
            }
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

/// Refuses (FERRY-CUT-002) a task whose metadata says it was cut over or released; a destination that cannot
/// be read here is left to the precheck to report.
async fn refuse_finished(cfg: &TaskConfig) -> Result<()> {
    let Ok(destination) = Server::connect(&cfg.destination, "destination").await else {
        return Ok(());
    };
    let pool = destination.pool(Role::Introspect, 1);
    let state = match pool.get_conn().await {
        Ok(mut c) => Meta::new(&cfg.metadata.schema, &cfg.task.name)
            .load(&mut c)
            .await
            .map(|r| r.state()),
        Err(_) => Ok("unknown"),
    };
    let _ = pool.disconnect().await;
    match state? {
        s @ ("cut_over" | "released") => Err(Error::definite(
            &codes::CUT_DONE,
            format!(
                "task `{}` was {}; it does not run again (use a new task name)",
                cfg.task.name,
                if s == "released" {
                    "released (its metadata removed)"
                } else {
                    "cut over: the destination belongs to the application now"
                }
            ),
        )),
        _ => Ok(()),
    }
}

/// `run`, started again from its checkpoint after a failure that may heal (a retry window that ran out, a
/// server unreachable) of a task it had taken, for `retry.auto_resume_hours` after the first one, waiting a minute, then doubling up to
/// 30 minutes between tries. Alerts (`[alerts]`) go out on each resume and on the final failure.
pub async fn run_resuming(cfg: &TaskConfig, opts: &RunOptions) -> Result<RunReport> {
    let window = Duration::from_secs(cfg.retry.auto_resume_hours * 60 * crate::retry::minute_s());
    let mut first_failure: Option<Instant> = None;
    let mut wait = Duration::from_secs(crate::retry::minute_s());
    let claimed = std::sync::atomic::AtomicBool::new(false);
    loop {
        let e = match run_marking(cfg, opts, &claimed).await {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let since = *first_failure.get_or_insert_with(Instant::now);
        // Only a task that ran: bad input or a failed precheck on the first try is the operator's to fix.
        let heals = claimed.load(std::sync::atomic::Ordering::Relaxed)
            && (e.is_transient() || e.code().id == codes::CON_UNREACHABLE.id);
        let stopped = opts
            .control
            .as_ref()
            .is_some_and(|c| *c.borrow() == Control::Stop);
        if !heals || stopped || since.elapsed() + wait > window {
            crate::alerts::send(
                &cfg.alerts,
                &crate::alerts::Alert::new(
                    &cfg.task.name,
                    "failed",
                    Some(e.code().id),
                    e.to_string(),
                    None,
                ),
            )
            .await;
            return Err(e);
        }
        warn!(error = %e, wait_s = wait.as_secs(), "task failed; resuming from its checkpoint (retry.auto_resume_hours)");
        crate::alerts::send(
            &cfg.alerts,
            &crate::alerts::Alert::new(
                &cfg.task.name,
                "resuming",
                Some(e.code().id),
                format!("resuming in {} s: {e}", wait.as_secs()),
                None,
            ),
        )
        .await;
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30 * crate::retry::minute_s()));
    }
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
    // 4. Read the selected objects from the source (every run: the copy needs the table shapes). An incremental
    //    task that copied nothing yet takes its binlog start position P0 first and reads the schema as of it:
    //    the binlog between P0 and the end of the read must hold no DDL on the selection, else both are taken
    //    again (a DDL there would be replayed onto shapes that already have it, or decoded with the wrong ones).
    debug!("reading the selected objects from the source");
    let state = meta.load(dst).await?;
    let incremental = cfg.has(MigrationType::Incremental);
    let copied_any = meta.progress(dst).await?.iter().any(|t| t.chunks_done > 0);
    let p0_recorded = incremental && meta.cdc(dst).await?.p0.is_some();
    // A P0 recorded before the schema step finished, with nothing copied, is taken again with a fresh read.
    let take_p0 = incremental && (!p0_recorded || (!state.schema_pre_done && !copied_any));
    if take_p0 && (state.full_done || copied_any) {
        return Err(Error::definite(
            &codes::CDC_NO_START,
            format!(
                "task `{}` copied rows without a recorded binlog position",
                cfg.task.name
            ),
        ));
    }
    let src_pool = source.pool(Role::Introspect, 1);
    let mut src = src_pool.get_conn().await.ctx("source")?;
    // Once copied, the selected tables may have been renamed or dropped on the source (sync follows the binlog).
    let mut attempt = 0;
    let (mut schema, p0) = loop {
        attempt += 1;
        let p0 = match (&cfg.incremental.start, take_p0) {
            (_, false) => None,
            (Some(s), true) => Some(Position::given(source.info.flavor, &s.file, s.pos, &s.gtid)),
            (None, true) => Some(Position::start_point(&mut src, source.info.flavor).await?),
        };
        failpoint::hit(failpoint::names::P0_TAKEN).await?;
        let schema = introspect::read_task(&mut src, cfg, state.full_done).await?;
        // A start position the task file gives is the operator's: the schema is read as it is now.
        let Some(p) = p0.as_ref().filter(|_| cfg.incremental.start.is_none()) else {
            break (schema, p0);
        };
        let after = Position::current(&mut src, source.info.flavor).await?;
        let read = crate::cdc::start::Read {
            tables: schema
                .tables
                .iter()
                .map(|t| (t.db.clone(), t.name.clone()))
                .collect(),
            // Databases the selection takes whole (`objects.databases` entries and patterns).
            whole: schema
                .databases
                .iter()
                .filter(|d| {
                    cfg.objects
                        .databases
                        .iter()
                        .any(|p| wildmatch::WildMatch::new(p).matches(&d.name))
                })
                .map(|d| d.name.clone())
                .collect(),
        };
        let ddl = crate::cdc::start::ddl_between(
            source,
            p,
            &after,
            cfg.dump_server_id().wrapping_add(2).max(1),
            &read,
        )
        .await?;
        if ddl.is_empty() {
            break (schema, p0);
        }
        if attempt >= crate::cdc::start::ATTEMPTS_MAX {
            return Err(Error::definite(
                &codes::CDC_START_RACE,
                format!(
                    "{attempt} attempts: DDL on the selected objects ran each time between the start position and \
                     the schema read; last: {}",
                    ddl.join("; ")
                ),
            ));
        }
        warn!(p0 = %p, ddl = %ddl.join("; "), "DDL on the selection between P0 and the schema read: taking both again");
    };
    drop(src);
    let _ = src_pool.disconnect().await;
    if let Some(engine) = &cfg.schema.destination_engine {
        for t in &mut schema.tables {
            t.create_sql = crate::schema::rewrite::set_engine(&t.create_sql, engine)?;
        }
    }
    // ignore_and_proceed: tables already on the destination get only the columns they have.
    let adopt = cfg.schema.conflict_mode == ConflictMode::IgnoreAndProceed;
    if adopt {
        let names = NameMap::new(cfg);
        let on_destination: Vec<_> = schema.tables.iter().map(|t| t.mapped(&names)).collect();
        for e in crate::schema::existing::compare(dst, &on_destination).await? {
            let Some(i) = on_destination
                .iter()
                .position(|t| t.db == e.db && t.name == e.name)
            else {
                continue;
            };
            // `missing` names the destination's columns; `omitted` keeps the source's.
            let t = &mut schema.tables[i];
            for (c, mapped) in t.columns.iter().zip(&on_destination[i].columns) {
                if e.missing.contains(&mapped.name) && !t.omitted.contains(&c.name) {
                    t.omitted.push(c.name.clone());
                }
            }
        }
    }
    for s in &schema.skipped {
        tracing::warn!("{s}");
    }

    // The start position is recorded with the shapes as of it, before anything is created or copied.
    if let Some(p0) = &p0 {
        meta.record_p0(dst, p0, &schema.tables).await?;
        info!(p0 = %p0, "binlog start position recorded");
    }

    // 5. Schema, pre-data: databases, tables with their FKs, functions, procedures, views.
    let mut schema_pre = ApplyReport::default();
    if cfg.has(MigrationType::Schema) && !state.schema_pre_done {
        // Created under their destination names (`[mapping]`).
        let on_destination = schema.mapped(&NameMap::new(cfg));
        schema_pre = apply::pre_data(dst, meta, &on_destination, adopt).await?;
    }
    if !state.schema_pre_done {
        meta.mark_done(dst, Step::SchemaPre).await?;
    }
    failpoint::hit(failpoint::names::SCHEMA_CREATED).await?;

    // 6. (P0 was recorded with the schema it goes with, in step 4.)

    // 7. Full copy: chunk by key, copy in parallel, each chunk committed with its checkpoint.
    let mut copy_report = None;
    if cfg.has(MigrationType::Full) && !state.full_done {
        debug!("full copy");
        let progress = Arc::new(CopyProgress::new(opts.progress));
        let copy_opts = CopyOptions {
            workers: cfg.full.workers,
            chunk_rows: cfg.full.chunk_rows,
            park_displaced: incremental,
            keep_existing: adopt,
            names: NameMap::new(cfg),
            retry: crate::retry::Windows::new(&cfg.retry),
            throttle: match &opts.live {
                Some((live, _)) => live.full.clone(),
                None => std::sync::Arc::new(crate::throttle::Throttle::new(cfg.full.rates())),
            },
            control: opts.control.clone(),
            load_data: cfg.full.load_data,
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
    // 8. P1: the source's position once every row is copied; catch-up (idempotent) mode ends there. Without a
    //    copy there is nothing to catch up: the destination holds the source as of P0 and is applied exactly.
    let cdc = meta.cdc(dst).await?;
    if incremental && cdc.p1.is_none() {
        let p1 = match (&cdc.p0, cfg.has(MigrationType::Full)) {
            (Some(p0), false) => p0.clone(),
            _ => {
                let pool = source.pool(Role::Introspect, 1);
                let mut c = pool.get_conn().await.ctx("source")?;
                let p1 = Position::current(&mut c, source.info.flavor).await?;
                drop(c);
                let _ = pool.disconnect().await;
                p1
            }
        };
        meta.record_p1(dst, &p1).await?;
        info!(p1 = %p1, "end-of-copy position recorded");
    }
    if !state.full_done {
        meta.mark_done(dst, Step::Full).await?;
    }
    failpoint::hit(failpoint::names::COPY_DONE).await?;

    // 9. Incremental: apply the binlog from the checkpoint (P0 at first) until stopped. Triggers and events wait
    //    for cutover: a trigger on the destination would fire again for rows the binlog already carries.
    if incremental {
        let (_keep, default_rx) = watch::channel(Control::Run);
        let control = opts.control.clone().unwrap_or(default_rx);
        let throttle = match &opts.live {
            Some((live, _)) => live.incremental.clone(),
            None => std::sync::Arc::new(crate::throttle::Throttle::new(cfg.incremental.rates())),
        };
        failpoint::hit(failpoint::names::SYNC_STARTED).await?;
        let report = sync::run_throttled(cfg, source, destination, meta, control, throttle).await?;
        return Ok((
            schema,
            schema_pre,
            copy_report,
            Some(report),
            ApplyReport::default(),
        ));
    }

    // 10. Schema, post-data: triggers (would fire again for copied rows if created earlier) and events (disabled
    //    until cutover, so they do not write to the destination while it is still a copy).
    let mut schema_post = ApplyReport::default();
    if cfg.has(MigrationType::Schema) && !state.schema_post_done {
        let on_destination = schema.mapped(&NameMap::new(cfg));
        schema_post = apply::post_data(dst, meta, &on_destination).await?;
    }
    if !state.schema_post_done {
        meta.mark_done(dst, Step::SchemaPost).await?;
    }
    Ok((schema, schema_pre, copy_report, None, schema_post))
}
