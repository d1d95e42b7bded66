//! Catch-up's re-copy of the tables a replayed foreign key cascade may have changed.
//!
//! The source does not log the rows its ON DELETE / ON UPDATE rules change, so catch-up makes those changes itself
//! by following the destination's child rows level by level. But in catch-up the destination's rows are copies from
//! later than the event being replayed: a child already under its new values, or copied after it was gone, hides
//! the grandchildren the source's cascade reached (they stay as orphans, or under old values); a child that
//! followed a newer parent onto a unique value an older, deleted parent had is deleted when that parent's delete is
//! replayed. Which rows the source's cascade reached cannot be known from the destination.
//!
//! So catch-up records, with its checkpoint, the tables whose rows a followed cascade may have changed (the
//! followers of the cascading table, transitively: `reach`). When catch-up reaches P1 with tables recorded, sync
//! runs a round before reading on: those tables are read again from the source under one consistent snapshot whose
//! binlog position P1' the server reports (MariaDB's `binlog_snapshot_position`; MySQL has none, FERRY-CDC-016),
//! in key order, a chunk at a time: the snapshot's rows are upserted and the destination's rows whose key the
//! snapshot lacks in the chunk's key range are deleted, each chunk in one destination transaction with its
//! progress. Then P1 moves to P1' and the rows catch-up parked in those tables are dropped. Catch-up goes on to P1'
//! and leaves the re-copied tables' rows alone for the transactions the snapshot already holds; the other tables
//! were exact from the old P1 on (no cascade reached them), so following a cascade into them stays exact. At P1'
//! every table is the source as of P1', and sync turns exact.
//!
//! A crash in a round starts it again under a new snapshot (the old snapshot died with its session, and one table
//! re-copied under one snapshot and another under a later one would not agree); a crash after the last table and
//! before P1 moved only moves P1 (`Step::Finish`).

use super::ddl::Name;
use super::position::Position;
use super::sql;
use super::sync::Control;
use crate::codes;
use crate::copy::plan;
use crate::error::{Error, Result, ResultExt};
use crate::meta::{Meta, RecopyRow};
use crate::mysql::conn::{Flavor, Role, Server};
use crate::schema::model::{FkRule, NameMap, Table};
use crate::throttle::Throttle;
use crate::value::Value;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, TxOpts};
use std::collections::{BTreeSet, HashMap};
use tokio::sync::watch;
use tracing::info;

/// Rows per statement, at most, and bytes of row images per statement (as the applier's runs).
const STATEMENT_ROWS_MAX: usize = 1_000;
const STATEMENT_BYTES_MAX: usize = 2 << 20;

/// A change of a row, as foreign key rules see it: a delete, or an update of some of its columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Delete,
    /// Indexes of the columns whose values changed.
    Update(BTreeSet<usize>),
}

impl Change {
    /// The change between two images of a row (`new` None: deleted).
    pub fn between<T: PartialEq>(old: &[T], new: Option<&[T]>) -> Change {
        match new {
            None => Change::Delete,
            Some(n) => Change::Update(
                old.iter()
                    .zip(n)
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .map(|(i, _)| i)
                    .collect(),
            ),
        }
    }
}

