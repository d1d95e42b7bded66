//! Continuous sync: a binlog reader feeding the applier through a bounded queue, a heartbeat on the source,
//! restarts from the durable checkpoint on transient failures, and the stop conditions (signal, caught up).

use super::apply::{Applier, Mode};
use super::ddl::Name;
use super::event::{Item, Reshape};
use super::position::Position;
use super::recopy;
use super::scope::Scope;
use super::stream::{BinlogReader, StartBy};
use crate::codes;
use crate::config::TaskConfig;
use crate::error::{Error, Result, ResultExt};
use crate::meta::Meta;
use crate::mysql::conn::{Flavor, Role, Server};
use crate::mysql::quote::{ident, string};
use crate::schema::model::Table;
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

/// What the operator (or a test) asks of a running sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep applying.
    Run,
    /// Apply up to the source's position at the moment this was asked, then stop.
    Drain,
    /// Commit what is whole and stop now.
    Stop,
    /// Commit what is whole and apply nothing more until asked to run (or drain, or stop) again; the reader
    /// fills its bounded queue and waits. The copy takes no new chunk while paused.
    Pause,
}

/// How one sync ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncReport {
    pub transactions: u64,
    pub rows: u64,
    pub commits: u64,
    pub parked: u64,
    pub mode: Mode,
    pub checkpoint: Option<Position>,
    pub restarts: u32,
    pub seconds: f64,
    /// Seconds the applier waited for the binlog reader with nothing to apply (idle source, or a reader slower
    /// than the applier).
    pub reader_wait_s: f64,
    /// "drained" (caught up with the source) or "stopped".
    pub ended: &'static str,
}

/// Runs sync from the task's checkpoint until `control` says Drain (and the source is reached) or Stop.
pub async fn run(
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
    meta: &Meta,
    control: watch::Receiver<Control>,
) -> Result<SyncReport> {
    let throttle = std::sync::Arc::new(crate::throttle::Throttle::new(cfg.incremental.rates()));
    run_throttled(cfg, source, destination, meta, control, throttle).await
}

