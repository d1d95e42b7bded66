//! Compares every selected table between source and destination: key ranges digested by both servers, differing
//! ranges narrowed and their rows located client-side, rechecked online, written to the output folder.

use crate::diff::{key_text, Diff, Kind, RowCompare};
use crate::digest::{self, Sample, Strategy};
use crate::online::{self, Applied, Recheck};
use crate::output::{Output, TableProgress};
use crate::since::{self, Changed};
use ferry_engine::codes;
use ferry_engine::config::TaskConfig;
use ferry_engine::copy::plan::{self, Range};
use ferry_engine::error::{Error, Result, ResultExt};
use ferry_engine::meta::Meta;
use ferry_engine::mysql::conn::{Flavor, Role, Server};
use ferry_engine::schema::introspect;
use ferry_engine::schema::model::{Column, NameMap, Table};
use ferry_engine::value::Value;
use futures_util::{StreamExt, TryStreamExt};
use mysql_async::prelude::Queryable;
use mysql_async::Pool;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

/// Which rows are compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Every row, at one pass (writes to the destination must have stopped, or the rows they touch differ).
    Full,
    /// The rows a seeded hash of their key selects: `percent` of them, the same rows on both servers.
    Sample { percent: f64, seed: u64 },
    /// Every row while incremental sync runs: differences are rechecked after the destination applied past them.
    Online,
    /// Only rows the source's binlog changed after `file:offset`, rechecked online.
    Since { from: String },
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Sample { .. } => "sample",
            Mode::Online => "online",
            Mode::Since { .. } => "since",
        }
    }
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Key ranges compared at once (one connection per side each).
    pub parallel: usize,
    /// Rows per key range digested by the servers (and read at once by the client strategy).
    pub chunk_rows: u64,
    /// How many differing keys to list per table in the report.
    pub keys_listed_max: usize,
    /// Differences of a table kept for rechecks and output; more are counted, not listed.
    pub diffs_per_table_max: usize,
    pub mode: Mode,
    /// Hash every row client-side (no server digests).
    pub client_only: bool,
    /// FLOAT/DOUBLE values this close (relative; absolute below 1) are equal.
    pub float_tolerance: Option<f64>,
    /// Output folder for diff.jsonl, repair.sql, summary.json, progress.json.
    pub out: Option<PathBuf>,
    /// Continue the run recorded in `out`.
    pub resume: bool,
    pub recheck: Recheck,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            parallel: 4,
            chunk_rows: 10_000,
            keys_listed_max: 10,
            diffs_per_table_max: 100_000,
            mode: Mode::Full,
            client_only: false,
            float_tolerance: None,
            out: None,
            resume: false,
            recheck: Recheck::default(),
        }
    }
}

/// One table's result.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TableResult {
    pub table: String,
    pub destination_table: String,
    pub rows_source: u64,
    pub rows_destination: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    /// Online: rows that changed during every recheck (neither shown equal nor different).
    pub unsettled: u64,
    /// The first differing keys, as `kind key` (`missing (5)`, `different (7, 'x')`).
    pub first_differences: Vec<String>,
    pub chunks: usize,
    /// Ranges whose digests differed and were read row by row.
    pub chunks_located: usize,
    pub strategy: Option<Strategy>,
    /// Why the table is not compared by server digests, or what `since` found.
    pub note: Option<String>,
}

impl TableResult {
    pub fn equal(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.different == 0 && self.unsettled == 0
    }

    fn add(&mut self, kind: Kind, text: String, listed_max: usize) {
        match kind {
            Kind::Missing => self.missing += 1,
            Kind::Extra => self.extra += 1,
            Kind::Different => self.different += 1,
        }
        if self.first_differences.len() < listed_max {
            self.first_differences
                .push(format!("{} {text}", kind.as_str()));
        }
    }
}

/// Sums over every table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Totals {
    pub consistent: bool,
    pub tables: usize,
    pub rows_checked: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub unsettled: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub mode: String,
    pub totals: Totals,
    /// sample mode: the seed that chose the rows.
    pub seed: Option<u64>,
    pub tables: Vec<TableResult>,
    pub seconds: f64,
    /// Where diff.jsonl and repair.sql are, when an output folder was given.
    pub out: Option<String>,
}

impl VerifyReport {
    pub fn consistent(&self) -> bool {
        self.tables.iter().all(TableResult::equal)
    }

