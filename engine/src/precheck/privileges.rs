//! Precheck items about ferry's accounts: the source account can read the binlog (incremental), the destination
//! account can create and write what the task makes, and a binlogging destination accepts its stored programs.
//!
//! Privileges are tested by their effect where a harmless statement needs exactly them (SHOW MASTER STATUS), and
//! read from SHOW GRANTS otherwise; a grant that may come through a role cannot be confirmed, so it warns instead
//! of failing.

use super::{Item, Outcome};
use crate::codes;
use crate::config::{MigrationType, TaskConfig};
use crate::error::{Error, Result, ResultExt};
use crate::mysql::conn::{Flavor, Role, Server};
use mysql_async::prelude::Queryable;

/// The account's grants as the server prints them, upper-cased.
async fn grants(conn: &mut mysql_async::Conn) -> Result<Vec<String>> {
    let rows: Vec<String> = conn.query("SHOW GRANTS").await.ctx("SHOW GRANTS")?;
    Ok(rows.into_iter().map(|g| g.to_ascii_uppercase()).collect())
}

/// Whether some grant line gives `privilege` on `on` (`*.*` or `` `db`.* ``), directly or through ALL PRIVILEGES.
fn granted(grants: &[String], privilege: &str, on: &str) -> bool {
    grants.iter().any(|g| {
        let Some(rest) = g.strip_prefix("GRANT ") else {
            return false;
        };
        let Some((privs, target)) = rest.split_once(" ON ") else {
            return false;
        };
        let target = target.split(" TO ").next().unwrap_or("").trim();
        let covers = target == "*.*" || target.eq_ignore_ascii_case(on);
        covers
            && privs
                .split(',')
                .map(str::trim)
                .any(|p| p == privilege || p == "ALL PRIVILEGES" || p == "ALL")
    })
}

/// Roles granted to the account (a line `GRANT role TO user` without ON).
fn has_roles(grants: &[String]) -> bool {
    grants
        .iter()
        .any(|g| g.starts_with("GRANT ") && !g.contains(" ON "))
}

pub async fn check(
    items: &mut Vec<Item>,
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
) -> Result<()> {
    if cfg.has(MigrationType::Incremental) {
        let pool = source.pool(Role::Introspect, 1);
        let res = source_items(items, source.info.flavor, &pool).await;
        let _ = pool.disconnect().await;
        res?;
    }
    let pool = destination.pool(Role::Introspect, 1);
    let res = destination_item(items, cfg, &pool).await;
    let _ = pool.disconnect().await;
    res
}

async fn source_items(
    items: &mut Vec<Item>,
    flavor: Flavor,
    pool: &mysql_async::Pool,
) -> Result<()> {
    let mut c = pool.get_conn().await.ctx("source")?;
    let client = match flavor {
        Flavor::MariaDb => "BINLOG MONITOR (REPLICATION CLIENT before MariaDB 10.5)",
        Flavor::MySql => "REPLICATION CLIENT",
    };
    let name = "source account reads binlog positions";
    match c.query_drop("SHOW MASTER STATUS").await {
        Ok(()) => items.push(Item::pass(name, "SHOW MASTER STATUS answers").expecting(client)),
        Err(e) => {
            let e = Error::from(e);
            if e.is_transient() {
                return Err(e);
            }
            items.push(Item::flagged(
                name,
                Outcome::Failure,
                &codes::PRIV_MISSING,
                e.to_string(),
                client,
            ));
        }
    }
    let g = grants(&mut c).await?;
    let name = "source account may dump the binlog";
    items.push(if granted(&g, "REPLICATION SLAVE", "*.*") {
        Item::pass(name, "REPLICATION SLAVE ON *.*")
    } else {
        Item::flagged(
            name,
            if has_roles(&g) {
                Outcome::Warning
            } else {
                Outcome::Failure
            },
            &codes::PRIV_MISSING,
            format!("grants: {}", g.join("; ")),
            "REPLICATION SLAVE ON *.* (REPLICATION REPLICA on MySQL 8.0.22+)",
        )
    });
    Ok(())
}