/// `run` under a throttle the caller keeps (the admin endpoint changes its rates while sync runs).
pub async fn run_throttled(
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
    meta: &Meta,
    mut control: watch::Receiver<Control>,
    throttle: std::sync::Arc<crate::throttle::Throttle>,
) -> Result<SyncReport> {
    let started = Instant::now();
    let mut report = SyncReport {
        transactions: 0,
        rows: 0,
        commits: 0,
        parked: 0,
        mode: Mode::CatchUp,
        checkpoint: None,
        restarts: 0,
        seconds: 0.0,
        reader_wait_s: 0.0,
        ended: "stopped",
    };
    let heartbeat = if cfg.incremental.heartbeat {
        Some(tokio::spawn(heartbeat(
            source.clone(),
            cfg.metadata.schema.clone(),
            cfg.task.name.clone(),
        )))
    } else {
        None
    };
    let mut retrier = crate::retry::Retrier::new(crate::retry::Windows::new(&cfg.retry));
    let mut target: Option<Position> = None;
    let mut applied_before = 0u64;
    let mut recopies = 0u32;
    let result = loop {
        match attempt(
            cfg,
            source,
            destination,
            meta,
            &mut control,
            &mut target,
            &mut report,
            &throttle,
        )
        .await
        {
            // Catch-up reached P1 after following cascades: the next attempt re-copies first. One round moves
            // P1 past every table recorded, so a second request in a run is a defect, not a loop to go round.
            Ok(RECOPY) if recopies < 2 => recopies += 1,
            Ok(RECOPY) => {
                break Err(Error::definite(
                    &codes::META_CORRUPT,
                    "catch-up asked for a second re-copy round after one ran",
                ))
            }
            Ok(ended) => {
                report.ended = ended;
                break Ok(());
            }
            Err(e) if e.is_transient() => {
                // An attempt that moved the checkpoint ends the failure episode before this one.
                if report.transactions > applied_before {
                    retrier.succeeded();
                }
                applied_before = report.transactions;
                let shown = e.to_string();
                match retrier.failed(e, "sync") {
                    Ok(backoff) => {
                        warn!(error = %shown, backoff_ms = backoff.as_millis() as u64, "sync interrupted; resuming from the checkpoint");
                        report.restarts += 1;
                        tokio::time::sleep(backoff).await;
                    }
                    Err(e) => break Err(e),
                }
            }
            Err(e) => break Err(e),
        }
    };
    if let Some(h) = heartbeat {
        h.abort();
    }
    result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What `apply_loop` returns when catch-up stopped at P1 for a re-copy round (see `recopy`).
const RECOPY: &str = "recopy";

#[allow(clippy::too_many_arguments)]
async fn attempt(
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
    meta: &Meta,
    control: &mut watch::Receiver<Control>,
    target: &mut Option<Position>,
    report: &mut SyncReport,
    throttle: &crate::throttle::Throttle,
) -> Result<&'static str> {
    let dst_pool = destination.pool(Role::Write, 1);
    let mut conn = dst_pool.get_conn().await.ctx("destination")?;
    meta.record_applier_session(&mut conn).await?;
    let state = meta.cdc(&mut conn).await?;
    let (Some(from), Some(mut p1)) = (state.resume_from().cloned(), state.p1.clone()) else {
        return Err(Error::definite(
            &codes::CDC_NO_START,
            "no start or end-of-copy position recorded",
        ));
    };
    report.checkpoint = Some(from.clone());

    // Before reading anything, check the source still has the binlog the checkpoint points into.
    let src_pool = source.pool(Role::Introspect, 1);
    let mut sconn = src_pool.get_conn().await.ctx("source")?;
    let logs: Vec<mysql_async::Row> = sconn
        .query("SHOW BINARY LOGS")
        .await
        .ctx("SHOW BINARY LOGS")?;
    let names: Vec<String> = logs
        .iter()
        .filter_map(|r| crate::schema::introspect::text(r, 0))
        .collect();
    if !names.iter().any(|n| n == from.file()) {
        drop(sconn);
        let _ = src_pool.disconnect().await;
        return Err(Error::definite(
            &codes::CDC_PURGED,
            format!(
                "the checkpoint {from} is in {}, which the source no longer has (oldest: {})",
                from.file(),
                names.first().map(String::as_str).unwrap_or("none")
            ),
        ));
    }
    drop(sconn);

    let (scope, tracked) = tracked_tables(cfg, meta, &mut conn).await?;

    // Catch-up reached P1 after following foreign key cascades: the tables they reached are re-copied from a
    // source snapshot, and P1 moves to it, before anything more is read (see `recopy`).
    let idempotent = cfg.schema.conflict_mode == crate::config::ConflictMode::IgnoreAndProceed;
    meta.ensure_recopy(&mut conn).await?;
    let recorded = meta.recopy(&mut conn).await?;
    let states: Vec<recopy::Recorded> = recorded.iter().map(Into::into).collect();
    match recopy::step(&states, &p1, &from, idempotent)? {
        recopy::Step::Nothing => {}
        recopy::Step::Finish(s) => {
            let names: Vec<(String, String)> = recorded
                .iter()
                .map(|r| (r.db.clone(), r.name.clone()))
                .collect();
            meta.recopy_finish(&mut conn, &s, &names).await?;
            info!(p1 = %s, "re-copy done before the last stop: P1 moved to its snapshot");
            p1 = s;
        }
        recopy::Step::Run => {
            let tables: Vec<&Table> = recopy::round_tables(&recorded, &tracked)
                .iter()
                .filter_map(|n| tracked.iter().find(|t| t.db == n.db && t.name == n.name))
                .collect();
            let ended = recopy::run(
                source,
                &mut conn,
                meta,
                &tables,
                &from,
                &crate::schema::model::NameMap::new(cfg),
                cfg.full.chunk_rows,
                throttle,
                control,
            )
            .await;
            match ended? {
                recopy::Ended::Done(s) => p1 = s,
                recopy::Ended::Stopped => {
                    drop(conn);
                    let _ = dst_pool.disconnect().await;
                    let _ = src_pool.disconnect().await;
                    return Ok("stopped");
                }
            }
        }
    }
    let by = match (&from, source.info.flavor) {
        (Position::MariaDb { gtid_list, .. }, Flavor::MariaDb) if !gtid_list.is_empty() => {
            StartBy::Gtid
        }
        _ => StartBy::FilePos,
    };
    let mut reader =
        BinlogReader::open_by(source, &from, by, cfg.dump_server_id(), &tracked).await?;
    info!(from = %from, by = ?by, mode = if from.cmp_in_log(&p1)?.is_lt() { "catch-up" } else { "exact" }, "sync: reading the binlog");
    let mut applier = Applier::new(
        conn,
        meta.clone(),
        from,
        p1,
        cfg.incremental.batch_rows,
        scope,
        &tracked,
        state.ddl_pending.clone(),
        cfg.schema.conflict_mode == crate::config::ConflictMode::IgnoreAndProceed,
        crate::schema::model::NameMap::new(cfg),
    )
    .await?;

    // The reader runs ahead of the applier by at most `queue_items` items (a big transaction streams through).
    // After a statement outside a transaction (DDL) it waits for the applier's shape changes, so the rows after
    // it decode against the table as the statement left it.
    let (tx, mut rx) = mpsc::channel::<Result<Item>>(cfg.incremental.queue_items);
    let (reshape_tx, mut reshape_rx) = mpsc::channel::<Vec<Reshape>>(1);
    let reader_task = tokio::spawn(async move {
        loop {
            let item = reader.next().await;
            let end = !matches!(item, Ok(Some(_)));
            let ddl = matches!(
                item,
                Ok(Some(Item::Query {
                    in_transaction: false,
                    ..
                }))
            );
            let item = match item {
                Ok(Some(i)) => Ok(i),
                Ok(None) => Err(Error::Transient {
                    detail: "the source ended the binlog stream".into(),
                    mysql_errno: None,
                }),
                Err(e) => Err(e),
            };
            if tx.send(item).await.is_err() || end {
                return;
            }
            if ddl {
                // The applier answers every such statement (or is gone, and so is this task's purpose).
                let Some(changes) = reshape_rx.recv().await else {
                    return;
                };
                for c in changes {
                    reader.decoder_mut().reshape(c);
                }
            }
        }
    });

    let outcome = apply_loop(
        source,
        &mut applier,
        Pipe {
            items: &mut rx,
            reshape: &reshape_tx,
            throttle,
        },
        control,
        target,
        &src_pool,
        report,
    )
    .await;
    reader_task.abort();
    let commit = if outcome.is_ok() {
        applier.commit().await
    } else {
        Ok(())
    };
    report.transactions += applier.stats.transactions;
    report.rows += applier.stats.rows;
    report.commits += applier.stats.commits;
    report.parked += applier.stats.parked;
    report.mode = applier.mode();
    report.checkpoint = Some(applier.committed().clone());
    applier.close().await;
    let _ = dst_pool.disconnect().await;
    let _ = src_pool.disconnect().await;
    commit?;
    outcome
}