    pub fn rows_checked(&self) -> u64 {
        self.tables.iter().map(|t| t.rows_source).sum()
    }

    pub fn total(&self, f: impl Fn(&TableResult) -> u64) -> u64 {
        self.tables.iter().map(f).sum()
    }

    /// The coded error for a report with differences.
    pub fn error(&self) -> Option<Error> {
        let bad: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| !t.equal())
            .map(|t| t.table.as_str())
            .collect();
        (!bad.is_empty()).then(|| Error::definite(&codes::VERIFY_DIFFERENT, bad.join(", ")))
    }
}

/// Keys compared per batch in `since` mode.
const KEYS_PER_BATCH: usize = 1_000;

/// What every table's comparison shares.
struct Ctx<'a> {
    /// MariaDB JSON columns by (database, table) on the source.
    json: HashMap<(String, String), HashSet<String>>,
    spool: Pool,
    dpool: Pool,
    opts: &'a VerifyOptions,
    sample: Option<Sample>,
    /// Online and since modes: the task's sync state on the destination.
    applied: Option<Applied<'a>>,
}

/// Verifies every table the task selects.
pub async fn verify(cfg: &TaskConfig, opts: &VerifyOptions) -> Result<VerifyReport> {
    let started = Instant::now();
    let source = Server::connect(&cfg.source, "source").await?;
    let destination = Server::connect(&cfg.destination, "destination").await?;
    let (schema, json) = {
        let ipool = source.pool(Role::Introspect, 1);
        let mut iconn = ipool.get_conn().await.ctx("source")?;
        let s = introspect::read_task(&mut iconn, cfg, false).await?;
        let json = match source.info.flavor {
            Flavor::MariaDb => mariadb_json_columns(&mut iconn).await?,
            Flavor::MySql => HashMap::new(),
        };
        drop(iconn);
        let _ = ipool.disconnect().await;
        (s, json)
    };
    let names = NameMap::new(cfg);
    let meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let online = matches!(opts.mode, Mode::Online | Mode::Since { .. });
    let dpool = destination.pool_kept(Role::ReadRows, opts.parallel + 1, &[digest::SESSION_SQL]);
    if online {
        let mut c = dpool.get_conn().await.ctx("destination")?;
        let cdc = if meta.exists(&mut c).await? {
            meta.cdc(&mut c).await?
        } else {
            Default::default()
        };
        if cdc.checkpoint.is_none() && cdc.p0.is_none() {
            return Err(Error::definite(
                &codes::VERIFY_NO_SYNC,
                format!(
                    "task {} has no incremental sync recorded on the destination ({} mode rechecks against it)",
                    cfg.task.name,
                    opts.mode.name()
                ),
            ));
        }
    }
    let changed = match &opts.mode {
        Mode::Since { from } => {
            let from = since::parse_position(from, &source)?;
            Some(since::changed_since(&source, cfg, &schema.tables, &from).await?)
        }
        _ => None,
    };
    let sample = match &opts.mode {
        Mode::Sample { percent, seed } => Some(Sample {
            seed: *seed,
            ppm: (percent.clamp(0.0, 100.0) * 10_000.0).round() as u32,
        }),
        _ => None,
    };
    let mut out = match &opts.out {
        Some(dir) => Some(Output::open(
            dir,
            &run_fingerprint(opts),
            &cfg.task.name,
            opts.resume,
        )?),
        None => None,
    };
    let ctx = Ctx {
        json,
        spool: source.pool_kept(Role::ReadRows, opts.parallel + 1, &[digest::SESSION_SQL]),
        dpool,
        opts,
        sample,
        applied: online.then_some(Applied {
            meta: &meta,
            source_flavor: source.info.flavor,
        }),
    };
    let mut tables = Vec::new();
    for t in &schema.tables {
        let name = t.display_name();
        let previous = out
            .as_ref()
            .and_then(|o| o.progress.tables.get(&name).cloned());
        if let Some(p) = previous.as_ref().filter(|p| p.done) {
            tables.push(p.result.clone());
            continue;
        }
        let what = changed
            .as_ref()
            .map(|c| c.get(&(t.db.clone(), t.name.clone())).cloned());
        let r = match what {
            Some(None) => unchanged(t, &names),
            Some(Some(Changed::Keys(keys))) if t.key.is_some() => {
                verify_keys(&ctx, t, &names, keys, out.as_mut()).await?
            }
            _ => verify_table(&ctx, t, &names, previous, out.as_mut()).await?,
        };
        tables.push(r);
    }
    let _ = ctx.spool.disconnect().await;
    let _ = ctx.dpool.disconnect().await;
    let mut report = VerifyReport {
        mode: opts.mode.name().to_string(),
        totals: Totals::default(),
        seed: sample.map(|s| s.seed),
        tables,
        seconds: started.elapsed().as_secs_f64(),
        out: out.as_ref().map(|o| o.dir().display().to_string()),
    };
    report.totals = Totals {
        consistent: report.consistent(),
        tables: report.tables.len(),
        rows_checked: report.rows_checked(),
        missing: report.total(|t| t.missing),
        extra: report.total(|t| t.extra),
        different: report.total(|t| t.different),
        unsettled: report.total(|t| t.unsettled),
    };
    if let Some(o) = out.as_mut() {
        o.summary(&report)?;
    }
    Ok(report)
}