/// The tables whose rows a `change` of rows of `from` may change on the source: the followers whose ON DELETE (or,
/// for an update, whose ON UPDATE over a changed column) rule is CASCADE or SET NULL, then what that does to theirs,
/// and so on; each table and kind of change once, so self-referencing tables and cycles end. `shape` finds a table
/// by name; a follower it does not know (not tracked) is left out.
pub fn reach<'a>(
    from: &'a Table,
    change: Change,
    shape: impl Fn(&Name) -> Option<&'a Table>,
) -> BTreeSet<Name> {
    let mut out = BTreeSet::new();
    // What is already followed of each table: a delete, and updates of which columns.
    let mut seen: HashMap<Name, (bool, BTreeSet<usize>)> = HashMap::new();
    let mut work = vec![(from, change)];
    while let Some((t, change)) = work.pop() {
        for f in &t.followers {
            let rule = match &change {
                Change::Delete => f.on_delete,
                Change::Update(cols) if f.referenced.iter().any(|i| cols.contains(i)) => {
                    f.on_update
                }
                Change::Update(_) => continue,
            };
            let n = Name::new(&f.db, &f.table);
            let Some(child) = shape(&n) else { continue };
            let fk_columns = || -> BTreeSet<usize> {
                f.columns
                    .iter()
                    .filter_map(|c| child.columns.iter().position(|x| &x.name == c))
                    .collect()
            };
            let next = match (rule, &change) {
                (FkRule::Restrict, _) => continue,
                (FkRule::Cascade, Change::Delete) => Change::Delete,
                (FkRule::Cascade, Change::Update(_)) | (FkRule::SetNull, _) => {
                    Change::Update(fk_columns())
                }
            };
            out.insert(n.clone());
            let done = seen.entry(n).or_default();
            let new = match &next {
                Change::Delete => !std::mem::replace(&mut done.0, true),
                Change::Update(cols) => {
                    let before = done.1.len();
                    done.1.extend(cols.iter().copied());
                    done.1.len() > before
                }
            };
            if new {
                work.push((child, next));
            }
        }
    }
    out
}

/// The tables any change of rows of `from` may change (`reach` of a delete and of an update of every column).
pub fn reach_any<'a>(
    from: &'a Table,
    shape: impl Fn(&Name) -> Option<&'a Table> + Copy,
) -> BTreeSet<Name> {
    let mut out = reach(from, Change::Delete, shape);
    out.extend(reach(
        from,
        Change::Update((0..from.columns.len()).collect()),
        shape,
    ));
    out
}

/// A recorded table's re-copy state, as the metadata holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub snapshot: Option<Position>,
    pub copied: bool,
}

impl From<&RecopyRow> for Recorded {
    fn from(r: &RecopyRow) -> Recorded {
        Recorded {
            snapshot: r.snapshot.clone(),
            copied: r.copied,
        }
    }
}

/// What the durable re-copy state asks of sync before it reads the binlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing: no table recorded, catch-up not at P1 yet, or the round is over.
    Nothing,
    /// Catch-up reached P1 and recorded tables are not all re-copied under one snapshot: a round, under a new one.
    Run,
    /// Every recorded table was re-copied under this snapshot, and P1 has not moved there yet.
    Finish(Position),
}

/// The step for the recorded tables' states, P1 and the checkpoint `at`. A task that applies idempotently for
/// good (`ignore_and_proceed`: the destination keeps rows of its own, which a re-copy would delete) has none.
pub fn step(recorded: &[Recorded], p1: &Position, at: &Position, idempotent: bool) -> Result<Step> {
    if idempotent || recorded.is_empty() {
        return Ok(Step::Nothing);
    }
    if let Some(s) = whole_round(recorded) {
        return Ok(if s == *p1 {
            Step::Nothing
        } else {
            Step::Finish(s)
        });
    }
    Ok(if at.cmp_in_log(p1)?.is_ge() {
        Step::Run
    } else {
        Step::Nothing
    })
}

/// The snapshot every recorded table was re-copied under, if there is one.
fn whole_round(recorded: &[Recorded]) -> Option<Position> {
    let first = recorded.first()?.snapshot.clone()?;
    recorded
        .iter()
        .all(|r| r.copied && r.snapshot.as_ref() == Some(&first))
        .then_some(first)
}

/// Whether the round is over (P1 is its snapshot): catch-up records no more tables, and leaves the re-copied ones
/// alone for the transactions before P1.
pub fn round_done(recorded: &[Recorded], p1: &Position) -> bool {
    whole_round(recorded).is_some_and(|s| s == *p1)
}

/// Whether the source transaction that starts at `start` is one a snapshot at `snapshot` already holds.
pub fn in_snapshot(start: &Position, snapshot: &Position) -> Result<bool> {
    Ok(start.cmp_in_log(snapshot)?.is_lt())
}

