//! Named failpoints at phase boundaries and inside copy, apply, checkpoint and cutover, armed through
//! `FERRY_FAILPOINTS` by tests and the scenario runner; without the `failpoints` feature they compile to nothing.
//!
//! `FERRY_FAILPOINTS="copy.chunk_committed=crash@3,apply.batch_committed=error"`: each entry names a failpoint and
//! what happens on its n-th hit (first when `@n` is left out): `crash` (the process exits at once with status 137,
//! nothing flushed, as after kill -9), `error` (a transient error, as a lost connection would give), `sleep(ms)`,
//! or `pause` (the process stops itself with SIGSTOP, to be resumed from outside).

use crate::error::Result;

/// The failpoints ferry has. A scenario names them; `ALL` lets the runner refuse a misspelt one.
pub mod names {
    /// The binlog start position P0 was taken; the schema is read next.
    pub const P0_TAKEN: &str = "run.p0_taken";
    pub const SCHEMA_CREATED: &str = "schema.created";
    pub const COPY_CHUNK_COMMITTED: &str = "copy.chunk_committed";
    pub const COPY_DONE: &str = "copy.done";
    pub const SYNC_STARTED: &str = "sync.started";
    pub const APPLY_BATCH_COMMITTED: &str = "apply.batch_committed";
    pub const APPLY_BEFORE_COMMIT: &str = "apply.before_commit";
    /// A replicated DDL ran on the destination; its checkpoint is not written yet.
    pub const APPLY_DDL_DONE: &str = "apply.ddl_done";
    /// A chunk of catch-up's re-copy of the tables a replayed cascade reached committed (see `cdc::recopy`).
    pub const RECOPY_CHUNK_COMMITTED: &str = "recopy.chunk_committed";
    /// Every table of a re-copy round is copied under its snapshot; P1 has not moved to the snapshot yet.
    pub const RECOPY_DONE: &str = "recopy.done";
    pub const CUTOVER_FENCED: &str = "cutover.fenced";
    pub const CUTOVER_DRAINED: &str = "cutover.drained";
    pub const ALL: &[&str] = &[
        P0_TAKEN,
        SCHEMA_CREATED,
        COPY_CHUNK_COMMITTED,
        COPY_DONE,
        SYNC_STARTED,
        APPLY_BATCH_COMMITTED,
        APPLY_BEFORE_COMMIT,
        APPLY_DDL_DONE,
        RECOPY_CHUNK_COMMITTED,
        RECOPY_DONE,
        CUTOVER_FENCED,
        CUTOVER_DRAINED,
    ];
}

/// What an armed failpoint does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Crash,
    Error,
    Sleep(u64),
    Pause,
}

/// One entry of `FERRY_FAILPOINTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    pub name: String,
    pub action: Action,
    /// Fires on this hit (1-based).
    pub on_hit: u64,
}

/// Parses `FERRY_FAILPOINTS`; an unknown name or action is an error naming it.
pub fn parse(spec: &str) -> std::result::Result<Vec<Armed>, String> {
    let mut out = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rest) = entry
            .split_once('=')
            .ok_or_else(|| format!("`{entry}`: expected <failpoint>=<action>[@<hit>]"))?;
        if !names::ALL.contains(&name) {
            return Err(format!(
                "unknown failpoint `{name}` (known: {})",
                names::ALL.join(", ")
            ));
        }
        let (action, hit) = match rest.split_once('@') {
            Some((a, n)) => (
                a,
                n.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("`{entry}`: the hit after @ is a number from 1"))?,
            ),
            None => (rest, 1),
        };
        let action = match action {
            "crash" => Action::Crash,
            "error" => Action::Error,
            "pause" => Action::Pause,
            a => match a
                .strip_prefix("sleep(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|ms| ms.parse().ok())
            {
                Some(ms) => Action::Sleep(ms),
                None => {
                    return Err(format!(
                        "`{entry}`: unknown action `{a}` (crash, error, sleep(<ms>), pause)"
                    ))
                }
            },
        };
        out.push(Armed {
            name: name.to_string(),
            action,
            on_hit: hit,
        });
    }
    Ok(out)
}

#[cfg(feature = "failpoints")]
mod armed {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    static ARMED: OnceLock<Vec<Armed>> = OnceLock::new();
    static HITS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);

    pub fn armed() -> &'static [Armed] {
        ARMED.get_or_init(|| {
            let spec = std::env::var("FERRY_FAILPOINTS").unwrap_or_default();
            match parse(&spec) {
                Ok(a) => a,
                Err(e) => {
                    // A test or scenario that arms a failpoint wrongly must not pass silently.
                    eprintln!("FERRY_FAILPOINTS: {e}");
                    std::process::exit(2);
                }
            }
        })
    }

    pub fn count(name: &str) -> u64 {
        let mut g = HITS.lock().unwrap_or_else(|p| p.into_inner());
        let m = g.get_or_insert_with(HashMap::new);
        let n = m.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }
}

/// Passes failpoint `name`: does what `FERRY_FAILPOINTS` arms it with on this hit, else nothing.
#[cfg(feature = "failpoints")]
pub async fn hit(name: &'static str) -> Result<()> {
    let armed = armed::armed();
    if !armed.iter().any(|a| a.name == name) {
        return Ok(());
    }
    let n = armed::count(name);
    for a in armed.iter().filter(|a| a.name == name && a.on_hit == n) {
        tracing::warn!(failpoint = name, hit = n, action = ?a.action, "failpoint fires");
        match a.action {
            Action::Crash => {
                eprintln!("failpoint {name} (hit {n}): crash");
                std::process::exit(137);
            }
            Action::Error => {
                return Err(crate::error::Error::transient(format!(
                    "failpoint {name} (hit {n})"
                )))
            }
            Action::Sleep(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
            Action::Pause => {
                // The scenario runner's `when = { failpoint = ... }` reads this line.
                eprintln!("failpoint {name} (hit {n}): pause");
                let _ = std::process::Command::new("kill")
                    .args(["-STOP", &std::process::id().to_string()])
                    .status();
            }
        }
    }
    Ok(())
}

/// Failpoints are compiled out.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub async fn hit(_name: &'static str) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_a_failpoint_an_action_and_a_hit() {
        assert_eq!(
            parse("copy.chunk_committed=crash@3, apply.batch_committed=sleep(250)").expect("spec"),
            vec![
                Armed {
                    name: "copy.chunk_committed".into(),
                    action: Action::Crash,
                    on_hit: 3
                },
                Armed {
                    name: "apply.batch_committed".into(),
                    action: Action::Sleep(250),
                    on_hit: 1
                },
            ]
        );
        assert!(parse("").expect("empty").is_empty());
        assert!(parse("copy.chunk=crash")
            .unwrap_err()
            .contains("unknown failpoint"));
        assert!(parse("copy.done=explode")
            .unwrap_err()
            .contains("unknown action"));
        assert!(parse("copy.done=crash@0").is_err());
    }
}