/// MariaDB's JSON columns: LONGTEXT with a column-level `json_valid` check, compared as documents like MySQL's.
async fn mariadb_json_columns(
    conn: &mut mysql_async::Conn,
) -> Result<HashMap<(String, String), HashSet<String>>> {
    let rows: Vec<(String, String, String, String)> = conn
        .query(
            "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
             WHERE LEVEL = 'Column' AND CHECK_CLAUSE LIKE 'json\\_valid(%'",
        )
        .await
        .ctx("reading JSON columns")?;
    let mut out: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for (db, table, column, clause) in rows {
        if clause == format!("json_valid({})", ferry_engine::mysql::quote::ident(&column)) {
            out.entry((db, table)).or_default().insert(column);
        }
    }
    Ok(out)
}

impl Ctx<'_> {
    fn compare<'t>(&self, src: &'t Table, t: &Table) -> RowCompare<'t> {
        let cmp = RowCompare::new(src, self.opts.float_tolerance);
        match self.json.get(&(t.db.clone(), t.name.clone())) {
            Some(cols) => cmp.with_json_columns(cols),
            None => cmp,
        }
    }
}

/// The options a resumed run must share with the run it continues.
fn run_fingerprint(o: &VerifyOptions) -> String {
    format!(
        "mode={:?} chunk_rows={} client_only={} float_tolerance={:?}",
        o.mode, o.chunk_rows, o.client_only, o.float_tolerance
    )
}

fn unchanged(t: &Table, names: &NameMap) -> TableResult {
    TableResult {
        table: t.display_name(),
        destination_table: t.mapped(names).display_name(),
        note: Some("no row changed since the position".into()),
        ..Default::default()
    }
}

/// The rows a side returns for `sql`, decoded over `cols`.
async fn read_rows(pool: &Pool, sql: &str, cols: &[&Column]) -> Result<Vec<Vec<Value>>> {
    let mut conn = pool.get_conn().await?;
    let mut result = conn.exec_iter(sql, ()).await?;
    let mut rows = Vec::new();
    while let Some(row) = result.next().await? {
        rows.push(plan::decode_row(row, cols)?);
    }
    Ok(rows)
}

/// A range's row count and digest on one side.
async fn range_digest(
    pool: &Pool,
    t: &Table,
    r: &Range,
    sample: Option<&Sample>,
) -> Result<(u64, Option<String>)> {
    // The session's group_concat_max_len comes with the pool (`digest::SESSION_SQL` in its setup).
    let mut conn = pool.get_conn().await?;
    let sql = digest::range_digest_sql(t, r.lo.as_deref(), r.hi.as_deref(), sample)?;
    let row: Option<(u64, Option<String>)> = conn.query_first(sql).await?;
    Ok(row.unwrap_or((0, None)))
}

/// What comparing one range found.
#[derive(Default)]
struct RangeOutcome {
    rows_source: u64,
    rows_destination: u64,
    located: usize,
    diffs: Vec<Diff>,
}

struct Sides<'a> {
    src: &'a Table,
    dest: &'a Table,
    cmp: RowCompare<'a>,
    strategy: Strategy,
}