/// Whether catch-up must stop at P1 for a round: tables were recorded and no round is over.
pub fn due_at_p1(recorded_any: bool, round_done: bool, idempotent: bool) -> bool {
    recorded_any && !round_done && !idempotent
}

/// How a round ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Every table re-copied and P1 moved to the snapshot.
    Done(Position),
    /// Stopped between chunks (`ferry stop`); the next run starts the round again.
    Stopped,
}

/// The tables a round re-copies (source names): the recorded ones still tracked and every table any change of
/// theirs may reach. After the round catch-up leaves a re-copied table alone, cascades into it included, so a
/// table below it must have been re-copied too (the snapshot holds what those cascades did there).
pub fn round_tables(recorded: &[RecopyRow], tracked: &[Table]) -> Vec<Name> {
    let by_name: HashMap<Name, &Table> = tracked
        .iter()
        .map(|t| (Name::new(&t.db, &t.name), t))
        .collect();
    let shape = |n: &Name| by_name.get(n).copied();
    let mut out = BTreeSet::new();
    for r in recorded {
        let n = Name::new(&r.db, &r.name);
        if let Some(t) = by_name.get(&n) {
            out.extend(reach_any(t, shape));
            out.insert(n);
        }
    }
    out.into_iter().collect()
}

/// Runs a round: opens a snapshot on the source (MariaDB only), re-copies `tables` (source shapes, written under
/// their destination names) a chunk of `chunk_rows` at a time, then moves P1 to the snapshot's position. `at` is
/// the checkpoint (the snapshot is never before it).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    source: &Server,
    dst: &mut Conn,
    meta: &Meta,
    tables: &[&Table],
    at: &Position,
    names: &NameMap,
    chunk_rows: u64,
    throttle: &Throttle,
    control: &mut watch::Receiver<Control>,
) -> Result<Ended> {
    let list: Vec<(String, String)> = tables
        .iter()
        .map(|t| (t.db.clone(), t.name.clone()))
        .collect();
    let shown: Vec<String> = tables.iter().map(|t| t.display_name()).collect();
    snapshot_position_reported(source.info.flavor, &source.info.version, &shown)?;
    let pool = source.pool(Role::ReadRows, 1);
    let result = async {
        let mut src = Server::checkout(&pool, "source session for a re-copy").await?;
        let snapshot = Position::snapshot(&mut src).await?;
        if snapshot.cmp_in_log(at)?.is_lt() {
            return Err(Error::definite(
                &codes::CDC_POSITION,
                format!("the source's snapshot position {snapshot} is before the checkpoint {at}"),
            ));
        }
        meta.recopy_start(dst, &list, &snapshot).await?;
        info!(snapshot = %snapshot, tables = %shown.join(", "), "catch-up reached P1 after following foreign key cascades: re-copying the tables they reached from a source snapshot");
        let chunk_rows = chunk_rows.max(1);
        for t in tables {
            let dest = t.mapped(names);
            let whole = match t.key.as_ref() {
                Some(_) => {
                    copy_keyed(&mut src, dst, meta, t, &dest, chunk_rows, throttle, control).await?
                }
                None => copy_keyless(&mut src, dst, meta, t, &dest, throttle).await?,
            };
            if !whole {
                let _ = src.query_drop("COMMIT").await;
                return Ok(Ended::Stopped);
            }
            info!(table = %t.display_name(), "re-copied");
        }
        crate::failpoint::hit(crate::failpoint::names::RECOPY_DONE).await?;
        meta.recopy_finish(dst, &snapshot, &list).await?;
        let _ = src.query_drop("COMMIT").await;
        info!(p1 = %snapshot, "re-copy done: catch-up goes on to the snapshot's position, exact after it");
        Ok(Ended::Done(snapshot))
    }
    .await;
    let _ = pool.disconnect().await;
    result
}