/// The applier's ends of the channels to the reader (items in, shape changes back) and the rate items are taken at.
struct Pipe<'a> {
    items: &'a mut mpsc::Receiver<Result<Item>>,
    reshape: &'a mpsc::Sender<Vec<Reshape>>,
    throttle: &'a crate::throttle::Throttle,
}

async fn apply_loop(
    source: &Server,
    applier: &mut Applier,
    pipe: Pipe<'_>,
    control: &mut watch::Receiver<Control>,
    target: &mut Option<Position>,
    src_pool: &mysql_async::Pool,
    report: &mut SyncReport,
) -> Result<&'static str> {
    let mut last_log = Instant::now();
    let mut logged = (applier.stats.transactions, applier.stats.rows);
    let tick = Duration::from_millis(200);
    loop {
        let asked = *control.borrow();
        match asked {
            Control::Stop => return Ok("stopped"),
            // A pause in the middle of a source transaction takes effect at its end: the destination never
            // holds half of one, and a paused applier must not sit on its row locks.
            Control::Pause if !applier.mid_transaction() => {
                applier.commit().await?;
                info!("sync paused");
                while *control.borrow() == Control::Pause {
                    if control.changed().await.is_err() {
                        return Ok("stopped");
                    }
                }
                info!("sync resumed");
                continue;
            }
            Control::Drain if target.is_none() => {
                let mut c = src_pool.get_conn().await.ctx("source")?;
                let p = Position::current(&mut c, source.info.flavor).await?;
                info!(target = %p, "sync: draining up to the source's current position");
                *target = Some(p);
            }
            _ => {}
        }
        let starved = pipe.items.is_empty().then(Instant::now);
        tokio::select! {
            item = pipe.items.recv() => {
                if let Some(since) = starved {
                    report.reader_wait_s += since.elapsed().as_secs_f64();
                }
                let Some(item) = item else {
                    return Err(Error::Transient { detail: "binlog reader stopped".into(), mysql_errno: None });
                };
                let item = item?;
                if let Item::Rows { rows, .. } = &item {
                    // Sizing every value is only worth it when a byte rate is set (the hot path otherwise).
                    let bytes: u64 = if pipe.throttle.bytes.limited() {
                        rows.iter()
                            .flat_map(|(b, a)| b.iter().chain(a.iter()))
                            .flat_map(|image| image.iter().map(crate::value::Value::size_bytes))
                            .sum()
                    } else {
                        0
                    };
                    pipe.throttle.rows(rows.len() as u64, bytes).await;
                }
                let idle = pipe.items.is_empty();
                if let Some(changes) = applier.apply(item, idle).await? {
                    if pipe.reshape.send(changes).await.is_err() {
                        return Err(Error::transient("binlog reader stopped"));
                    }
                }
                if applier.recopy_due() {
                    return Ok(RECOPY);
                }
            }
            _ = control.changed() => continue,
            _ = tokio::time::sleep(tick) => {
                applier.commit().await?;
            }
        }
        if let Some(t) = target.as_ref() {
            // Between a re-copy round and its snapshot's position the destination is not the source as of any
            // one position: a drain goes on to the snapshot.
            if applier.pending() == 0
                && applier.position().cmp_in_log(t)?.is_ge()
                && !applier.before_snapshot()?
            {
                return Ok("drained");
            }
        }
        if last_log.elapsed() >= Duration::from_secs(10) {
            let secs = last_log.elapsed().as_secs_f64();
            let (t, r) = (
                report.transactions + applier.stats.transactions,
                report.rows + applier.stats.rows,
            );
            info!(
                at = %applier.position(),
                mode = ?applier.mode(),
                transactions_per_s = ((t - logged.0) as f64 / secs) as u64,
                rows_per_s = ((r - logged.1) as f64 / secs) as u64,
                "sync"
            );
            logged = (t, r);
            last_log = Instant::now();
        }
    }
}

