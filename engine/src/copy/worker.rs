//! Runs the full copy: a planner stores each table's chunk plan, N workers copy pending chunks, and each chunk's
//! rows commit on the destination in one transaction with the record that the chunk is done.

use super::load;
use super::plan::{self, Range};
use crate::codes;
use crate::error::{Error, Result, ResultExt};
use crate::meta::{ChunkRow, Meta};
use crate::mysql::conn::{Role, Server};
use crate::mysql::quote::ident;
use crate::progress::CopyProgress;
use crate::schema::model::Table;
use crate::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::{Pool, TxOpts};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, Mutex};
use tracing::{debug, info, warn};

#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub workers: usize,
    pub chunk_rows: u64,
    /// Upper bound of one INSERT statement's size (further capped by the destination's max_allowed_packet).
    pub batch_bytes: usize,
    /// How long a chunk's transient failures (lost connection, deadlock) are retried (`[retry]`).
    pub retry: crate::retry::Windows,
    /// Upper bound of chunks per table (the last chunk takes the rest).
    pub chunks_per_table_max: usize,
    /// Incremental follows (P0 is recorded): a destination row holding a chunk row's unique value under another
    /// key is a stale copy that catch-up re-creates, so it is parked instead of failing the chunk.
    pub park_displaced: bool,
    /// Conflict mode ignore_and_proceed: a row whose key is already on the destination is kept as it is there.
    pub keep_existing: bool,
    /// `[mapping]` and `objects.columns`: rows are written under the destination's names.
    pub names: crate::schema::model::NameMap,
    /// `[full]` source_qps_max / rows_per_s_max / mb_per_s_max, shared by every worker and the planner.
    pub throttle: std::sync::Arc<crate::throttle::Throttle>,
    /// While it says `Pause`, workers take no new chunk (the chunk in hand commits).
    pub control: Option<tokio::sync::watch::Receiver<crate::cdc::sync::Control>>,
    /// `[full] load_data`: write chunks of text-typed tables with LOAD DATA LOCAL INFILE (see `load`).
    pub load_data: bool,
}