/// A round needs a snapshot whose binlog position the source reports: MariaDB's `binlog_snapshot_position`. MySQL
/// has none (its P0 is the current position, not a snapshot's), and a position taken beside a snapshot could be
/// off by any transaction committed between the two, so the round is refused there (FERRY-CDC-016) rather than run
/// inexactly.
pub fn snapshot_position_reported(flavor: Flavor, version: &str, tables: &[String]) -> Result<()> {
    if flavor == Flavor::MariaDb {
        return Ok(());
    }
    Err(Error::definite(
        &codes::CDC_RECOPY_SNAPSHOT,
        format!(
            "catch-up followed foreign key cascades into {} while the copy ran; the rows they reached must be \
             re-read under a snapshot at a known binlog position, which {version} does not report",
            tables.join(", ")
        ),
    ))
}

/// A read under the round's snapshot that failed. 1412 (ER_TABLE_DEF_CHANGED): a DDL changed the table after the
/// snapshot was taken; the binlog then holds it between the checkpoint and the next snapshot too, where the applier
/// refuses it, so the task stops here with the same code.
fn snapshot_read_error(t: &Table, e: Error) -> Error {
    if e.mysql_errno() == Some(1412) {
        return Error::definite(
            &codes::CDC_DDL,
            format!(
                "a DDL changed {} while catch-up re-copied it from a source snapshot (the tables a replayed foreign \
                 key cascade reached): release the task and run it again on a fresh destination",
                t.display_name()
            ),
        );
    }
    e.context(format!("re-copying {}", t.display_name()))
}

/// Waits out a pause; true when asked to stop.
async fn stop_asked(control: &mut watch::Receiver<Control>) -> bool {
    while *control.borrow() == Control::Pause {
        if control.changed().await.is_err() {
            break;
        }
    }
    *control.borrow() == Control::Stop
}

/// A table with a key, in chunks of its snapshot rows in key order. True when whole, false when stopped.
#[allow(clippy::too_many_arguments)]
async fn copy_keyed(
    src: &mut Conn,
    dst: &mut Conn,
    meta: &Meta,
    t: &Table,
    dest: &Table,
    chunk_rows: u64,
    throttle: &Throttle,
    control: &mut watch::Receiver<Control>,
) -> Result<bool> {
    let key = sql::key_of(t)?;
    let present = t.present_columns();
    let mut lo: Option<Vec<Value>> = None;
    loop {
        if stop_asked(control).await {
            return Ok(false);
        }
        let q = format!(
            "{} LIMIT {chunk_rows}",
            plan::select_chunk_sql(t, &present, lo.as_deref(), None)?
        );
        throttle.query().await;
        let found: Vec<mysql_async::Row> = src
            .exec(q, ())
            .await
            .map_err(|e| snapshot_read_error(t, e.into()))?;
        let full = found.len() as u64 >= chunk_rows;
        let rows: Vec<Vec<Value>> = found
            .into_iter()
            .map(|r| plan::decode_present_row(r, t, &present))
            .collect::<Result<_>>()?;
        let bytes: u64 = rows.iter().flatten().map(Value::size_bytes).sum();
        throttle.rows(rows.len() as u64, bytes).await;
        let hi = if full {
            rows.last().map(|r| sql::project(r, &key))
        } else {
            None
        };
        write_chunk(
            dst,
            meta,
            t,
            dest,
            &key,
            lo.as_deref(),
            hi.as_deref(),
            &rows,
        )
        .await?;
        crate::failpoint::hit(crate::failpoint::names::RECOPY_CHUNK_COMMITTED).await?;
        match hi {
            None => return Ok(true),
            Some(h) => lo = Some(h),
        }
    }
}

