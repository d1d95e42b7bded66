//! Online rechecks: while incremental sync runs, a row found different is read again after the destination has
//! applied past the source position seen at the read, and only a difference that persists is reported.
//!
//! One round, for the keys still in question: read the source rows (S1), take the source position P, wait until
//! the destination's checkpoint is at or past P, read the destination rows (D), read the source rows again (S2).
//! Where S1 = S2 the row held that value over the whole window, so a destination that has applied past P must
//! hold it too: D = S1 settles the row as equal, D != S1 is a real difference. Where S1 != S2 the row changed
//! during the round and goes to the next one; rows still changing after the last round are reported as
//! unsettled (neither equal nor different).

use crate::diff::{Diff, Kind, RowCompare};
use crate::digest;
use ferry_engine::cdc::position::Position;
use ferry_engine::codes;
use ferry_engine::copy::plan;
use ferry_engine::error::{Error, Result, ResultExt};
use ferry_engine::meta::Meta;
use ferry_engine::mysql::conn::Flavor;
use ferry_engine::schema::model::{Column, Table};
use ferry_engine::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::Pool;
use std::time::{Duration, Instant};

/// Keys read per statement.
const KEYS_PER_READ: usize = 500;

/// How rechecks run.
#[derive(Debug, Clone)]
pub struct Recheck {
    /// Rounds before a row that keeps changing is reported as unsettled.
    pub rounds_max: u32,
    /// The longest wait for the destination to apply past a source position.
    pub wait_s_max: u64,
}

impl Default for Recheck {
    fn default() -> Self {
        Recheck {
            rounds_max: 5,
            wait_s_max: 120,
        }
    }
}

/// Where the destination's sync stands, read from the task's metadata there.
pub struct Applied<'a> {
    pub meta: &'a Meta,
    pub source_flavor: Flavor,
}

/// The outcome of rechecking one batch of differences.
#[derive(Debug, Default)]
pub struct Outcome {
    pub persistent: Vec<Diff>,
    /// Rows that changed in every round.
    pub unsettled: Vec<Diff>,
    pub rounds: u32,
}

/// Reads the rows of `t` with `keys` (key layout of `t`) over every column.
pub async fn rows_by_key(pool: &Pool, t: &Table, keys: &[Vec<Value>]) -> Result<Vec<Vec<Value>>> {
    let cols: Vec<&Column> = t.columns.iter().collect();
    let mut out = Vec::with_capacity(keys.len());
    let mut conn = pool.get_conn().await?;
    for batch in keys.chunks(KEYS_PER_READ) {
        let sql = digest::rows_by_key_sql(t, batch)?;
        let mut result = conn.exec_iter(sql, ()).await?;
        while let Some(row) = result.next().await? {
            out.push(plan::decode_row(row, &cols)?);
        }
    }
    Ok(out)
}

/// Waits until the destination has applied the source's binlog at least to `p`.
pub async fn wait_applied(
    dpool: &Pool,
    applied: &Applied<'_>,
    p: &Position,
    wait_s_max: u64,
) -> Result<()> {
    let started = Instant::now();
    let mut conn = dpool.get_conn().await.ctx("destination")?;
    loop {
        let cdc = applied.meta.cdc(&mut conn).await?;
        let Some(cp) = cdc.checkpoint.or(cdc.p0) else {
            return Err(Error::definite(
                &codes::VERIFY_NO_SYNC,
                "the task has recorded no binlog position on the destination",
            ));
        };
        if cp.cmp_in_log(p)?.is_ge() {
            return Ok(());
        }
        if started.elapsed() >= Duration::from_secs(wait_s_max) {
            return Err(Error::definite(
                &codes::VERIFY_LAG,
                format!(
                    "waited {wait_s_max} s for the destination to apply past the source's {p}; its checkpoint is at {cp}"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rechecks `diffs` of the keyed table `t` (source, compared columns) against its destination copy `dest`.
#[allow(clippy::too_many_arguments)]
pub async fn recheck(
    spool: &Pool,
    dpool: &Pool,
    t: &Table,
    dest: &Table,
    cmp: &RowCompare<'_>,
    applied: &Applied<'_>,
    opts: &Recheck,
    diffs: Vec<Diff>,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    if diffs.is_empty() {
        return Ok(out);
    }
    let mut keys: Vec<Vec<Value>> = diffs.iter().map(|d| cmp.key_of(d.row())).collect();
    let mut last: Vec<Diff> = diffs;
    while !keys.is_empty() && out.rounds < opts.rounds_max.max(1) {
        out.rounds += 1;
        let s1 = by_key(cmp, rows_by_key(spool, t, &keys).await.ctx("source")?);
        let p = {
            let mut c = spool.get_conn().await.ctx("source")?;
            Position::current(&mut c, applied.source_flavor).await?
        };
        wait_applied(dpool, applied, &p, opts.wait_s_max).await?;
        let d = by_key(
            cmp,
            rows_by_key(dpool, dest, &keys).await.ctx("destination")?,
        );
        let s2 = by_key(cmp, rows_by_key(spool, t, &keys).await.ctx("source")?);
        let mut next = Vec::new();
        let mut changing = Vec::new();
        for k in keys {
            let h = crate::canonical::row_hash(&k, &[]);
            let (a, b, dd) = (s1.get(&h), s2.get(&h), d.get(&h));
            let stable = match (a, b) {
                (None, None) => true,
                (Some(x), Some(y)) => cmp.hash(x) == cmp.hash(y),
                _ => false,
            };
            if !stable {
                changing.push(Diff {
                    kind: Kind::Different,
                    source: b.cloned(),
                    destination: dd.cloned(),
                    columns: vec![],
                });
                next.push(k);
                continue;
            }
            let found = cmp.locate(
                a.cloned().into_iter().collect(),
                dd.cloned().into_iter().collect(),
            );
            out.persistent.extend(found);
        }
        keys = next;
        last = changing;
    }
    if !keys.is_empty() {
        out.unsettled = last;
    }
    Ok(out)
}

fn by_key(
    cmp: &RowCompare<'_>,
    rows: Vec<Vec<Value>>,
) -> std::collections::HashMap<crate::canonical::RowHash, Vec<Value>> {
    rows.into_iter().map(|r| (cmp.key_hash(&r), r)).collect()
}
