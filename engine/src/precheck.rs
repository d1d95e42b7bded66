//! Checks before a task runs: each item passes, warns or fails with a stable code.

use crate::config::TaskConfig;
use crate::mysql::conn::{Flavor, Server, ServerInfo};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Warning,
    Failure,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: String,
    pub outcome: Outcome,
    /// Set for warnings and failures.
    pub code: Option<&'static str>,
    pub found: String,
    pub hint: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PrecheckReport {
    pub items: Vec<Item>,
    pub source: Option<ServerInfo>,
    pub destination: Option<ServerInfo>,
}

impl PrecheckReport {
    pub fn failed(&self) -> bool {
        self.items.iter().any(|i| i.outcome == Outcome::Failure)
    }
}

/// Runs every check and reports all failures at once.
pub async fn run(cfg: &TaskConfig) -> PrecheckReport {
    let mut items = Vec::new();
    let mut infos = [None, None];
    for (i, (label, ep)) in [("source", &cfg.source), ("destination", &cfg.destination)]
        .into_iter()
        .enumerate()
    {
        match Server::connect(ep, label).await {
            Ok(s) => {
                items.push(Item {
                    name: format!("{label} connection"),
                    outcome: Outcome::Pass,
                    code: None,
                    found: format!(
                        "{} as {}: {} ({:?})",
                        ep.address(),
                        ep.user,
                        s.info.version,
                        s.info.flavor
                    ),
                    hint: None,
                });
                infos[i] = Some(s.info);
            }
            Err(e) => items.push(Item {
                name: format!("{label} connection"),
                outcome: Outcome::Failure,
                code: Some(e.code().id),
                found: e.to_string(),
                hint: Some(e.hint()),
            }),
        }
    }
    let [source, destination] = infos;
    if let (Some(s), Some(d)) = (&source, &destination) {
        let same = s.flavor == d.flavor && major(&s.version) == major(&d.version);
        items.push(Item {
            name: "server versions".into(),
            outcome: if same { Outcome::Pass } else { Outcome::Warning },
            code: None,
            found: format!(
                "source {} {}, destination {} {}",
                flavor(s.flavor),
                s.version,
                flavor(d.flavor),
                d.version
            ),
            hint: (!same).then_some("Different flavors or major versions: test the migration with `ferry verify` before cutover."),
        });
    }
    PrecheckReport {
        items,
        source,
        destination,
    }
}

fn flavor(f: Flavor) -> &'static str {
    match f {
        Flavor::MySql => "MySQL",
        Flavor::MariaDb => "MariaDB",
    }
}

fn major(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}