/// Reads both sides' rows of a range and locates the differences.
async fn locate(ctx: &Ctx<'_>, s: &Sides<'_>, r: &Range) -> Result<RangeOutcome> {
    let src_cols: Vec<&Column> = s.src.columns.iter().collect();
    let dest_cols: Vec<&Column> = s.dest.columns.iter().collect();
    let sql = digest::range_rows_sql(s.src, r.lo.as_deref(), r.hi.as_deref(), ctx.sample.as_ref())?;
    let dsql = digest::range_rows_sql(
        s.dest,
        r.lo.as_deref(),
        r.hi.as_deref(),
        ctx.sample.as_ref(),
    )?;
    let (a, b) = tokio::try_join!(
        async {
            read_rows(&ctx.spool, &sql, &src_cols)
                .await
                .ctx(format!("reading {} on the source", s.src.display_name()))
        },
        async {
            read_rows(&ctx.dpool, &dsql, &dest_cols).await.ctx(format!(
                "reading {} on the destination",
                s.dest.display_name()
            ))
        },
    )?;
    let (rows_source, rows_destination) = (a.len() as u64, b.len() as u64);
    let diffs = s.cmp.locate(a, b);
    Ok(RangeOutcome {
        rows_source,
        rows_destination,
        located: 1,
        diffs,
    })
}

/// Each row's key and digest in a range, on one side.
async fn row_digests(
    pool: &Pool,
    t: &Table,
    r: &Range,
    sample: Option<&Sample>,
) -> Result<Vec<(Vec<Value>, String)>> {
    let sql = digest::range_row_digests_sql(t, r.lo.as_deref(), r.hi.as_deref(), sample)?;
    let cols = t.key_columns();
    let n = cols.len();
    let mut conn = pool.get_conn().await?;
    let mut result = conn.exec_iter(sql, ()).await?;
    let mut out = Vec::new();
    while let Some(row) = result.next().await? {
        let h: Option<String> = row.get(n);
        let key = plan::decode_row(row, &cols)?;
        out.push((key, h.unwrap_or_default()));
    }
    Ok(out)
}

/// Compares one key range by its digests; a range whose digests differ is narrowed by its per-row digests (keys
/// and 64 hex characters from each side, one query each) and only the rows whose digests differ are read whole
/// and compared.
async fn compare_range(ctx: &Ctx<'_>, s: &Sides<'_>, r: Range) -> Result<(Range, RangeOutcome)> {
    if s.strategy == Strategy::Client {
        let o = locate(ctx, s, &r).await?;
        return Ok((r, o));
    }
    let sample = ctx.sample.as_ref();
    let ((sn, sd), (dn, dd)) = tokio::try_join!(
        async {
            range_digest(&ctx.spool, s.src, &r, sample)
                .await
                .ctx("digest on the source")
        },
        async {
            range_digest(&ctx.dpool, s.dest, &r, sample)
                .await
                .ctx("digest on the destination")
        },
    )?;
    let mut out = RangeOutcome {
        rows_source: sn,
        rows_destination: dn,
        ..Default::default()
    };
    if sn == dn && sd == dd {
        return Ok((r, out));
    }
    out.located = 1;
    let (a, b) = tokio::try_join!(
        async {
            row_digests(&ctx.spool, s.src, &r, sample)
                .await
                .ctx("row digests on the source")
        },
        async {
            row_digests(&ctx.dpool, s.dest, &r, sample)
                .await
                .ctx("row digests on the destination")
        },
    )?;
    let mut theirs: HashMap<crate::canonical::RowHash, (Vec<Value>, String)> = b
        .into_iter()
        .map(|(k, h)| (crate::canonical::row_hash(&k, &[]), (k, h)))
        .collect();
    let mut src_keys = Vec::new();
    let mut dst_keys = Vec::new();
    for (k, h) in a {
        match theirs.remove(&crate::canonical::row_hash(&k, &[])) {
            Some((_, d)) if d == h => {}
            Some((dk, _)) => {
                src_keys.push(k);
                dst_keys.push(dk);
            }
            None => src_keys.push(k),
        }
    }
    // Keys only the destination has.
    dst_keys.extend(theirs.into_values().map(|(k, _)| k));
    let (src_rows, dst_rows) = tokio::try_join!(
        async {
            online::rows_by_key(&ctx.spool, s.src, &src_keys)
                .await
                .ctx("source")
        },
        async {
            online::rows_by_key(&ctx.dpool, s.dest, &dst_keys)
                .await
                .ctx("destination")
        },
    )?;
    out.diffs = s.cmp.locate(src_rows, dst_rows);
    Ok((r, out))
}

