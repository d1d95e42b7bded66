//! Compares every selected table between source and destination, chunk by key range, and locates differing rows.

use crate::canonical::{row_hash, RowHash};
use ferry_engine::codes;
use ferry_engine::config::TaskConfig;
use ferry_engine::copy::plan::{self, Range};
use ferry_engine::error::{Error, Result, ResultExt};
use ferry_engine::mysql::conn::{Role, Server};
use ferry_engine::schema::introspect;
use ferry_engine::schema::model::{Column, Table};
use ferry_engine::value::Value;
use futures_util::TryStreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Pool;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Chunks compared at once (one connection per side each).
    pub parallel: usize,
    pub chunk_rows: u64,
    /// How many differing keys to list per table.
    pub keys_listed_max: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            parallel: 4,
            chunk_rows: 10_000,
            keys_listed_max: 10,
        }
    }
}

/// One table's result.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableResult {
    pub table: String,
    pub rows_source: u64,
    pub rows_destination: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    /// The first differing keys, as `kind key` (`missing (5)`, `different (7, 'x')`).
    pub first_differences: Vec<String>,
    pub chunks: usize,
}

impl TableResult {
    pub fn equal(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.different == 0
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct VerifyReport {
    pub tables: Vec<TableResult>,
    pub seconds: f64,
}

impl VerifyReport {
    pub fn consistent(&self) -> bool {
        self.tables.iter().all(TableResult::equal)
    }

    pub fn rows_checked(&self) -> u64 {
        self.tables.iter().map(|t| t.rows_source).sum()
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

/// Verifies every table the task selects.
pub async fn verify(cfg: &TaskConfig, opts: &VerifyOptions) -> Result<VerifyReport> {
    let started = Instant::now();
    let source = Server::connect(&cfg.source, "source").await?;
    let destination = Server::connect(&cfg.destination, "destination").await?;
    let ipool = source.pool(Role::Introspect, 1);
    let mut iconn = ipool.get_conn().await.ctx("source")?;
    let schema = introspect::read(&mut iconn, &cfg.objects, &cfg.metadata.schema).await?;
    drop(iconn);
    let _ = ipool.disconnect().await;

    let spool = source.pool(Role::ReadRows, opts.parallel + 1);
    let dpool = destination.pool(Role::ReadRows, opts.parallel);
    let mut tables = Vec::new();
    for t in &schema.tables {
        tables.push(verify_table(&spool, &dpool, t, opts).await?);
    }
    let _ = spool.disconnect().await;
    let _ = dpool.disconnect().await;
    Ok(VerifyReport {
        tables,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The result of one chunk: row counts and the differences found in it.
#[derive(Default)]
struct ChunkResult {
    rows_source: u64,
    rows_destination: u64,
    missing: Vec<String>,
    extra: Vec<String>,
    different: Vec<String>,
}

pub async fn verify_table(
    spool: &Pool,
    dpool: &Pool,
    t: &Table,
    opts: &VerifyOptions,
) -> Result<TableResult> {
    let ranges = {
        let mut c = spool.get_conn().await.ctx("source")?;
        plan::plan_table(&mut c, t, opts.chunk_rows, 1_000_000).await?
    };
    let chunks = ranges.len();
    let results: Vec<ChunkResult> =
        futures_util::stream::iter(ranges.into_iter().map(Ok::<Range, Error>))
            .map_ok(|r| verify_chunk(spool, dpool, t, r))
            .try_buffered(opts.parallel.max(1))
            .try_collect()
            .await?;
    let mut out = TableResult {
        table: t.display_name(),
        chunks,
        ..Default::default()
    };
    for r in results {
        out.rows_source += r.rows_source;
        out.rows_destination += r.rows_destination;
        out.missing += r.missing.len() as u64;
        out.extra += r.extra.len() as u64;
        out.different += r.different.len() as u64;
        for (kind, keys) in [
            ("missing", r.missing),
            ("extra", r.extra),
            ("different", r.different),
        ] {
            for k in keys {
                if out.first_differences.len() < opts.keys_listed_max {
                    out.first_differences.push(format!("{kind} {k}"));
                }
            }
        }
    }
    Ok(out)
}

async fn read_side(pool: &Pool, sql: &str, cols: &[&Column]) -> Result<Vec<Vec<Value>>> {
    let mut conn = pool.get_conn().await?;
    let mut result = conn.exec_iter(sql, ()).await?;
    let mut rows = Vec::new();
    while let Some(row) = result.next().await? {
        rows.push(plan::decode_row(row, cols)?);
    }
    Ok(rows)
}

/// Key of a row as text, for the report.
fn key_text(t: &Table, row: &[Value]) -> String {
    let parts: Vec<String> = match &t.key {
        Some(k) => k.columns.iter().map(|&i| show(&row[i])).collect(),
        None => row.iter().take(4).map(show).collect(),
    };
    format!("({})", parts.join(", "))
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Bytes(b) => format!("'{}'", String::from_utf8_lossy(b)),
        other => format!("{other:?}"),
    }
}

async fn verify_chunk(spool: &Pool, dpool: &Pool, t: &Table, range: Range) -> Result<ChunkResult> {
    let all: Vec<usize> = (0..t.columns.len()).collect();
    let cols: Vec<&Column> = t.columns.iter().collect();
    let json: Vec<bool> = t.columns.iter().map(|c| c.data_type == "json").collect();
    let sql = plan::select_chunk_sql(t, &all, range.lo.as_deref(), range.hi.as_deref())?;
    let (src, dst) = tokio::try_join!(
        async {
            read_side(spool, &sql, &cols)
                .await
                .ctx(format!("reading {} on the source", t.display_name()))
        },
        async {
            read_side(dpool, &sql, &cols)
                .await
                .ctx(format!("reading {} on the destination", t.display_name()))
        },
    )?;
    let hash_all = |rows: &Vec<Vec<Value>>| -> Vec<RowHash> {
        rows.par_iter().map(|r| row_hash(r, &json)).collect()
    };
    let (sh, dh) = rayon::join(|| hash_all(&src), || hash_all(&dst));
    let mut res = ChunkResult {
        rows_source: src.len() as u64,
        rows_destination: dst.len() as u64,
        ..Default::default()
    };
    let digest = |h: &[RowHash]| -> [u8; 32] {
        let mut d = Sha256::new();
        for x in h {
            d.update(x);
        }
        d.finalize().into()
    };
    if sh.len() == dh.len() && digest(&sh) == digest(&dh) {
        return Ok(res);
    }
    // Drill down: rows keyed by their key (or, without a key, by their whole content as a multiset).
    let key_hash = |row: &[Value]| -> RowHash {
        match &t.key {
            Some(k) => {
                let kv: Vec<Value> = k.columns.iter().map(|&i| row[i].clone()).collect();
                row_hash(&kv, &[])
            }
            None => row_hash(row, &json),
        }
    };
    let mut dst_by_key: HashMap<RowHash, Vec<(usize, RowHash)>> = HashMap::new();
    for (i, row) in dst.iter().enumerate() {
        dst_by_key
            .entry(key_hash(row))
            .or_default()
            .push((i, dh[i]));
    }
    for (i, row) in src.iter().enumerate() {
        let k = key_hash(row);
        match dst_by_key.get_mut(&k).and_then(|v| v.pop()) {
            None => res.missing.push(key_text(t, row)),
            Some((_, h)) if h != sh[i] => res.different.push(key_text(t, row)),
            Some(_) => {}
        }
    }
    for v in dst_by_key.into_values() {
        for (i, _) in v {
            res.extra.push(key_text(t, &dst[i]));
        }
    }
    Ok(res)
}
