//! Precheck items about the two servers: reachable with these credentials, versions and their known
//! incompatibilities, and that the destination is neither the source nor one of its replicas.

use super::{Item, Outcome};
use crate::codes;
use crate::config::Endpoint;
use crate::error::{Result, ResultExt};
use crate::mysql::conn::{Flavor, Role, Server, ServerInfo};
use mysql_async::prelude::Queryable;

pub async fn connect(items: &mut Vec<Item>, label: &'static str, ep: &Endpoint) -> Option<Server> {
    match Server::connect(ep, label).await {
        Ok(s) => {
            items.push(Item::pass(
                format!("{label} connection"),
                format!(
                    "{} as {}: {} ({})",
                    ep.address(),
                    ep.user,
                    s.info.version,
                    flavor(s.info.flavor)
                ),
            ));
            Some(s)
        }
        Err(e) => {
            items.push(Item::failure(format!("{label} connection"), &e));
            None
        }
    }
}

/// Known incompatibilities between a source and a destination of other flavors or major versions.
fn incompatibilities(s: &ServerInfo, d: &ServerInfo) -> Vec<&'static str> {
    let mut out = Vec::new();
    match (s.flavor, d.flavor) {
        (Flavor::MySql, Flavor::MariaDb) => out.extend([
            "MySQL 8 collations (utf8mb4_0900_*) are unknown to MariaDB before 11.4",
            "JSON columns become LONGTEXT with a JSON_VALID check on MariaDB",
            "invisible columns, functional indexes and CHECK constraints differ in syntax",
        ]),
        (Flavor::MariaDb, Flavor::MySql) => out.extend([
            "SEQUENCE objects, system-versioned tables and INET6/UUID types do not exist in MySQL",
            "MariaDB's JSON is LONGTEXT: MySQL stores it as binary JSON and normalizes the text",
            "utf8mb4 default collations differ (utf8mb4_general_ci vs utf8mb4_0900_ai_ci)",
        ]),
        _ => {}
    }
    if s.flavor == Flavor::MySql
        && d.flavor == Flavor::MySql
        && major(&s.version) == "5.7"
        && major(&d.version) != "5.7"
    {
        out.extend([
            "MySQL 8 reserves more words (RANK, GROUPS, ...) that 5.7 schemas may use as names",
            "utf8 means utf8mb3 and is deprecated; the default collation changes",
        ]);
    }
    out
}

pub fn versions(items: &mut Vec<Item>, s: &ServerInfo, d: &ServerInfo) {
    let same = s.flavor == d.flavor && major(&s.version) == major(&d.version);
    let found = format!(
        "source {} {}, destination {} {}",
        flavor(s.flavor),
        s.version,
        flavor(d.flavor),
        d.version
    );
    if same {
        items.push(Item::pass("server versions", found));
        return;
    }
    let known = incompatibilities(s, d);
    let found = if known.is_empty() {
        found
    } else {
        format!("{found}; known differences: {}", known.join("; "))
    };
    items.push(Item::flagged(
        "server versions",
        Outcome::Warning,
        &codes::PRE_VERSIONS,
        found,
        "the same flavor and major version",
    ));
}

/// The destination must not be the source (same server id and UUID) nor replicate from it.
pub async fn same_server(items: &mut Vec<Item>, s: &Server, d: &Server) -> Result<()> {
    let (sp, dp) = (s.pool(Role::Introspect, 1), d.pool(Role::Introspect, 1));
    let res = async {
        let mut sc = sp.get_conn().await.ctx("source")?;
        let mut dc = dp.get_conn().await.ctx("destination")?;
        let ident = "SELECT CONCAT(@@server_id, '/', @@hostname, ':', @@port)";
        let si: Option<String> = sc.query_first(ident).await.ctx("source identity")?;
        let di: Option<String> = dc.query_first(ident).await.ctx("destination identity")?;
        let sid: Option<u64> = sc.query_first("SELECT @@server_id").await.ctx("source")?;
        // A replica shows its source's server id; reading it needs a replication privilege (absent: not known).
        let replica_of: Vec<mysql_async::Row> = match d.info.flavor {
            Flavor::MariaDb => dc.query("SHOW ALL SLAVES STATUS").await.unwrap_or_default(),
            Flavor::MySql => dc.query("SHOW REPLICA STATUS").await.unwrap_or_default(),
        };
        let masters: Vec<u64> = replica_of
            .iter()
            .filter_map(|r| {
                r.get_opt::<u64, _>("Master_Server_Id")
                    .or_else(|| r.get_opt::<u64, _>("Source_Server_Id"))
                    .and_then(|x| x.ok())
            })
            .collect();
        Ok::<_, crate::error::Error>((si, di, sid, masters))
    }
    .await;
    let _ = sp.disconnect().await;
    let _ = dp.disconnect().await;
    let (si, di, sid, masters) = res?;
    let name = "destination is not the source";
    if si.is_some() && si == di {
        items.push(Item::flagged(
            name,
            Outcome::Failure,
            &codes::PRE_SAME_SERVER,
            format!("both answer as {}", si.unwrap_or_default()),
            "two different servers",
        ));
    } else if sid.is_some_and(|id| masters.contains(&id)) {
        items.push(Item::flagged(
            name,
            Outcome::Failure,
            &codes::PRE_SAME_SERVER,
            format!(
                "the destination replicates from the source (server id {})",
                sid.unwrap_or_default()
            ),
            "a destination that is not a replica of the source",
        ));
    } else {
        items.push(Item::pass(
            name,
            format!(
                "source {}, destination {}",
                si.unwrap_or_default(),
                di.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

pub fn flavor(f: Flavor) -> &'static str {
    match f {
        Flavor::MySql => "MySQL",
        Flavor::MariaDb => "MariaDB",
    }
}

fn major(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_majors_and_flavors_warn_with_the_known_differences() {
        let mut items = Vec::new();
        let maria = ServerInfo::from_version("10.11.18-MariaDB-0+deb12u1-log");
        versions(
            &mut items,
            &maria,
            &ServerInfo::from_version("10.11.6-MariaDB"),
        );
        versions(&mut items, &ServerInfo::from_version("8.0.36"), &maria);
        versions(
            &mut items,
            &ServerInfo::from_version("5.7.44-log"),
            &ServerInfo::from_version("8.4.3"),
        );
        let got: Vec<(Outcome, Option<&str>)> = items.iter().map(|i| (i.outcome, i.code)).collect();
        assert_eq!(
            got,
            [
                (Outcome::Pass, None),
                (Outcome::Warning, Some("FERRY-PRE-002")),
                (Outcome::Warning, Some("FERRY-PRE-002"))
            ]
        );
        assert!(
            items[1].found.contains("utf8mb4_0900"),
            "{}",
            items[1].found
        );
        assert!(
            items[2].found.contains("reserves more words"),
            "{}",
            items[2].found
        );
    }
}