/// Keeps a table's differences within the listing bound, online rechecks them, and records them.
struct Sink<'a, 'b> {
    result: TableResult,
    kept: usize,
    s: &'a Sides<'a>,
    out: Option<&'b mut Output>,
}

impl Sink<'_, '_> {
    async fn take(&mut self, ctx: &Ctx<'_>, diffs: Vec<Diff>) -> Result<()> {
        let (diffs, unsettled) = match (&ctx.applied, self.s.src.key.is_some()) {
            (Some(applied), true) if !diffs.is_empty() => {
                let o = online::recheck(
                    &ctx.spool,
                    &ctx.dpool,
                    self.s.src,
                    self.s.dest,
                    &self.s.cmp,
                    applied,
                    &ctx.opts.recheck,
                    diffs,
                )
                .await?;
                (o.persistent, o.unsettled)
            }
            _ => (diffs, Vec::new()),
        };
        self.result.unsettled += unsettled.len() as u64;
        for d in &unsettled {
            if self.result.first_differences.len() < ctx.opts.keys_listed_max {
                self.result
                    .first_differences
                    .push(format!("unsettled {}", key_text(self.s.src, d.row())));
            }
        }
        let room = ctx.opts.diffs_per_table_max.saturating_sub(self.kept);
        for d in &diffs {
            self.result.add(
                d.kind,
                key_text(self.s.src, d.row()),
                ctx.opts.keys_listed_max,
            );
        }
        if let Some(o) = self.out.as_deref_mut() {
            o.write(self.s.src, self.s.dest, &diffs[..diffs.len().min(room)])?;
        }
        self.kept += diffs.len().min(room);
        Ok(())
    }
}

/// Compares one table whole (from where a resumed run left it).
async fn verify_table(
    ctx: &Ctx<'_>,
    t: &Table,
    names: &NameMap,
    previous: Option<TableProgress>,
    out: Option<&mut Output>,
) -> Result<TableResult> {
    let src = t.compared();
    let dest = t.mapped(names).compared();
    let (strategy, note) = digest::strategy_for(&src, ctx.opts.client_only);
    let s = Sides {
        src: &src,
        dest: &dest,
        cmp: ctx.compare(&src, t),
        strategy,
    };
    let (start, result) = match previous {
        Some(p) => (p.last_key, p.result),
        None => (
            None,
            TableResult {
                table: src.display_name(),
                destination_table: dest.display_name(),
                strategy: Some(strategy),
                note,
                ..Default::default()
            },
        ),
    };
    let mut sink = Sink {
        result,
        kept: 0,
        s: &s,
        out,
    };
    if src.key.is_none() {
        keyless(ctx, &mut sink).await?;
        let r = sink.result.clone();
        if let Some(o) = sink.out.as_deref_mut() {
            o.checkpoint(&r.table, None, &r, true)?;
        }
        return Ok(sink.result);
    }
    // Ranges are cut from the source's key index as they are needed (memory does not grow with the table), and
    // compared `parallel` at a time; results are taken in key order so progress is a single last key.
    let ranges = futures_util::stream::try_unfold(Some(start), |lo| async {
        let Some(lo) = lo else {
            return Ok::<_, Error>(None);
        };
        let sql = plan::boundary_sql(&src, lo.as_deref(), ctx.opts.chunk_rows)?;
        let cols = src.key_columns();
        let mut c = ctx.spool.get_conn().await.ctx("source")?;
        let row: Option<mysql_async::Row> = c.exec_first(sql, ()).await.ctx("planning ranges")?;
        let hi = row.map(|row| plan::decode_row(row, &cols)).transpose()?;
        let next = hi.clone().map(Some);
        Ok(Some((Range { lo, hi }, next)))
    });
    let mut results = ranges
        .map_ok(|r| compare_range(ctx, &s, r))
        .try_buffered(ctx.opts.parallel.max(1))
        .boxed_local();
    while let Some((r, o)) = results.try_next().await? {
        sink.result.chunks += 1;
        sink.result.chunks_located += o.located;
        sink.result.rows_source += o.rows_source;
        sink.result.rows_destination += o.rows_destination;
        sink.take(ctx, o.diffs).await?;
        let done = r.hi.is_none();
        let r2 = sink.result.clone();
        if let Some(out) = sink.out.as_deref_mut() {
            out.checkpoint(&r2.table, r.hi, &r2, done)?;
        }
    }
    Ok(sink.result)
}