/// The tracked tables and their shapes as of the checkpoint, from the metadata (recorded with P0, changed by
/// every replicated DDL), and the scope DDL is judged against. None may be tracked yet: a database selected
/// whole can be empty when the task starts.
async fn tracked_tables(
    cfg: &TaskConfig,
    meta: &Meta,
    conn: &mut mysql_async::Conn,
) -> Result<(Scope, Vec<Table>)> {
    let rows = meta.synced_tables(conn).await?;
    let mut tables = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for r in rows.into_iter().filter(|r| r.state == "syncing") {
        let shape = r.shape.ok_or_else(|| {
            Error::definite(
                &codes::META_CORRUPT,
                format!("{}.{}: tracked without a stored shape", r.db, r.name),
            )
        })?;
        names.insert(Name::new(&r.db, &r.name));
        tables.push(shape);
    }
    let names_map = crate::schema::model::NameMap::new(cfg);
    let scope = Scope {
        databases: cfg.objects.databases.iter().cloned().collect(),
        tables: names,
        follow_renames: cfg.incremental.follow_table_renames,
        engine: cfg.schema.destination_engine.clone(),
        exclude: cfg.objects.exclude.clone(),
        include: cfg.objects.tables.clone(),
        metadata_schema: cfg.metadata.schema.clone(),
        reshaped: names_map
            .tables_touched()
            .into_iter()
            .filter(|(d, t)| names_map.reshapes(d, t))
            .map(|(d, t)| Name::new(&d, &t))
            .collect(),
        touched: names_map
            .tables_touched()
            .into_iter()
            .map(|(_, t)| t.to_ascii_lowercase())
            .collect(),
    };
    Ok((scope, tables))
}

/// Writes `NOW(6)` into the source's `<metadata>.heartbeat` every second, so the binlog moves on an idle source
/// and lag is measured end to end. A source that refuses (read-only account) gets one warning and no heartbeat.
/// While the source is read-only it writes nothing, even when ferry's account could (READ_ONLY ADMIN, SUPER): a
/// cutover waits for the source's binlog to stand still, and an older process of the task still running until
/// the fence stops it must not keep it moving.
async fn heartbeat(source: Server, schema: String, task: String) {
    let pool = source.pool(Role::Write, 1);
    let table = format!("{}.{}", ident(&schema), ident("heartbeat"));
    let setup = [
        format!("CREATE DATABASE IF NOT EXISTS {}", ident(&schema)),
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (task VARCHAR(64) NOT NULL PRIMARY KEY, ts DATETIME(6) NOT NULL) ENGINE=InnoDB"
        ),
    ];
    // No row, so nothing in the binlog, while read_only is set.
    let beat = format!(
        "REPLACE INTO {table} (task, ts) SELECT {}, NOW(6) FROM DUAL WHERE @@GLOBAL.read_only = 0",
        string(&task)
    );
    let mut ready = false;
    loop {
        let res: Result<()> = async {
            let mut c = pool.get_conn().await.ctx("source heartbeat")?;
            if !ready {
                for s in &setup {
                    c.query_drop(s).await.ctx("source heartbeat")?;
                }
                ready = true;
            }
            c.query_drop(&beat).await.ctx("source heartbeat")
        }
        .await;
        if let Err(e) = res {
            // 1290: the server runs read-only for this account too (super_read_only): skip the beat.
            if !e.is_transient() && e.mysql_errno() != Some(1290) {
                warn!(error = %e, "heartbeat disabled: the source refused it (set `incremental.heartbeat = false` for read-only accounts)");
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
