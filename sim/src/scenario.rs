//! The scenario file format (`scenarios/<name>/scenario.toml` plus `.sql` files): servers, setup, task overrides,
//! workload, faults with their triggers and heals, and the expected outcome; loaded and checked before a run.

use ferry_engine::failpoint;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One scenario folder, loaded.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub dir: PathBuf,
    pub file: ScenarioFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub scenario: Header,
    #[serde(default)]
    pub setup: Setup,
    /// Task-file keys merged over the runner's base task (`[task] types`, `[objects]`, `[full]`, ...).
    #[serde(default)]
    pub migration: toml::Table,
    #[serde(default)]
    pub workload: Vec<Workload>,
    #[serde(default)]
    pub fault: Vec<Fault>,
    #[serde(default)]
    pub finish: Finish,
    pub expect: Expect,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    /// One line: the incident this reproduces.
    pub description: String,
    /// The seed's (or another tool's) incident or warning it comes from.
    #[serde(default)]
    pub incident: String,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
    /// Runs in the default (fast) subset of `cargo test`.
    #[serde(default)]
    pub fast: bool,
    /// A fixed seed (else one is drawn and printed).
    pub seed: Option<u64>,
    /// Seconds a minute of `[retry]` windows lasts (FERRY_TEST_RETRY_MINUTE_S), so outage scenarios stay short.
    pub retry_minute_s: Option<f64>,
}

fn default_timeout() -> u64 {
    300
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    /// SQL files (in the scenario folder) run on the source before the task starts.
    #[serde(default)]
    pub source: Vec<String>,
    #[serde(default)]
    pub destination: Vec<String>,
    /// The demo shop database at this scale on the source (0: none).
    #[serde(default)]
    pub shop_scale: u32,
    /// ferry's grants on the destination (`ALL ON shop.*`, ...) instead of ALL PRIVILEGES ON *.*.
    pub ferry_destination_grants: Option<Vec<String>>,
    /// ferry's grants on the source instead of read, replicate and its metadata schema only (a cutover that sets
    /// the source read-only needs SUPER).
    pub ferry_source_grants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// `shop` or `sakila` (the sim's seeded workloads).
    pub kind: String,
    #[serde(default = "two")]
    pub writers: u64,
}

fn two() -> u64 {
    2
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Source,
    Destination,
}

/// When a fault fires. Progress is read from the task's metadata, never guessed from the clock; `after_s` counts
/// from the first start of ferry.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    /// `schema`, `full`, `incremental` (as `ferry status` names phases).
    pub at_phase: Option<String>,
    /// Chunks committed by the copy; a range `[lo, hi]` picks one by the seed.
    pub after_chunks: Option<Range>,
    /// Source transactions applied by sync; a range `[lo, hi]` picks one by the seed.
    pub after_events: Option<Range>,
    /// Seconds after ferry first started.
    pub after_s: Option<f64>,
    /// A failpoint firing (seen in ferry's log).
    pub failpoint: Option<String>,
    /// After the cutover (finish = "cutover") completed.
    #[serde(default)]
    pub after_cutover: bool,
}

/// A number or a `[lo, hi]` range the seed picks from.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Range {
    One(u64),
    Between([u64; 2]),
}