/// One chunk in one destination transaction: rows that hold one of the chunk's unique values under another key go
/// (copies from before the value moved: the snapshot re-creates them from their own chunk if it has them), then
/// the destination's rows in the chunk's key range that the snapshot lacks, then the snapshot's rows are upserted,
/// with the chunk's progress. After it the chunk's unique values are held by the rows the snapshot gives them to.
#[allow(clippy::too_many_arguments)]
async fn write_chunk(
    dst: &mut Conn,
    meta: &Meta,
    t: &Table,
    dest: &Table,
    key: &[usize],
    lo: Option<&[Value]>,
    hi: Option<&[Value]>,
    rows: &[Vec<Value>],
) -> Result<()> {
    let what = || format!("re-copying {}", t.display_name());
    let keys: Vec<Vec<Value>> = rows.iter().map(|r| sql::project(r, key)).collect();
    let own = sql::where_tuples(dest, key, &keys)?;
    // Per unique key: rows holding one of the chunk's values other than the row the snapshot gives it to (a row of
    // the chunk included: a multi-row upsert would otherwise update the holder through the unique key).
    let mut held = Vec::new();
    for u in &dest.uniques {
        let owned: Vec<usize> = u.columns.iter().chain(key).copied().collect();
        let rows: Vec<&Vec<Value>> = rows
            .iter()
            .filter(|r| !sql::project(r, &u.columns).iter().any(Value::is_null))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let values: Vec<Vec<Value>> = rows.iter().map(|r| sql::project(r, &u.columns)).collect();
        let owners: Vec<Vec<Value>> = rows.iter().map(|r| sql::project(r, &owned)).collect();
        held.push(format!(
            "(({}) AND NOT ({}))",
            sql::where_tuples(dest, &u.columns, &values)?,
            sql::where_tuples(dest, &owned, &owners)?
        ));
    }
    let mut tx = dst.start_transaction(TxOpts::default()).await.ctx(what())?;
    if !held.is_empty() {
        tx.query_drop(format!(
            "DELETE FROM {} WHERE {}",
            dest.qualified(),
            held.join(" OR ")
        ))
        .await
        .ctx(what())?;
    }
    tx.query_drop(format!(
        "DELETE FROM {} WHERE {} AND NOT ({own})",
        dest.qualified(),
        plan::range_where(dest, lo, hi)?
    ))
    .await
    .ctx(what())?;
    for part in statements(rows) {
        tx.query_drop(sql::upsert(dest, &part)?).await.ctx(what())?;
    }
    let after = hi.map(crate::meta::values_json);
    tx.query_drop(meta.recopy_chunk_sql(
        &t.db,
        &t.name,
        after.as_deref(),
        rows.len() as u64,
        hi.is_none(),
    ))
    .await
    .ctx(what())?;
    if tx.affected_rows() != 1 {
        tx.rollback().await.ctx(what())?;
        return Err(meta.fenced_error(dst, "re-copying a table").await);
    }
    tx.commit().await.ctx(what())
}

/// A table without a key is re-copied whole in one destination transaction (its rows cannot be addressed).
async fn copy_keyless(
    src: &mut Conn,
    dst: &mut Conn,
    meta: &Meta,
    t: &Table,
    dest: &Table,
    throttle: &Throttle,
) -> Result<bool> {
    let what = || format!("re-copying {}", t.display_name());
    let present = t.present_columns();
    let mut tx = dst.start_transaction(TxOpts::default()).await.ctx(what())?;
    tx.query_drop(format!("DELETE FROM {}", dest.qualified()))
        .await
        .ctx(what())?;
    throttle.query().await;
    let mut result = src
        .exec_iter(plan::select_chunk_sql(t, &present, None, None)?, ())
        .await
        .map_err(|e| snapshot_read_error(t, e.into()))?;
    let (mut batch, mut bytes, mut n) = (Vec::new(), 0usize, 0u64);
    loop {
        let row = result.next().await.ctx(what())?;
        let end = row.is_none();
        if let Some(r) = row {
            let r = plan::decode_present_row(r, t, &present)?;
            let size: u64 = r.iter().map(Value::size_bytes).sum();
            throttle.rows(1, size).await;
            bytes += r.iter().map(Value::literal_len_hint).sum::<usize>();
            batch.push(r);
            n += 1;
        }
        if !batch.is_empty()
            && (end || batch.len() >= STATEMENT_ROWS_MAX || bytes >= STATEMENT_BYTES_MAX)
        {
            let refs: Vec<&[Value]> = batch.iter().map(Vec::as_slice).collect();
            tx.query_drop(sql::insert(dest, &refs)?).await.ctx(what())?;
            batch.clear();
            bytes = 0;
        }
        if end {
            break;
        }
    }
    drop(result);
    tx.query_drop(meta.recopy_chunk_sql(&t.db, &t.name, None, n, true))
        .await
        .ctx(what())?;
    if tx.affected_rows() != 1 {
        tx.rollback().await.ctx(what())?;
        return Err(meta.fenced_error(dst, "re-copying a table").await);
    }
    tx.commit().await.ctx(what())?;
    crate::failpoint::hit(crate::failpoint::names::RECOPY_CHUNK_COMMITTED).await?;
    Ok(true)
}