/// How a chunk's rows are written (from `CopyOptions`).
#[derive(Debug, Clone)]
struct Writes {
    park: bool,
    keep_existing: bool,
    names: std::sync::Arc<crate::schema::model::NameMap>,
    throttle: std::sync::Arc<crate::throttle::Throttle>,
    /// LOAD DATA LOCAL for eligible chunks; switched off for the run once the destination refuses it.
    load_data: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            workers: 4,
            chunk_rows: 10_000,
            batch_bytes: 4 << 20,
            retry: crate::retry::Windows::new(&Default::default()),
            chunks_per_table_max: 1_000_000,
            park_displaced: false,
            keep_existing: false,
            names: Default::default(),
            throttle: std::sync::Arc::new(crate::throttle::Throttle::new(Default::default())),
            control: None,
            load_data: true,
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CopyReport {
    pub tables: usize,
    pub rows_copied: u64,
    pub chunks_copied: u64,
    /// Chunks an earlier run had already committed.
    pub chunks_skipped: u64,
    /// Chunks written by LOAD DATA LOCAL (the others by INSERT).
    pub chunks_loaded: u64,
    pub seconds: f64,
}

struct Job {
    table: Arc<Table>,
    chunk_no: u32,
    range: Range,
    /// Chunks of this table still to copy, shared by its jobs; the last one to finish reports the table done.
    remaining: Arc<std::sync::atomic::AtomicU32>,
}

/// Copies `tables` from `src` to `dst`, resuming any plan recorded in `meta`.
pub async fn run(
    src: &Server,
    dst: &Server,
    meta: &Meta,
    tables: &[Table],
    opts: &CopyOptions,
    progress: Arc<CopyProgress>,
) -> Result<CopyReport> {
    let started = Instant::now();
    let workers = opts.workers.max(1);
    let src_pool = src.pool(Role::ReadRows, workers + 1);
    let dst_pool = dst.pool(Role::Write, workers + 1);
    let mut ctl = dst_pool.get_conn().await.ctx("destination")?;
    let packet: Option<u64> = ctl
        .query_first("SELECT @@max_allowed_packet")
        .await
        .ctx("destination")?;
    let batch_bytes = opts
        .batch_bytes
        .min(packet.map(|p| (p / 2) as usize).unwrap_or(opts.batch_bytes))
        .max(64 << 10);

    let load_data = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(opts.load_data));
    let (tx, rx) = mpsc::channel::<Job>(workers * 4);
    let rx = Arc::new(Mutex::new(rx));
    let report = Arc::new(std::sync::Mutex::new(CopyReport {
        tables: tables.len(),
        ..Default::default()
    }));
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let rx = rx.clone();
        let (src_pool, dst_pool, meta, progress, report) = (
            src_pool.clone(),
            dst_pool.clone(),
            meta.clone(),
            progress.clone(),
            report.clone(),
        );
        let windows = opts.retry;
        let writes = Writes {
            park: opts.park_displaced,
            keep_existing: opts.keep_existing,
            names: std::sync::Arc::new(opts.names.clone()),
            throttle: opts.throttle.clone(),
            load_data: load_data.clone(),
        };
        let mut control = opts.control.clone();
        set.spawn(async move {
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(job) = job else {
                    return Ok::<(), Error>(());
                };
                if let Some(c) = control.as_mut() {
                    while *c.borrow() == crate::cdc::sync::Control::Pause {
                        if c.changed().await.is_err() {
                            break;
                        }
                    }
                    if *c.borrow() == crate::cdc::sync::Control::Stop {
                        // Stop: the chunks in flight on other workers commit; this one takes no new chunk.
                        rx.lock().await.close();
                        return Err(Error::definite(
                            &codes::RUN_STOPPED,
                            format!("stopped before chunk {} of {}", job.chunk_no, job.table.display_name()),
                        ));
                    }
                }
                debug!(worker = w, table = %job.table.display_name(), chunk = job.chunk_no, "copying chunk");
                let (rows, loaded) = match copy_with_retries(
                    &src_pool, &dst_pool, &meta, &job, batch_bytes, windows, w, writes.clone(),
                )
                .await
                {
                    Ok(done) => done,
                    Err(e) => {
                        // Stop the planner: its next send fails instead of waiting for a worker forever.
                        rx.lock().await.close();
                        return Err(e);
                    }
                };
                progress.rows(&job.table.display_name(), rows);
                if job
                    .remaining
                    .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
                    == 1
                {
                    progress.table_done(&job.table.display_name());
                    info!(table = %job.table.display_name(), "table copied");
                }
                if let Ok(mut r) = report.lock() {
                    r.rows_copied += rows;
                    r.chunks_copied += 1;
                    r.chunks_loaded += u64::from(loaded);
                }
            }
        });
    }

    // Only the workers hold the receiver: when they all stop, the planner's send fails.
    drop(rx);

    // The planner: one table at a time, plan stored before any of its chunks is handed out.
    let planner = async {
        let mut ctl = ctl;
        // Planning reads keys like the copy does (raw bytes, UTC), so bounds compare the same way.
        let mut splan = src_pool.get_conn().await.ctx("source")?;
        // Up to `workers` tables are handed out at once, a chunk of each in turn: concurrent chunks then go to
        // different tables where there are enough of them (a LOAD DATA into a table with an AUTO_INCREMENT column
        // holds that table's AUTO-INC lock to its end under innodb_autoinc_lock_mode = 1, so loads into one
        // table wait for each other), and each table still streams in key order.
        let mut next_table = tables.iter();
        let mut lanes: std::collections::VecDeque<std::collections::VecDeque<Job>> =
            std::collections::VecDeque::new();
        loop {
            while lanes.len() < workers {
                let Some(t) = next_table.next() else { break };
                let t = Arc::new(t.clone());
                let chunks = match meta.chunks(&mut ctl, &t.db, &t.name).await? {
                    Some(c) => c,
                    None => {
                        let ranges = plan::plan_table_throttled(
                            &mut splan,
                            &t,
                            opts.chunk_rows,
                            opts.chunks_per_table_max,
                            Some(&opts.throttle),
                        )
                        .await?;
                        let rows: Vec<ChunkRow> = ranges
                            .iter()
                            .enumerate()
                            .map(|(i, r)| -> Result<ChunkRow> {
                                Ok(ChunkRow {
                                    chunk_no: i as u32,
                                    lo: r
                                        .lo
                                        .as_ref()
                                        .map(serde_json::to_string)
                                        .transpose()
                                        .map_err(json_err)?,
                                    hi: r
                                        .hi
                                        .as_ref()
                                        .map(serde_json::to_string)
                                        .transpose()
                                        .map_err(json_err)?,
                                    done: false,
                                    rows: 0,
                                })
                            })
                            .collect::<Result<_>>()?;
                        meta.save_plan(
                            &mut ctl,
                            &t.db,
                            &t.name,
                            t.key.as_ref().map(|k| k.name.as_str()),
                            t.rows_estimate,
                            &rows,
                        )
                        .await?;
                        debug!(table = %t.display_name(), chunks = rows.len(), "planned");
                        rows
                    }
                };
                debug!(table = %t.display_name(), chunks = chunks.len(), "handing out chunks");
                let done_rows: u64 = chunks.iter().filter(|c| c.done).map(|c| c.rows).sum();
                let pending: Vec<&ChunkRow> = chunks.iter().filter(|c| !c.done).collect();
                if let Ok(mut r) = report.lock() {
                    r.chunks_skipped += (chunks.len() - pending.len()) as u64;
                }
                if pending.is_empty() {
                    continue;
                }
                progress.table_started(&t.display_name(), t.rows_estimate, done_rows);
                let remaining = Arc::new(std::sync::atomic::AtomicU32::new(pending.len() as u32));
                let mut lane = std::collections::VecDeque::with_capacity(pending.len());
                for c in pending {
                    lane.push_back(Job {
                        table: t.clone(),
                        chunk_no: c.chunk_no,
                        range: Range {
                            lo: parse_bound(c.lo.as_deref())?,
                            hi: parse_bound(c.hi.as_deref())?,
                        },
                        remaining: remaining.clone(),
                    });
                }
                lanes.push_back(lane);
            }
            let Some(mut lane) = lanes.pop_front() else {
                break;
            };
            if let Some(job) = lane.pop_front() {
                if tx.send(job).await.is_err() {
                    // Every worker stopped: their error is reported below.
                    return Ok(());
                }
            }
            if !lane.is_empty() {
                lanes.push_back(lane);
            }
        }
        Ok::<(), Error>(())
    };
    // A stop ends planning at once (a throttled planner can take minutes on a big table); what a table's plan
    // did not save is planned again by the next run. Chunks the workers hold still commit.
    let planned = tokio::select! {
        r = planner => r,
        () = stop_requested(opts.control.clone()) => Err(Error::definite(
            &codes::RUN_STOPPED,
            "stopped while planning chunks",
        )),
    };
    drop(tx);
    let mut first_err = planned.err();
    while let Some(res) = set.join_next().await {
        let res = res.unwrap_or_else(|e| {
            Err(Error::definite(
                &codes::SQL_OTHER,
                format!("copy worker died: {e}"),
            ))
        });
        if let Err(e) = res {
            if first_err.is_none() {
                first_err = Some(e);
                set.abort_all();
            }
        }
    }
    let _ = src_pool.disconnect().await;
    let _ = dst_pool.disconnect().await;
    if let Some(e) = first_err {
        return Err(e);
    }
    progress.finish();
    let mut r = report.lock().map(|r| r.clone()).unwrap_or_default();
    r.seconds = started.elapsed().as_secs_f64();
    Ok(r)
}

