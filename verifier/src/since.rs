//! `since` mode: the keys of every row the source's binlog changed after a given position, so that only those
//! rows are verified again.

use crate::canonical::{row_hash, RowHash};
use ferry_engine::cdc::event::Item;
use ferry_engine::cdc::position::Position;
use ferry_engine::cdc::stream::BinlogReader;
use ferry_engine::codes;
use ferry_engine::config::TaskConfig;
use ferry_engine::error::{Error, Result, ResultExt};
use ferry_engine::mysql::conn::Server;
use ferry_engine::schema::model::Table;
use ferry_engine::value::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Changed keys remembered per table; past this the whole table is verified.
pub const KEYS_PER_TABLE_MAX: usize = 1_000_000;

/// What changed in one table.
#[derive(Debug, Clone)]
pub enum Changed {
    /// These keys (key column order), each once.
    Keys(Vec<Vec<Value>>),
    /// Too many keys to list, or a table without a key: verify it whole.
    All,
}

/// Parses `file:offset` (the form `ferry status` prints positions in) into a position of the source's flavor.
pub fn parse_position(text: &str, source: &Server) -> Result<Position> {
    let bad = || {
        Error::definite(
            &codes::CDC_POSITION,
            format!("`--since {text}`: expected <binlog file>:<offset>, as `ferry status` prints positions"),
        )
    };
    let (file, pos) = text.rsplit_once(':').ok_or_else(bad)?;
    let pos: u64 = pos.trim().parse().map_err(|_| bad())?;
    if file.trim().is_empty() {
        return Err(bad());
    }
    Ok(Position::given(source.info.flavor, file.trim(), pos, ""))
}

/// Reads the source's binlog from `from` to its current end and collects the keys of the rows changed in
/// `tables` (by source name).
pub async fn changed_since(
    source: &Server,
    cfg: &TaskConfig,
    tables: &[Table],
    from: &Position,
) -> Result<BTreeMap<(String, String), Changed>> {
    let target = {
        let pool = source.pool(ferry_engine::mysql::conn::Role::Introspect, 1);
        let mut c = pool.get_conn().await.ctx("source")?;
        let p = Position::current(&mut c, source.info.flavor).await?;
        drop(c);
        let _ = pool.disconnect().await;
        p
    };
    // Another replica id than the task's own dump, which a server would otherwise cut off.
    let server_id = cfg.dump_server_id().wrapping_add(1).max(1);
    let mut reader = BinlogReader::open(source, from, server_id, tables).await?;
    let mut keys: BTreeMap<(String, String), HashMap<RowHash, Vec<Value>>> = BTreeMap::new();
    let mut whole: BTreeMap<(String, String), ()> = BTreeMap::new();
    loop {
        // An idle source sends nothing more once the dump has reached its end: stop after a quiet second.
        let item = match tokio::time::timeout(Duration::from_secs(1), reader.next()).await {
            Err(_) | Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(e),
            Ok(Ok(Some(item))) => item,
        };
        let at = match &item {
            Item::Rows { table, rows, .. } => {
                let name = (table.db.clone(), table.name.clone());
                match &table.key {
                    None => {
                        whole.insert(name, ());
                    }
                    Some(k) if !whole.contains_key(&name) => {
                        let set = keys.entry(name.clone()).or_default();
                        for (before, after) in rows {
                            for img in [before, after].into_iter().flatten() {
                                let kv: Vec<Value> =
                                    k.columns.iter().map(|&i| img[i].clone()).collect();
                                set.insert(row_hash(&kv, &[]), kv);
                            }
                        }
                        if set.len() > KEYS_PER_TABLE_MAX {
                            keys.remove(&name);
                            whole.insert(name, ());
                        }
                    }
                    Some(_) => {}
                }
                None
            }
            Item::Commit { file, end, .. }
            | Item::Skip { file, end }
            | Item::Query { file, end, .. } => Some(from.moved_to(file, *end)),
            Item::Rotate { file, pos } => Some(from.moved_to(file, *pos)),
            _ => None,
        };
        if let Some(at) = at {
            if at.cmp_in_log(&target)?.is_ge() {
                break;
            }
        }
    }
    let mut out: BTreeMap<(String, String), Changed> = keys
        .into_iter()
        .map(|(k, v)| (k, Changed::Keys(v.into_values().collect())))
        .collect();
    for (k, ()) in whole {
        out.insert(k, Changed::All);
    }
    Ok(out)
}