async fn destination_item(
    items: &mut Vec<Item>,
    cfg: &TaskConfig,
    pool: &mysql_async::Pool,
) -> Result<()> {
    let mut c = pool.get_conn().await.ctx("destination")?;
    let g = grants(&mut c).await?;
    let mut dbs: Vec<String> = cfg.objects.databases.clone();
    for t in &cfg.objects.tables {
        if let Some((db, _)) = t.split_once('.') {
            if !dbs.iter().any(|d| d == db) {
                dbs.push(db.to_string());
            }
        }
    }
    // Pattern entries name no database yet: the schema step meets an access refusal (coded) if one is not writable.
    let mut dbs: Vec<String> = dbs
        .iter()
        .filter(|d| !crate::config::is_pattern(d))
        .map(|d| cfg.dest_db(d).to_string())
        .collect();
    dbs.push(cfg.metadata.schema.clone());
    let lacking: Vec<String> = dbs
        .iter()
        .filter(|db| {
            !granted(
                &g,
                "ALL PRIVILEGES",
                &format!("`{}`.*", db.to_ascii_uppercase()),
            )
        })
        .cloned()
        .collect();
    let name = "destination account may create and write";
    items.push(if lacking.is_empty() {
        Item::pass(name, "ALL PRIVILEGES on every database the task writes")
    } else {
        Item::flagged(
            name,
            Outcome::Warning,
            &codes::PRIV_MISSING,
            format!(
                "no ALL PRIVILEGES on {} (grants: {})",
                lacking.join(", "),
                g.join("; ")
            ),
            "ALL PRIVILEGES on the selected databases and the metadata schema",
        )
    });
    if cfg.has(MigrationType::Schema) {
        // A binlogging server creates stored programs only for SUPER or when it trusts function creators.
        let row: Option<(Option<u64>, Option<u64>)> = c
            .query_first("SELECT @@GLOBAL.log_bin, @@GLOBAL.log_bin_trust_function_creators")
            .await
            .ctx("destination settings")?;
        let (log_bin, trust) = row.unwrap_or((None, None));
        let name = "destination accepts routines and triggers from this account";
        let sup = granted(&g, "SUPER", "*.*");
        items.push(if log_bin != Some(1) || trust == Some(1) || sup {
            Item::pass(
                name,
                match (log_bin == Some(1), trust == Some(1)) {
                    (false, _) => "binary logging off",
                    (true, true) => "log_bin_trust_function_creators = ON",
                    (true, false) => "SUPER",
                },
            )
        } else {
            Item::flagged(
                name,
                Outcome::Warning,
                &codes::PRE_ROUTINE_CREATORS,
                "log_bin = ON, log_bin_trust_function_creators = OFF, no SUPER",
                "SUPER, or log_bin_trust_function_creators = ON",
            )
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_ascii_uppercase()).collect()
    }

    #[test]
    fn grants_are_read_for_the_privilege_and_the_target() {
        let all = g(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`%` WITH GRANT OPTION"]);
        assert!(granted(&all, "REPLICATION SLAVE", "*.*"));
        let repl = g(&[
            "GRANT SELECT, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `ferry`@`%`",
            "GRANT ALL PRIVILEGES ON `shop`.* TO `ferry`@`%`",
        ]);
        assert!(granted(&repl, "REPLICATION SLAVE", "*.*"));
        assert!(granted(&repl, "ALL PRIVILEGES", "`SHOP`.*"));
        assert!(!granted(&repl, "ALL PRIVILEGES", "`FERRY_META`.*"));
        let select = g(&[
            "GRANT USAGE ON *.* TO `app`@`%`",
            "GRANT SELECT ON `shop`.* TO `app`@`%`",
        ]);
        assert!(!granted(&select, "REPLICATION SLAVE", "*.*"));
        assert!(!has_roles(&select));
        assert!(has_roles(&g(&["GRANT `dba_role` TO `app`@`%`"])));
    }
}