/// `since` mode for a keyed table: the changed keys' rows on both sides, rechecked online.
async fn verify_keys(
    ctx: &Ctx<'_>,
    t: &Table,
    names: &NameMap,
    keys: Vec<Vec<Value>>,
    out: Option<&mut Output>,
) -> Result<TableResult> {
    let src = t.compared();
    let dest = t.mapped(names).compared();
    let s = Sides {
        src: &src,
        dest: &dest,
        cmp: ctx.compare(&src, t),
        strategy: Strategy::Client,
    };
    let mut sink = Sink {
        result: TableResult {
            table: src.display_name(),
            destination_table: dest.display_name(),
            strategy: Some(Strategy::Client),
            note: Some(format!("{} keys changed since the position", keys.len())),
            ..Default::default()
        },
        kept: 0,
        s: &s,
        out,
    };
    for batch in keys.chunks(KEYS_PER_BATCH) {
        let (a, b) = tokio::try_join!(
            async {
                online::rows_by_key(&ctx.spool, &src, batch)
                    .await
                    .ctx("source")
            },
            async {
                online::rows_by_key(&ctx.dpool, &dest, batch)
                    .await
                    .ctx("destination")
            },
        )?;
        sink.result.rows_source += a.len() as u64;
        sink.result.rows_destination += b.len() as u64;
        sink.result.chunks += 1;
        let diffs = s.cmp.locate(a, b);
        sink.take(ctx, diffs).await?;
    }
    let r = sink.result.clone();
    if let Some(o) = sink.out.as_deref_mut() {
        o.checkpoint(&r.table, None, &r, true)?;
    }
    Ok(sink.result)
}

/// A keyless table: multisets of row digests (server-side, streamed in sorted order from both servers) or, on the
/// client path, of row hashes; online, compared again after the destination applied past the source until the
/// same differences show twice.
async fn keyless(ctx: &Ctx<'_>, sink: &mut Sink<'_, '_>) -> Result<()> {
    let mut previous: Option<Vec<Diff>> = None;
    let rounds = if ctx.applied.is_some() {
        ctx.opts.recheck.rounds_max.max(1) + 1
    } else {
        1
    };
    for round in 0..rounds {
        let pass = keyless_once(ctx, sink.s).await?;
        let diffs = pass.diffs;
        if round == 0 {
            sink.result.chunks = 1;
            sink.result.rows_source = pass.rows_source;
            sink.result.rows_destination = pass.rows_destination;
        }
        if ctx.applied.is_none() || round + 1 == rounds {
            sink.result.missing += pass.unlisted.0;
            sink.result.extra += pass.unlisted.1;
        }
        let Some(applied) = &ctx.applied else {
            return sink.take(ctx, diffs).await;
        };
        if diffs.is_empty() {
            return Ok(());
        }
        if let Some(prev) = &previous {
            let hashes = |v: &[Diff]| {
                let mut h: Vec<(Kind, crate::canonical::RowHash)> = v
                    .iter()
                    .map(|d| (d.kind, sink.s.cmp.hash(d.row())))
                    .collect();
                h.sort();
                h
            };
            if hashes(prev) == hashes(&diffs) {
                // The same rows differ before and after the destination caught up: they are real.
                for d in &diffs {
                    sink.result.add(
                        d.kind,
                        key_text(sink.s.src, d.row()),
                        ctx.opts.keys_listed_max,
                    );
                }
                if let Some(o) = sink.out.as_deref_mut() {
                    o.write(sink.s.src, sink.s.dest, &diffs)?;
                }
                return Ok(());
            }
        }
        previous = Some(diffs);
        let p = {
            let mut c = ctx.spool.get_conn().await.ctx("source")?;
            ferry_engine::cdc::position::Position::current(&mut c, applied.source_flavor).await?
        };
        online::wait_applied(&ctx.dpool, applied, &p, ctx.opts.recheck.wait_s_max).await?;
    }
    let n = previous.map(|v| v.len()).unwrap_or(0);
    sink.result.unsettled += n as u64;
    Ok(())
}

