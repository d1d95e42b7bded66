//! Checks before a task runs: each item passes, warns or fails with a stable code, says what it found and what it
//! expected; every item is run and reported, and `ferry run` refuses to start when one fails.

mod binlog;
mod mapping;
mod objects;
mod privileges;
mod servers;

use crate::codes;
use crate::config::TaskConfig;
use crate::error::{Code, Error};
use crate::mysql::conn::ServerInfo;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Warning,
    /// A warning the task file acknowledges (`[precheck] ignore`).
    Acknowledged,
    Failure,
}

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub name: String,
    pub outcome: Outcome,
    /// Set for warnings and failures.
    pub code: Option<&'static str>,
    pub found: String,
    /// What the item needs (empty when there is nothing to compare with).
    pub expected: String,
    pub hint: Option<&'static str>,
}

impl Item {
    pub fn pass(name: impl Into<String>, found: impl Into<String>) -> Item {
        Item {
            name: name.into(),
            outcome: Outcome::Pass,
            code: None,
            found: found.into(),
            expected: String::new(),
            hint: None,
        }
    }

    /// A warning or failure with its code; the hint is the code's.
    pub fn flagged(
        name: impl Into<String>,
        outcome: Outcome,
        code: &'static Code,
        found: impl Into<String>,
        expected: impl Into<String>,
    ) -> Item {
        Item {
            name: name.into(),
            outcome,
            code: Some(code.id),
            found: found.into(),
            expected: expected.into(),
            hint: Some(code.hint),
        }
    }

    pub fn failure(name: impl Into<String>, e: &Error) -> Item {
        Item {
            name: name.into(),
            outcome: Outcome::Failure,
            code: Some(e.code().id),
            found: e.to_string(),
            expected: String::new(),
            hint: Some(e.hint()),
        }
    }

    /// The item with `expected` set.
    pub fn expecting(mut self, expected: impl Into<String>) -> Item {
        self.expected = expected.into();
        self
    }
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

    /// The failures as one definite error (the first failure's code), for `ferry run`.
    pub fn refusal(&self) -> Option<Error> {
        let failures: Vec<&Item> = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Failure)
            .collect();
        let first = failures.first()?;
        let code = first
            .code
            .and_then(|id| codes::ALL.iter().find(|c| c.id == id).copied())
            .unwrap_or(&codes::PRE_FAILED);
        Some(Error::definite(
            code,
            format!(
                "precheck failed, nothing was written ({} failure(s); `ferry precheck` lists every item): {}",
                failures.len(),
                failures
                    .iter()
                    .map(|i| {
                        let expected = if i.expected.is_empty() {
                            String::new()
                        } else {
                            format!(" (expected {})", i.expected)
                        };
                        format!("{} [{}]: {}{expected}", i.name, i.code.unwrap_or("-"), i.found)
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }
}

/// Whether the task recorded a binlog start position on this destination (read-only; false when unknown).
async fn started_sync(cfg: &TaskConfig, destination: &crate::mysql::conn::Server) -> bool {
    let pool = destination.pool(crate::mysql::conn::Role::Introspect, 1);
    let meta = crate::meta::Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let started = match pool.get_conn().await {
        Ok(mut c) => meta
            .load(&mut c)
            .await
            .map(|t| t.incremental)
            .unwrap_or(false),
        Err(_) => false,
    };
    let _ = pool.disconnect().await;
    started
}

/// Runs every check and reports all failures at once.
pub async fn run(cfg: &TaskConfig) -> PrecheckReport {
    let mut items = Vec::new();
    let source = servers::connect(&mut items, "source", &cfg.source).await;
    let destination = servers::connect(&mut items, "destination", &cfg.destination).await;
    if let (Some(s), Some(d)) = (&source, &destination) {
        servers::versions(&mut items, &s.info, &d.info);
        if let Err(e) = servers::same_server(&mut items, s, d).await {
            items.push(Item::failure("destination is not the source", &e));
        }
    }
    // A task that already started sync: a replica registered under its server id is its own earlier session.
    let started = match &destination {
        Some(d) => started_sync(cfg, d).await,
        None => false,
    };
    if let Some(s) = &source {
        if let Err(e) = binlog::check(&mut items, cfg, s, started).await {
            items.push(Item::failure("source binlog", &e));
        }
    }
    if let (Some(s), Some(d)) = (&source, &destination) {
        if let Err(e) = privileges::check(&mut items, cfg, s, d).await {
            items.push(Item::failure("privileges", &e));
        }
        if let Err(e) = objects::check(&mut items, cfg, s, d).await {
            items.push(Item::failure("selected objects", &e));
        }
    }
    for i in &mut items {
        if i.outcome == Outcome::Warning
            && i.code
                .is_some_and(|c| cfg.precheck.ignore.iter().any(|x| x == c))
        {
            i.outcome = Outcome::Acknowledged;
        }
    }
    PrecheckReport {
        items,
        source: source.map(|s| s.info),
        destination: destination.map(|d| d.info),
    }
}