/// Resolves once `control` says Stop; never without a control.
async fn stop_requested(control: Option<tokio::sync::watch::Receiver<crate::cdc::sync::Control>>) {
    let Some(mut c) = control else {
        return std::future::pending().await;
    };
    while *c.borrow_and_update() != crate::cdc::sync::Control::Stop {
        if c.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn json_err(e: serde_json::Error) -> Error {
    Error::definite(&codes::META_CORRUPT, format!("chunk bound: {e}"))
}

fn parse_bound(s: Option<&str>) -> Result<Option<Vec<Value>>> {
    s.map(|s| serde_json::from_str(s).map_err(json_err))
        .transpose()
}

#[allow(clippy::too_many_arguments)]
async fn copy_with_retries(
    src: &Pool,
    dst: &Pool,
    meta: &Meta,
    job: &Job,
    batch_bytes: usize,
    windows: crate::retry::Windows,
    worker: usize,
    writes: Writes,
) -> Result<(u64, bool)> {
    let mut retrier = crate::retry::Retrier::new(windows);
    let what = format!(
        "copying {} chunk {}",
        job.table.display_name(),
        job.chunk_no
    );
    loop {
        match copy_chunk(src, dst, meta, job, batch_bytes, writes.clone()).await {
            Ok(rows) => return Ok(rows),
            Err(e) if e.is_transient() => {
                // The failure may have come after the COMMIT reached the server (its reply lost with the
                // connection): the chunk's done record says so, and copying it again would duplicate its rows.
                if let Some(rows) = committed_meanwhile(dst, meta, job).await {
                    info!(worker, table = %job.table.display_name(), chunk = job.chunk_no, rows, error = %e, "chunk committed before the failure; not copied again");
                    return Ok((rows, false));
                }
                let shown = e.to_string();
                let delay = retrier.failed(e, &what)?;
                warn!(worker, table = %job.table.display_name(), chunk = job.chunk_no, error = %shown, delay_ms = delay.as_millis() as u64, "retrying chunk");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                return Err(e.context(format!(
                    "copying {} chunk {}",
                    job.table.display_name(),
                    job.chunk_no
                )))
            }
        }
    }
}

/// The rows of a chunk found done on the destination; None when it is not done or the record cannot be read now
/// (the retry that follows reads it again).
async fn committed_meanwhile(dst: &Pool, meta: &Meta, job: &Job) -> Option<u64> {
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(10), dst.get_conn())
        .await
        .ok()?
        .ok()?;
    meta.chunk_done_rows(&mut conn, &job.table.db, &job.table.name, job.chunk_no)
        .await
        .ok()
        .flatten()
}

/// Copies one chunk in one destination transaction that also marks it done: all or nothing. By LOAD DATA where
/// the table allows it and the destination takes every row as sent, else by multi-row INSERTs. Returns the rows
/// and whether they were loaded.
async fn copy_chunk(
    src: &Pool,
    dst: &Pool,
    meta: &Meta,
    job: &Job,
    batch_bytes: usize,
    writes: Writes,
) -> Result<(u64, bool)> {
    let t = &job.table;
    let cols: Vec<usize> = t.writable_columns().map(|(i, _)| i).collect();
    if writes.load_data.load(std::sync::atomic::Ordering::Relaxed)
        && !writes.keep_existing
        && load::eligible(t, &cols)
    {
        match copy_chunk_loading(src, dst, meta, job, batch_bytes, &writes, &cols).await? {
            Loaded::Done { rows, parts } => return Ok((rows, parts > 0)),
            Loaded::Refused { why, disabled } => {
                if disabled
                    && writes
                        .load_data
                        .swap(false, std::sync::atomic::Ordering::Relaxed)
                {
                    info!(%why, "copy: LOAD DATA LOCAL refused; chunks are written by INSERT from now on");
                } else {
                    debug!(table = %t.display_name(), chunk = job.chunk_no, %why, "chunk written by INSERT instead");
                }
            }
        }
    }
    let rows = copy_chunk_inserting(src, dst, meta, job, batch_bytes, writes, &cols).await?;
    Ok((rows, false))
}

enum Loaded {
    /// Committed; `parts` LOAD DATA statements wrote its rows (none for an empty chunk).
    Done {
        rows: u64,
        parts: u32,
    },
    Refused {
        why: String,
        disabled: bool,
    },
}

/// The chunk as LOAD DATA text, in parts of at most `batch_bytes`, in one transaction with its done mark. A part
/// the destination did not take row for row rolls the whole chunk back (`Refused`).
async fn copy_chunk_loading(
    src: &Pool,
    dst: &Pool,
    meta: &Meta,
    job: &Job,
    batch_bytes: usize,
    writes: &Writes,
    cols: &[usize],
) -> Result<Loaded> {
    let t = &job.table;
    let col_refs: Vec<&crate::schema::model::Column> =
        cols.iter().map(|&i| &t.columns[i]).collect();
    let sql = plan::select_chunk_sql(t, cols, job.range.lo.as_deref(), job.range.hi.as_deref())?;
    let dest = t.mapped(&writes.names);
    let mut dconn = Server::checkout(dst, "destination session for a chunk").await?;
    let mut tx = dconn.start_transaction(TxOpts::default()).await?;
    let mut sconn = Server::checkout(src, "source session for a chunk").await?;
    let throttle = writes.throttle.clone();
    throttle.query().await;
    let mut result = sconn.exec_iter(sql, ()).await?;
    let mut text: Vec<u8> = Vec::with_capacity(batch_bytes.min(1 << 20));
    let (mut rows, mut in_text, mut parts) = (0u64, 0u64, 0u32);
    loop {
        let row = result.next().await?;
        let end = row.is_none();
        if let Some(row) = row {
            let values = plan::decode_row(row, &col_refs)?;
            let before = text.len();
            load::write_row(&values, &col_refs, &mut text)?;
            throttle.rows(1, (text.len() - before) as u64).await;
            rows += 1;
            in_text += 1;
        }
        if in_text > 0 && (end || text.len() >= batch_bytes) {
            let part = std::mem::replace(&mut text, Vec::with_capacity(batch_bytes.min(1 << 20)));
            if let load::Outcome::Refused { why, disabled } =
                load::load(&mut tx, &dest, cols, part, in_text).await?
            {
                drop(result);
                tx.rollback().await?;
                return Ok(Loaded::Refused { why, disabled });
            }
            in_text = 0;
            parts += 1;
        }
        if end {
            break;
        }
    }
    drop(result);
    if !finish_chunk(tx, meta, job, rows).await? {
        return Err(meta.fenced_error(&mut dconn, "copying a chunk").await);
    }
    Ok(Loaded::Done { rows, parts })
}

/// Marks the chunk done in its transaction and commits. False when fenced off (the mark matched nothing): the
/// chunk's rows rolled back.
async fn finish_chunk(
    mut tx: mysql_async::Transaction<'_>,
    meta: &Meta,
    job: &Job,
    rows: u64,
) -> Result<bool> {
    let t = &job.table;
    tx.query_drop(meta.chunk_done_sql(&t.db, &t.name, job.chunk_no, rows))
        .await?;
    if tx.affected_rows() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    crate::failpoint::hit(crate::failpoint::names::COPY_CHUNK_COMMITTED).await?;
    Ok(true)
}

/// The chunk as multi-row INSERTs in one transaction with its done mark.
async fn copy_chunk_inserting(
    src: &Pool,
    dst: &Pool,
    meta: &Meta,
    job: &Job,
    batch_bytes: usize,
    writes: Writes,
    cols: &[usize],
) -> Result<u64> {
    let park = writes.park;
    let t = &job.table;
    let cols: Vec<usize> = cols.to_vec();
    let col_refs: Vec<&crate::schema::model::Column> =
        cols.iter().map(|&i| &t.columns[i]).collect();
    let sql = plan::select_chunk_sql(t, &cols, job.range.lo.as_deref(), job.range.hi.as_deref())?;
    // Written under the destination's names (`[mapping]`); read and recorded under the source's.
    let dest = t.mapped(&writes.names);
    let prefix = format!(
        "INSERT INTO {} ({}) VALUES ",
        dest.qualified(),
        cols.iter()
            .map(|&i| ident(&dest.columns[i].name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // ignore_and_proceed: a duplicate key leaves the destination's row as it is (a no-op update of its key).
    let dest_cols: Vec<&crate::schema::model::Column> =
        cols.iter().map(|&i| &dest.columns[i]).collect();
    let suffix = match (
        writes.keep_existing,
        dest.key_columns().first().or(dest_cols.first()),
    ) {
        (true, Some(k)) => format!(" ON DUPLICATE KEY UPDATE {0} = {0}", ident(&k.name)),
        _ => String::new(),
    };

    let mut dconn = Server::checkout(dst, "destination session for a chunk").await?;
    let mut tx = dconn.start_transaction(TxOpts::default()).await?;
    let mut sconn = Server::checkout(src, "source session for a chunk").await?;
    let throttle = writes.throttle.clone();
    throttle.query().await;
    let mut result = sconn.exec_iter(sql, ()).await?;
    let mut batch = String::with_capacity(batch_bytes.min(1 << 20));
    // The decoded rows of `batch`, kept to look for displaced rows if the insert hits a unique value.
    let mut held: Vec<Vec<Value>> = Vec::new();
    let mut rows = 0u64;
    while let Some(row) = result.next().await? {
        let values = plan::decode_row(row, &col_refs)?;
        let before = batch.len();
        batch.push_str(if batch.is_empty() { &prefix } else { "," });
        batch.push('(');
        for (i, (v, c)) in values.iter().zip(&col_refs).enumerate() {
            if i > 0 {
                batch.push(',');
            }
            v.write_literal(c, &mut batch)?;
        }
        batch.push(')');
        throttle.rows(1, (batch.len() - before) as u64).await;
        held.push(values);
        rows += 1;
        if batch.len() >= batch_bytes {
            batch.push_str(&suffix);
            insert_batch(&mut tx, meta, job, &dest, &cols, &batch, &held, park).await?;
            batch.clear();
            held.clear();
        }
    }
    drop(result);
    if !batch.is_empty() {
        batch.push_str(&suffix);
        insert_batch(&mut tx, meta, job, &dest, &cols, &batch, &held, park).await?;
    }
    if !finish_chunk(tx, meta, job, rows).await? {
        return Err(meta.fenced_error(&mut dconn, "copying a chunk").await);
    }
    Ok(rows)
}

/// One multi-row INSERT of a chunk. A duplicate on a unique key other than the table's key means a row copied
/// earlier holds a value the source has since moved to one of these rows (see `displace`): with incremental
/// following, that row is parked and removed and the insert is tried once more; otherwise it is a coded error
/// naming both rows. `t` is the table under its destination names.
#[allow(clippy::too_many_arguments)]
async fn insert_batch(
    tx: &mut mysql_async::Transaction<'_>,
    meta: &Meta,
    job: &Job,
    t: &crate::schema::model::Table,
    cols: &[usize],
    batch: &str,
    held: &[Vec<Value>],
    park: bool,
) -> Result<()> {
    let first = match tx.query_drop(batch).await {
        Ok(()) => return Ok(()),
        Err(e) => Error::from(e),
    };
    if first.mysql_errno() != Some(1062) {
        return Err(first);
    }
    let displaced = super::displace::find(tx, t, cols, held).await?;
    if displaced.is_empty() || !park {
        let rows: Vec<String> = displaced
            .iter()
            .take(5)
            .map(|d| {
                format!(
                    "destination row {} (held by {}): {}",
                    d.key_json, d.by, d.row_json
                )
            })
            .collect();
        return Err(Error::definite(
            &codes::DATA_DUPLICATE,
            format!(
                "{} chunk {}: {first}{}{}",
                t.display_name(),
                job.chunk_no,
                if rows.is_empty() { "" } else { "; " },
                rows.join("; ")
            ),
        ));
    }
    for d in &displaced {
        warn!(table = %t.display_name(), key = %d.key_json, by = %d.by, "copy: parking a row whose unique value moved to a row copied later");
        let p = crate::meta::Parked {
            db: t.db.clone(),
            name: t.name.clone(),
            key_json: d.key_json.clone(),
            row_json: d.row_json.clone(),
            displaced_by: d.by.clone(),
            at_position: format!("full copy, chunk {}", job.chunk_no),
        };
        tx.query_drop(meta.park_sql(&p))
            .await
            .ctx("parking a row")?;
        tx.query_drop(crate::cdc::sql::delete_keys(
            t,
            std::slice::from_ref(&d.key),
        )?)
        .await
        .ctx(t.display_name())?;
    }
    tx.query_drop(batch).await.map_err(|e| {
        Error::from(e).context(format!(
            "{} chunk {} after parking {} row(s)",
            t.display_name(),
            job.chunk_no,
            displaced.len()
        ))
    })
}