/// What a fault does.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(tag = "what", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// SQL on a server (as root): DDL, REVOKE/GRANT, PURGE BINARY LOGS, FLUSH LOGS, SET GLOBAL read_only, ...
    Sql {
        on: Side,
        #[serde(default)]
        sql: Vec<String>,
        /// An SQL file in the scenario folder (statements as the mysql client splits them, DELIMITER included).
        file: Option<String>,
        /// Run the statements on one session in the background (a long transaction that spans later steps); the
        /// run waits for it before its final checks.
        #[serde(default)]
        background: bool,
    },
    /// Kills ferry's sessions on a server (`KILL` of every connection of ferry's user).
    KillConnections { on: Side },
    /// Network conditions between ferry and a server (through the proxy).
    Network {
        on: Side,
        #[serde(default)]
        latency_ms: u64,
        #[serde(default)]
        bandwidth_bytes_per_s: u64,
        #[serde(default)]
        down: bool,
        #[serde(default)]
        blackhole: bool,
        /// Cut every open connection once.
        #[serde(default)]
        reset: bool,
    },
    /// A server process: `kill` (-9), `stop`, `restart` (on the same data), `pause` (SIGSTOP / docker pause).
    Server { on: Side, action: ProcessAction },
    /// ferry's task process: `kill` (-9), `terminate` (SIGTERM, waited for), `restart` (run again), `pause`,
    /// `resume`.
    Ferry { action: ProcessAction },
    /// A shell command (percona-toolkit, `{ferry} pause -c {task}`, ...) with `{source_port}`, `{source_password}`,
    /// `{dsn}`, `{ferry}` (the binary) and `{task}` (the task file) filled in; must exit 0.
    Command { run: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessAction {
    Kill,
    Stop,
    Restart,
    Pause,
    Resume,
    /// SIGTERM (a server: a clean stop).
    Terminate,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub when: When,
    #[serde(flatten)]
    pub action: Action,
    /// Undo it this long after it fired: network back to clean, a killed or paused server restarted or resumed, a
    /// killed or paused ferry run again or resumed.
    pub heal_after_s: Option<f64>,
}

/// How the run ends once the faults are done.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finish {
    /// `drain` (default: writes stop, ferry applies up to the source's position and exits), `cutover`
    /// (`ferry cutover`), or `exit` (ferry ends by itself: schema/full only, or a failure).
    #[serde(default)]
    pub how: FinishHow,
    /// Failpoints armed in the environment of the first `ferry run` and the first `ferry cutover` (`name=action@hit`).
    #[serde(default)]
    pub failpoints: Vec<String>,
    /// After the finish, run ferry once more (a stale task resuming) and expect this code.
    pub stale_run_code: Option<String>,
    /// Seconds the workload keeps writing after the last fault, so changes flow over whatever it did.
    #[serde(default = "settle_default")]
    pub settle_s: f64,
    /// With `how = "cutover"`: the workload is not stopped before the cutover but keeps writing until the source
    /// has been read-only this long (its account, root, holds the privilege read_only does not stop), as an
    /// application whose account read_only does not stop would.
    pub writes_after_read_only_s: Option<f64>,
}

fn settle_default() -> f64 {
    3.0
}

