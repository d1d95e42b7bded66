//! Precheck items about the source's binlog for incremental: the settings ferry can read, retention long enough
//! for the task, and a replica server id of ferry's own.

use super::{Item, Outcome};
use crate::cdc::settings;
use crate::codes;
use crate::config::{MigrationType, TaskConfig};
use crate::error::{Result, ResultExt};
use crate::mysql::conn::{Flavor, Role, Server};
use mysql_async::prelude::Queryable;
use std::collections::HashMap;

const DAY_S: u64 = 86_400;

/// `started`: the task already ran sync, so a replica registered under its id is its own earlier session (the
/// source drops such a registration only when it notices the connection is gone).
pub async fn check(
    items: &mut Vec<Item>,
    cfg: &TaskConfig,
    source: &Server,
    started: bool,
) -> Result<()> {
    if !cfg.has(MigrationType::Incremental) {
        return Ok(());
    }
    let pool = source.pool(Role::Introspect, 1);
    let res = async {
        let mut c = pool.get_conn().await.ctx("source")?;
        let found = settings::read(&mut c, source.info.flavor).await?;
        let vars: Vec<(String, String)> = c
            .query(
                "SHOW GLOBAL VARIABLES WHERE Variable_name IN \
                 ('binlog_expire_logs_seconds', 'expire_logs_days', 'server_id')",
            )
            .await
            .ctx("reading the source's binlog retention")?;
        let replicas: Vec<mysql_async::Row> = match source.info.flavor {
            Flavor::MariaDb => c.query("SHOW SLAVE HOSTS").await.unwrap_or_default(),
            Flavor::MySql => c.query("SHOW REPLICAS").await.unwrap_or_default(),
        };
        let replica_ids: Vec<u64> = replicas
            .iter()
            .filter_map(|r| {
                r.get_opt::<u64, _>("Server_id")
                    .or_else(|| r.get_opt::<u64, _>("Server_Id"))
                    .and_then(|x| x.ok())
            })
            .collect();
        Ok::<_, crate::error::Error>((found, vars, replica_ids))
    }
    .await;
    let _ = pool.disconnect().await;
    let (found, vars, replica_ids) = res?;
    for s in found {
        let name = format!("source {}", s.name);
        let value = s.value.as_deref().unwrap_or("not set").to_string();
        items.push(if s.ok {
            Item::pass(name, value).expecting(s.need)
        } else {
            Item::flagged(name, Outcome::Failure, s.code, value, s.need)
        });
    }
    let vars: HashMap<String, String> = vars
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let num = |n: &str| {
        vars.get(n)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    items.push(retention(
        num("binlog_expire_logs_seconds") as u64,
        num("expire_logs_days"),
        cfg.has(MigrationType::Full),
    ));
    let source_id = num("server_id") as u64;
    let ours = u64::from(cfg.dump_server_id());
    let name = "ferry's replica server_id";
    items.push(
        if ours == source_id || (replica_ids.contains(&ours) && !started) {
            Item::flagged(
                name,
                Outcome::Failure,
                &codes::PRE_SERVER_ID,
                format!(
                    "{ours} is already used by the {}",
                    if ours == source_id {
                        "source"
                    } else {
                        "source's replica"
                    }
                ),
                "an id no server of the source's topology uses",
            )
        } else {
            Item::pass(
                name,
                format!("{ours} (source {source_id}, replicas {replica_ids:?})"),
            )
        },
    );
    Ok(())
}

/// How long the source keeps binlog files against what the task needs: a full copy followed by sync needs at
/// least 7 days (the copy and a stop must fit), sync alone more than 24 hours. 0 means files are kept forever.
fn retention(expire_s: u64, expire_days: f64, with_copy: bool) -> Item {
    let kept_s = if expire_s > 0 {
        Some(expire_s)
    } else if expire_days > 0.0 {
        Some((expire_days * DAY_S as f64) as u64)
    } else {
        None
    };
    let (need_s, need) = if with_copy {
        (7 * DAY_S, "at least 7 days (a full copy, then sync)")
    } else {
        (DAY_S + 1, "more than 24 hours")
    };
    let name = "source binlog retention";
    match kept_s {
        None => Item::pass(name, "files are never expired").expecting(need),
        Some(s) if s >= need_s => {
            Item::pass(name, format!("{:.1} hours", s as f64 / 3600.0)).expecting(need)
        }
        Some(s) => Item::flagged(
            name,
            Outcome::Failure,
            &codes::PRE_RETENTION,
            format!("{:.1} hours", s as f64 / 3600.0),
            need,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_against_what_the_task_needs() {
        assert_eq!(retention(0, 0.0, true).outcome, Outcome::Pass);
        assert_eq!(retention(7 * DAY_S, 0.0, true).outcome, Outcome::Pass);
        assert_eq!(retention(6 * DAY_S, 0.0, true).outcome, Outcome::Failure);
        assert_eq!(retention(0, 3.0, true).outcome, Outcome::Failure);
        assert_eq!(retention(0, 2.0, false).outcome, Outcome::Pass);
        assert_eq!(retention(DAY_S, 0.0, false).outcome, Outcome::Failure);
        assert_eq!(retention(3600, 0.0, false).code, Some("FERRY-PRE-004"));
    }
}