/// One pass over a keyless table.
struct KeylessPass {
    rows_source: u64,
    rows_destination: u64,
    diffs: Vec<Diff>,
    /// Rows only on the source / only on the destination past `diffs_per_table_max`: counted, not read.
    unlisted: (u64, u64),
}

async fn keyless_once(ctx: &Ctx<'_>, s: &Sides<'_>) -> Result<KeylessPass> {
    let sample = ctx.sample.as_ref();
    if s.strategy == Strategy::Client {
        let r = Range { lo: None, hi: None };
        let o = locate(ctx, s, &r).await?;
        return Ok(KeylessPass {
            rows_source: o.rows_source,
            rows_destination: o.rows_destination,
            diffs: o.diffs,
            unlisted: (0, 0),
        });
    }
    let mut sc = ctx.spool.get_conn().await.ctx("source")?;
    let mut dc = ctx.dpool.get_conn().await.ctx("destination")?;
    let (ssql, dsql) = (
        digest::keyless_digests_sql(s.src, sample),
        digest::keyless_digests_sql(s.dest, sample),
    );
    let mut sr = sc.query_iter(ssql).await.ctx("row digests on the source")?;
    let mut dr = dc
        .query_iter(dsql)
        .await
        .ctx("row digests on the destination")?;
    let (mut ns, mut nd) = (0u64, 0u64);
    let mut only_src: BTreeMap<String, u64> = BTreeMap::new();
    let mut only_dst: BTreeMap<String, u64> = BTreeMap::new();
    let next = |row: Option<mysql_async::Row>| -> Option<String> {
        row.and_then(|r| r.get::<String, _>(0))
    };
    let mut a = next(sr.next().await.ctx("source")?);
    let mut b = next(dr.next().await.ctx("destination")?);
    let cap = ctx.opts.diffs_per_table_max;
    let mut unlisted = (0u64, 0u64);
    loop {
        match (&a, &b) {
            (None, None) => break,
            (Some(x), Some(y)) if x == y => {
                ns += 1;
                nd += 1;
                a = next(sr.next().await.ctx("source")?);
                b = next(dr.next().await.ctx("destination")?);
            }
            (Some(x), y) if y.as_ref().is_none_or(|y| x < y) => {
                ns += 1;
                if only_src.len() < cap {
                    *only_src.entry(x.clone()).or_default() += 1;
                } else {
                    unlisted.0 += 1;
                }
                a = next(sr.next().await.ctx("source")?);
            }
            (_, Some(y)) => {
                nd += 1;
                if only_dst.len() < cap {
                    *only_dst.entry(y.clone()).or_default() += 1;
                } else {
                    unlisted.1 += 1;
                }
                b = next(dr.next().await.ctx("destination")?);
            }
            (Some(_), None) => unreachable!("covered by the arm above"),
        }
    }
    drop(sr);
    drop(dr);
    drop(sc);
    drop(dc);
    let mut diffs = Vec::new();
    for (pool, t, wanted, kind) in [
        (&ctx.spool, s.src, &only_src, Kind::Missing),
        (&ctx.dpool, s.dest, &only_dst, Kind::Extra),
    ] {
        let cols: Vec<&Column> = t.columns.iter().collect();
        let hexes: Vec<String> = wanted.keys().cloned().collect();
        for batch in hexes.chunks(500) {
            let sql = digest::keyless_rows_sql(t, batch);
            let mut conn = pool.get_conn().await?;
            let mut rows = conn.exec_iter(sql, ()).await?;
            let mut left: BTreeMap<String, u64> =
                batch.iter().map(|h| (h.clone(), wanted[h])).collect();
            while let Some(row) = rows.next().await? {
                let h: Option<String> = row.get(cols.len());
                let values = plan::decode_row(row, &cols)?;
                if let Some(n) = h.and_then(|h| left.get_mut(&h)) {
                    if *n > 0 {
                        *n -= 1;
                        diffs.push(Diff {
                            kind,
                            source: (kind == Kind::Missing).then(|| values.clone()),
                            destination: (kind == Kind::Extra).then_some(values),
                            columns: vec![],
                        });
                    }
                }
            }
        }
    }
    Ok(KeylessPass {
        rows_source: ns,
        rows_destination: nd,
        diffs,
        unlisted,
    })
}