impl Default for Finish {
    fn default() -> Self {
        Finish {
            how: FinishHow::default(),
            failpoints: Vec::new(),
            stale_run_code: None,
            settle_s: settle_default(),
            writes_after_read_only_s: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishHow {
    #[default]
    Drain,
    Cutover,
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub outcome: Outcome,
    /// The code a failed run ends with.
    pub code: Option<String>,
    /// Run the verifier at the end and expect equal tables (default: when the outcome is ok).
    pub verify_equal: Option<bool>,
    /// Warnings (codes) the task must have recorded.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The largest sync lag (seconds from the source's commit of the last applied transaction to the destination's
    /// clock, sampled every 500 ms in the incremental phase) allowed outside the windows of faults that are healed
    /// (from the fault to 5 s after its heal); one-off faults such as DDL count.
    pub lag_s_max: Option<f64>,
    /// Objects that must exist on the destination at the end: `table:db.name`, `view:`, `procedure:`, `function:`,
    /// `trigger:`, `event:`.
    #[serde(default)]
    pub objects_on_destination: Vec<String>,
    /// Objects that must not.
    #[serde(default)]
    pub objects_absent_on_destination: Vec<String>,
}

impl Scenario {
    /// Loads `dir/scenario.toml` and checks it (SQL files exist, failpoints known, codes well formed).
    pub fn load(dir: &Path) -> Result<Scenario, String> {
        let path = dir.join("scenario.toml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: ScenarioFile =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let s = Scenario {
            dir: dir.to_path_buf(),
            file,
        };
        s.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let f = &self.file;
        for sql in f.setup.source.iter().chain(&f.setup.destination) {
            if !self.dir.join(sql).is_file() {
                return Err(format!("setup file {sql} is not in the folder"));
            }
        }
        for fault in &f.fault {
            if let Action::Sql {
                file: Some(sql), ..
            } = &fault.action
            {
                if !self.dir.join(sql).is_file() {
                    return Err(format!("fault file {sql} is not in the folder"));
                }
            }
            if let Some(fp) = &fault.when.failpoint {
                if !failpoint::names::ALL.contains(&fp.as_str()) {
                    return Err(format!("unknown failpoint {fp}"));
                }
            }
        }
        failpoint::parse(&f.finish.failpoints.join(","))?;
        for o in f
            .expect
            .objects_on_destination
            .iter()
            .chain(&f.expect.objects_absent_on_destination)
        {
            object_query(o)?;
        }
        if f.finish.writes_after_read_only_s.is_some() && f.finish.how != FinishHow::Cutover {
            return Err("[finish] writes_after_read_only_s needs how = \"cutover\"".into());
        }
        if f.expect.outcome == Outcome::Failed && f.expect.code.is_none() {
            return Err("a failed outcome names its code ([expect] code)".into());
        }
        for c in f
            .expect
            .code
            .iter()
            .chain(&f.finish.stale_run_code)
            .chain(&f.expect.warnings)
        {
            if !ferry_engine::codes::ALL.iter().any(|k| k.id == c) {
                return Err(format!("{c} is not one of ferry's codes"));
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.file.scenario.name
    }
}

/// The information_schema query that finds an `kind:db.name` object (one row when it exists).
pub fn object_query(o: &str) -> Result<String, String> {
    let bad = || {
        format!("object `{o}`: expected <table|view|procedure|function|trigger|event>:<db>.<name>")
    };
    let (kind, name) = o.split_once(':').ok_or_else(bad)?;
    let (db, name) = name.split_once('.').ok_or_else(bad)?;
    let q = |s: &str| s.replace('\'', "''");
    let (db, name) = (q(db), q(name));
    Ok(match kind {
        "table" => format!("SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{name}' AND TABLE_TYPE = 'BASE TABLE'"),
        "view" => format!("SELECT 1 FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{name}'"),
        "procedure" | "function" => format!(
            "SELECT 1 FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}' AND ROUTINE_NAME = '{name}' AND ROUTINE_TYPE = '{}'",
            kind.to_uppercase()
        ),
        "trigger" => format!("SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}' AND TRIGGER_NAME = '{name}'"),
        "event" => format!("SELECT 1 FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}' AND EVENT_NAME = '{name}'"),
        _ => return Err(bad()),
    })
}

/// The scenario folders under `root`, by name.
pub fn list(root: &Path) -> Result<Vec<Scenario>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(root).map_err(|e| format!("{}: {e}", root.display()))?;
    for e in entries.flatten() {
        if e.path().join("scenario.toml").is_file() {
            out.push(Scenario::load(&e.path())?);
        }
    }
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// The statements of an SQL file, as the mysql client reads them: a statement ends at a line ending with the
/// delimiter (`;` until a `DELIMITER <d>` line changes it, so routine bodies keep their inner semicolons).
pub fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut delimiter = ";".to_string();
    let mut push = |cur: &mut String, d: &str| {
        let s = cur.trim().trim_end_matches(d).trim().to_string();
        if !s.is_empty() {
            out.push(s);
        }
        cur.clear();
    };
    for line in text.lines() {
        let t = line.trim();
        if let Some(d) = t
            .strip_prefix("DELIMITER ")
            .or_else(|| t.strip_prefix("delimiter "))
        {
            push(&mut cur, &delimiter);
            delimiter = d.trim().to_string();
            continue;
        }
        if cur.is_empty() && (t.is_empty() || t.starts_with("--")) {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(delimiter.as_str()) {
            push(&mut cur, &delimiter);
        }
    }
    push(&mut cur, &delimiter);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_file_parses_with_its_faults() {
        let f: ScenarioFile = toml::from_str(
            r#"
            [scenario]
            name = "x"
            description = "a rename mid-stream"
            [migration.task]
            types = ["schema", "full", "incremental"]
            [[fault]]
            when = { after_events = [10, 20] }
            what = "network"
            on = "source"
            down = true
            heal_after_s = 5
            [[fault]]
            what = "ferry"
            action = "kill"
            when = { at_phase = "full", after_chunks = 3 }
            [expect]
            outcome = "ok"
            "#,
        )
        .expect("parses");
        assert_eq!(f.fault.len(), 2);
        assert!(matches!(
            f.fault[0].action,
            Action::Network { down: true, .. }
        ));
        assert!(matches!(
            f.fault[0].when.after_events,
            Some(Range::Between([10, 20]))
        ));
        assert!(matches!(
            f.fault[1].action,
            Action::Ferry {
                action: ProcessAction::Kill
            }
        ));
    }

    #[test]
    fn sql_files_split_as_the_mysql_client_splits_them() {
        assert_eq!(
            statements(
                "-- c\nCREATE TABLE t (a INT);\n\nDELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND //\n\
                 DELIMITER ;\nDROP TABLE t;"
            ),
            vec![
                "CREATE TABLE t (a INT)",
                "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\nEND",
                "DROP TABLE t"
            ]
        );
    }
}