/// Rows cut into statements of at most `STATEMENT_ROWS_MAX` rows and about `STATEMENT_BYTES_MAX` bytes.
fn statements(rows: &[Vec<Value>]) -> Vec<Vec<&[Value]>> {
    let mut out = Vec::new();
    let mut part: Vec<&[Value]> = Vec::new();
    let mut bytes = 0;
    for r in rows {
        bytes += r.iter().map(Value::literal_len_hint).sum::<usize>();
        part.push(r);
        if part.len() >= STATEMENT_ROWS_MAX || bytes >= STATEMENT_BYTES_MAX {
            out.push(std::mem::take(&mut part));
            bytes = 0;
        }
    }
    if !part.is_empty() {
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model::{Column, Follower, Key};

    fn table(name: &str, followers: &[(&str, FkRule, FkRule)]) -> Table {
        Table {
            db: "d".into(),
            name: name.into(),
            columns: vec![Column {
                name: "id".into(),
                data_type: "int".into(),
                column_type: "int".into(),
                charset: None,
                nullable: false,
                generated: false,
            }],
            key: Some(Key {
                name: "PRIMARY".into(),
                columns: vec![0],
            }),
            uniques: Vec::new(),
            followers: followers
                .iter()
                .map(|(child, on_delete, on_update)| Follower {
                    db: "d".into(),
                    table: (*child).into(),
                    columns: vec!["id".into()],
                    referenced: vec![0],
                    keep: Vec::new(),
                    on_delete: *on_delete,
                    on_update: *on_update,
                })
                .collect(),
            engine: "InnoDB".into(),
            rows_estimate: 0,
            create_sql: String::new(),
            omitted: Vec::new(),
        }
    }

    #[test]
    fn a_cascade_reaches_every_level_its_rules_take_and_ends_in_cycles() {
        use FkRule::*;
        let tables = [
            table("customers", &[("orders", Cascade, Restrict)]),
            table("orders", &[("lines", Cascade, Restrict)]),
            table(
                "lines",
                &[("notes", SetNull, Restrict), ("audit", Restrict, Restrict)],
            ),
            table("notes", &[]),
            table("audit", &[]),
            table("staff", &[("staff", Cascade, Restrict)]),
            table("a", &[("b", Restrict, Cascade)]),
            table("b", &[("a", Cascade, SetNull)]),
        ];
        fn names<'a>(t: &'a Table, change: Change, tables: &'a [Table]) -> Vec<String> {
            reach(t, change, |n| tables.iter().find(|x| x.name == n.name))
                .into_iter()
                .map(|n| n.name)
                .collect()
        }
        let id = || Change::Update([0].into());
        let other = || Change::Update([1].into());
        assert_eq!(
            names(&tables[0], Change::Delete, &tables),
            vec!["lines", "notes", "orders"]
        );
        // ON UPDATE RESTRICT: a key change cascades nowhere; nor does a change of a column no follower references.
        assert!(names(&tables[0], id(), &tables).is_empty());
        assert!(names(&tables[6], other(), &tables).is_empty());
        assert_eq!(names(&tables[2], Change::Delete, &tables), vec!["notes"]);
        assert_eq!(names(&tables[5], Change::Delete, &tables), vec!["staff"]);
        // A delete of `a` reaches nothing (RESTRICT); an update of its key moves `b`'s rows, whose update sets
        // `a`'s references to NULL in turn.
        assert!(names(&tables[6], Change::Delete, &tables).is_empty());
        assert_eq!(names(&tables[6], id(), &tables), vec!["a", "b"]);
        // A follower outside the tracked tables is not re-copied.
        let only = |n: &Name| tables[..2].iter().find(|t| t.name == n.name);
        assert_eq!(reach(&tables[0], Change::Delete, only).len(), 1);
        assert_eq!(
            reach_any(&tables[6], |n| tables.iter().find(|x| x.name == n.name)).len(),
            2
        );
        assert_eq!(
            Change::between(&[1, 2, 3], Some(&[1, 5, 3])),
            Change::Update([1].into())
        );
    }

    fn at(pos: u64) -> Position {
        Position::MariaDb {
            file: "b.000001".into(),
            pos,
            gtid_list: String::new(),
        }
    }

    #[test]
    fn the_durable_state_says_what_comes_before_reading() {
        let pending = Recorded {
            snapshot: None,
            copied: false,
        };
        let copied = |s: u64| Recorded {
            snapshot: Some(at(s)),
            copied: true,
        };
        let started = Recorded {
            snapshot: Some(at(50)),
            copied: false,
        };
        let p1 = at(10);
        // Nothing recorded, or catch-up before P1: nothing yet.
        assert_eq!(step(&[], &p1, &at(20), false).ok(), Some(Step::Nothing));
        assert_eq!(
            step(&[pending.clone()], &p1, &at(5), false).ok(),
            Some(Step::Nothing)
        );
        // At P1 with tables recorded: a round; one interrupted starts again.
        assert_eq!(
            step(&[pending.clone()], &p1, &at(10), false).ok(),
            Some(Step::Run)
        );
        assert_eq!(
            step(&[copied(50), started], &p1, &at(12), false).ok(),
            Some(Step::Run)
        );
        // Tables re-copied under two snapshots do not make a round.
        assert_eq!(
            step(&[copied(50), copied(60)], &p1, &at(12), false).ok(),
            Some(Step::Run)
        );
        // Every table re-copied, P1 not moved: only the move.
        assert_eq!(
            step(&[copied(50), copied(50)], &p1, &at(12), false).ok(),
            Some(Step::Finish(at(50)))
        );
        // The round is over once P1 is its snapshot.
        assert_eq!(
            step(&[copied(50)], &at(50), &at(12), false).ok(),
            Some(Step::Nothing)
        );
        assert!(round_done(&[copied(50)], &at(50)));
        assert!(!round_done(&[copied(50)], &at(10)));
        // ignore_and_proceed keeps the destination's own rows: never a re-copy.
        assert_eq!(
            step(&[pending], &p1, &at(10), true).ok(),
            Some(Step::Nothing)
        );
        assert!(in_snapshot(&at(49), &at(50)).unwrap_or(false));
        assert!(!in_snapshot(&at(50), &at(50)).unwrap_or(true));
    }

    #[test]
    fn a_source_without_a_snapshot_position_refuses_the_round_with_a_code() {
        let tables = vec!["shop.orders".to_string()];
        assert!(snapshot_position_reported(Flavor::MariaDb, "10.11.6-MariaDB", &tables).is_ok());
        let e = snapshot_position_reported(Flavor::MySql, "8.0.36", &tables)
            .expect_err("MySQL reports no snapshot position");
        assert_eq!(e.code().id, codes::CDC_RECOPY_SNAPSHOT.id);
        assert!(e.to_string().contains("shop.orders"), "{e}");
    }
}
