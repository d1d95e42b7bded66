//! Runs one scenario with a seed: throwaway servers behind fault proxies, setup, the task as a `ferry run` process,
//! workload, faults fired on the task's progress and healed, the finish, and the expectations; every step recorded
//! under `target/sim/<scenario>/<seed>/`.

use crate::instance::{Backend, Instance, InstanceOptions};
use crate::proxy::{Conditions, Proxy};
use crate::scenario::{
    self, Action, Fault, FinishHow, Outcome, ProcessAction, Range, Scenario, Side,
};
use crate::workload;
use ferry_engine::config::TaskConfig;
use ferry_engine::meta::Meta;
use mysql_async::prelude::Queryable;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the finish keeps asking a running ferry to drain when its admin endpoint does not answer yet.
const DRAIN_ASK_MAX: Duration = Duration::from_secs(60);

/// The user ferry connects as on both servers (so faults can revoke its rights or kill its sessions only).
pub const FERRY_USER: &str = "ferry";
const FERRY_PASSWORD: &str = "ferry-sim";

/// How a run went; the exit code of `ferry sim run` tells them apart.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "verdict", content = "detail", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// Outcome, code, fence, lag or warnings not as expected.
    WrongOutcome(String),
    /// The verifier found the destination different from the source.
    DataDivergence(String),
    Timeout(String),
    /// The scenario or the machine, not ferry: a bad file, a server that did not start.
    HarnessError(String),
}

impl Verdict {
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::WrongOutcome(_) => 1,
            Verdict::DataDivergence(_) => 2,
            Verdict::Timeout(_) => 3,
            Verdict::HarnessError(_) => 4,
        }
    }
}

/// What a run needs besides the scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub seed: Option<u64>,
    pub backend: Backend,
    /// The `ferry` binary the task runs as.
    pub ferry_bin: PathBuf,
    /// Records go to `<records>/<scenario>/<seed>/`.
    pub records: PathBuf,
}

/// The result of one run (also `result.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    pub scenario: String,
    pub seed: u64,
    pub verdict: Verdict,
    pub seconds: f64,
    pub record: String,
    /// The command that runs this scenario again with the same seed.
    pub reproduce: String,
    /// What the run saw: the final outcome and code, per-fault times.
    pub observed: Observed,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Observed {
    pub outcome: Option<Outcome>,
    pub code: Option<String>,
    pub ferry_starts: u32,
    pub faults_fired: usize,
    pub warnings: Vec<String>,
    pub workload_transactions: u64,
    /// The largest lag sampled while no fault was in effect (None: never syncing while sampled).
    pub lag_s_max: Option<f64>,
    pub verify: Option<String>,
}

/// Samples the task's sync lag on the destination every 500 ms while `quiet` (no fault in effect) until `done`;
/// the largest value seen.
async fn sample_lag(
    url: String,
    schema: String,
    task: String,
    quiet: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
) -> Option<f64> {
    let pool = mysql_async::Pool::new(url.as_str());
    let meta = Meta::new(&schema, &task);
    let mut max: Option<f64> = None;
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if !quiet.load(Ordering::Relaxed) {
            continue;
        }
        let Ok(mut c) = pool.get_conn().await else {
            continue;
        };
        let phase = match meta.load(&mut c).await {
            Ok(row) => row.phase(),
            Err(_) => continue,
        };
        if phase != ferry_engine::meta::Phase::Incremental {
            continue;
        }
        let now: Option<f64> = c
            .query_first("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) AS DOUBLE)")
            .await
            .ok()
            .flatten();
        if let (Some(now), Ok(cdc)) = (now, meta.cdc(&mut c).await) {
            if let Some(ts) = cdc.source_ts.filter(|t| *t > 0) {
                let lag = (now - ts as f64).max(0.0);
                max = Some(max.map_or(lag, |m: f64| m.max(lag)));
            }
        }
    }
    let _ = pool.disconnect().await;
    max
}

/// Sets `stop` once the source has been read-only for `after` (or when `stop` is set already, or after `limit`);
/// whether read_only was seen.
async fn stop_after_read_only(
    url: String,
    stop: Arc<AtomicBool>,
    after: Duration,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut seen = false;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let read_only: Option<u64> = match mysql_async::Conn::from_url(url.as_str()).await {
            Ok(mut c) => {
                let r = c
                    .query_first("SELECT @@GLOBAL.read_only")
                    .await
                    .ok()
                    .flatten();
                let _ = c.disconnect().await;
                r
            }
            Err(_) => None,
        };
        if read_only == Some(1) {
            seen = true;
            tokio::time::sleep(after).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    seen
}

/// The first `FERRY-XXX-NNN` code in `text`.
fn first_code(text: &str) -> Option<String> {
    text.find("FERRY-").map(|at| {
        text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect()
    })
}

/// history.jsonl: one line per step, with seconds since the start.
struct History {
    started: Instant,
    file: std::fs::File,
}

impl History {
    fn note(&mut self, event: &str, detail: serde_json::Value) {
        let line = serde_json::json!({
            "t_s": (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            "event": event,
            "detail": detail,
        });
        let _ = writeln!(self.file, "{line}");
        println!(
            "  [{:7.2}s] {event} {detail}",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The task process and its restarts.
struct Ferry {
    bin: PathBuf,
    task_file: PathBuf,
    log: PathBuf,
    failpoints: String,
    retry_minute_s: Option<f64>,
    child: Option<Child>,
    starts: u32,
    first_start: Option<Instant>,
    /// Exit status of the last process that ended.
    last_status: Option<std::process::ExitStatus>,
}

impl Ferry {
    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("{}: {e}", self.log.display()))?;
        let mut c = Command::new(&self.bin);
        c.args(["run", "-c"])
            .arg(&self.task_file)
            .arg("--json")
            .env("RUST_LOG", "ferry_engine=info")
            // Armed for the first process only: a restarted task runs as after a real crash.
            .env(
                "FERRY_FAILPOINTS",
                if self.starts == 0 {
                    self.failpoints.as_str()
                } else {
                    ""
                },
            )
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(m) = self.retry_minute_s {
            c.env("FERRY_TEST_RETRY_MINUTE_S", m.to_string());
        }
        let child = c
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.starts += 1;
        self.first_start.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(Ok(Some(status))) => {
                self.last_status = Some(status);
                self.child = None;
                false
            }
            _ => false,
        }
    }

    fn signal(&mut self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            if let Ok(s) = c.wait() {
                self.last_status = Some(s);
            }
        }
    }

    /// Waits for the process to end by itself, at most `s` seconds.
    async fn wait(&mut self, s: f64) -> bool {
        let deadline = Instant::now() + Duration::from_secs_f64(s);
        while self.running() {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        true
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything a run holds.
struct Run<'a> {
    s: &'a Scenario,
    seed: u64,
    rng: rand::rngs::StdRng,
    source: Instance,
    destination: Instance,
    source_proxy: Proxy,
    destination_proxy: Proxy,
    /// The task with direct endpoints: what the runner itself reads and verifies through.
    direct: TaskConfig,
    ferry: Ferry,
    history: History,
    dir: PathBuf,
    observed: Observed,
    /// Background SQL sessions (`background = true`), awaited before the final checks.
    background: Vec<tokio::task::JoinHandle<Result<(), String>>>,
}

/// Runs `s` once and records it.
pub async fn run(s: &Scenario, opts: &RunOptions) -> RunResult {
    let seed = opts
        .seed
        .or(s.file.scenario.seed)
        .unwrap_or_else(|| rand::rng().random_range(1..1_000_000_000));
    let dir = opts.records.join(s.name()).join(seed.to_string());
    let reproduce = format!(
        "ferry sim run {} --seed {seed} --backend {}",
        s.dir.display(),
        opts.backend.as_str()
    );
    println!("scenario {}: {}", s.name(), s.file.scenario.description);
    println!("SEED={seed}");
    let started = Instant::now();
    let _ = std::fs::remove_dir_all(&dir);
    let result = match std::fs::create_dir_all(&dir) {
        Err(e) => Err(Verdict::HarnessError(format!("{}: {e}", dir.display()))),
        Ok(()) => {
            let timeout = Duration::from_secs(s.file.scenario.timeout_s);
            match tokio::time::timeout(timeout, run_inner(s, opts, seed, &dir)).await {
                Ok(r) => r,
                Err(_) => Err(Verdict::Timeout(format!(
                    "the scenario did not end within {} s",
                    s.file.scenario.timeout_s
                ))),
            }
        }
    };
    let (verdict, observed) = match result {
        Ok((v, o)) => (v, o),
        Err(v) => (v, Observed::default()),
    };
    let r = RunResult {
        scenario: s.name().to_string(),
        seed,
        verdict,
        seconds: started.elapsed().as_secs_f64(),
        record: dir.display().to_string(),
        reproduce,
        observed,
    };
    let _ = std::fs::write(
        dir.join("result.json"),
        serde_json::to_string_pretty(&r).unwrap_or_default(),
    );
    match &r.verdict {
        Verdict::Pass => println!("PASS {} in {:.1}s", r.scenario, r.seconds),
        v => {
            println!("FAIL {} ({v:?}) in {:.1}s", r.scenario, r.seconds);
            println!("  record: {}", r.record);
            println!("  reproduce: {}", r.reproduce);
        }
    }
    r
}

fn harness(e: impl std::fmt::Display) -> Verdict {
    Verdict::HarnessError(e.to_string())
}

async fn run_inner(
    s: &Scenario,
    opts: &RunOptions,
    seed: u64,
    dir: &Path,
) -> Result<(Verdict, Observed), Verdict> {
    let history = History {
        started: Instant::now(),
        file: std::fs::File::create(dir.join("history.jsonl")).map_err(harness)?,
    };
    let (source, destination) = tokio::try_join!(
        Instance::start_with(opts.backend, InstanceOptions::default()),
        Instance::start_with(opts.backend, InstanceOptions::default()),
    )
    .map_err(harness)?;
    // On the source ferry may read and replicate, and write only its metadata schema (heartbeat, fence): a write
    // anywhere else fails the run, so every scenario also shows that ferry leaves the source's data alone.
    let source_default: Vec<String> = vec![
        "SELECT, SHOW VIEW, TRIGGER, EVENT, PROCESS, RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.*".into(),
        "ALL PRIVILEGES ON ferry_meta.*".into(),
    ];
    let destination_default: Vec<String> = vec!["ALL PRIVILEGES ON *.*".into()];
    for (i, grants) in [
        (
            &source,
            s.file
                .setup
                .ferry_source_grants
                .as_ref()
                .unwrap_or(&source_default),
        ),
        (
            &destination,
            s.file
                .setup
                .ferry_destination_grants
                .as_ref()
                .unwrap_or(&destination_default),
        ),
    ] {
        i.exec(&format!(
            "CREATE USER '{FERRY_USER}'@'%' IDENTIFIED BY '{FERRY_PASSWORD}'"
        ))
        .await
        .map_err(harness)?;
        for g in grants {
            i.exec(&format!(
                "GRANT {g} TO '{FERRY_USER}'@'%' WITH GRANT OPTION"
            ))
            .await
            .map_err(harness)?;
        }
    }
    let (sp, dp) = (source.endpoint(), destination.endpoint());
    let source_proxy = Proxy::start(&sp.host, sp.port).await.map_err(harness)?;
    let destination_proxy = Proxy::start(&dp.host, dp.port).await.map_err(harness)?;
    let (cfg, direct) = task_files(
        s,
        &source,
        &destination,
        source_proxy.port,
        destination_proxy.port,
    )?;
    let task_file = dir.join("task.toml");
    std::fs::write(&task_file, cfg.to_toml()).map_err(harness)?;
    let mut run = Run {
        s,
        seed,
        rng: rand::rngs::StdRng::seed_from_u64(seed),
        ferry: Ferry {
            bin: opts.ferry_bin.clone(),
            task_file,
            log: dir.join("engine.log"),
            failpoints: s.file.finish.failpoints.join(","),
            retry_minute_s: s.file.scenario.retry_minute_s,
            child: None,
            starts: 0,
            first_start: None,
            last_status: None,
        },
        source,
        destination,
        source_proxy,
        destination_proxy,
        direct,
        history,
        dir: dir.to_path_buf(),
        observed: Observed::default(),
        background: Vec::new(),
    };
    run.history.note(
        "servers",
        serde_json::json!({
            "source": run.source.version, "source_port": sp.port, "destination_port": dp.port,
            "source_proxy": run.source_proxy.port, "destination_proxy": run.destination_proxy.port,
            "backend": opts.backend.as_str(),
        }),
    );
    run.setup().await?;
    run.go().await
}

/// The task file: the runner's base (ferry's user, through the proxies, admin endpoint on) with the scenario's
/// `[migration]` merged over it; and the same task with direct endpoints as root (the runner's own probes and the
/// verifier, which faults on ferry's account must not reach).
fn task_files(
    s: &Scenario,
    source: &Instance,
    destination: &Instance,
    source_port: u16,
    destination_port: u16,
) -> Result<(TaskConfig, TaskConfig), Verdict> {
    // The shop database unless the scenario selects its own objects.
    let selects = s
        .file
        .migration
        .get("objects")
        .and_then(|o| o.as_table())
        .is_some_and(|o| o.contains_key("databases") || o.contains_key("tables"));
    let dbs = if s.file.setup.shop_scale > 0 && !selects {
        "databases = [\"shop\"]\n"
    } else {
        ""
    };
    let base = |sport: u16, dport: u16, user: &str, password: &str| {
        format!(
            "[task]\nname = \"{}\"\ntypes = [\"schema\", \"full\", \"incremental\"]\n\
             [source]\nhost = \"127.0.0.1\"\nport = {sport}\nuser = \"{user}\"\npassword = \"{password}\"\n\
             [destination]\nhost = \"127.0.0.1\"\nport = {dport}\nuser = \"{user}\"\npassword = \"{password}\"\n\
             [objects]\n{dbs}[admin]\nenabled = true\n",
            s.name().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_', "_")
        )
    };
    let merged = |text: String| -> Result<TaskConfig, Verdict> {
        let mut t: toml::Table = toml::from_str(&text).map_err(harness)?;
        merge(&mut t, &s.file.migration);
        let text = toml::to_string(&t).map_err(harness)?;
        TaskConfig::parse(&text).map_err(|e| harness(format!("the scenario's [migration]: {e}")))
    };
    let root = source.endpoint();
    let _ = destination;
    Ok((
        merged(base(
            source_port,
            destination_port,
            FERRY_USER,
            FERRY_PASSWORD,
        ))?,
        merged(base(
            source.port(),
            destination.port(),
            &root.user,
            &root.password.unwrap_or_default(),
        ))?,
    ))
}

/// Deep-merges `over` into `base` (tables merge, everything else replaces).
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl Run<'_> {
    fn server(&self, side: Side) -> &Instance {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }

    fn proxy(&self, side: Side) -> &Proxy {
        match side {
            Side::Source => &self.source_proxy,
            Side::Destination => &self.destination_proxy,
        }
    }

    async fn setup(&mut self) -> Result<(), Verdict> {
        let f = &self.s.file.setup;
        if f.shop_scale > 0 {
            crate::datagen::create_shop(&self.source, f.shop_scale)
                .await
                .map_err(harness)?;
        }
        for (side, files) in [
            (Side::Source, &f.source),
            (Side::Destination, &f.destination),
        ] {
            for file in files {
                let text = std::fs::read_to_string(self.s.dir.join(file)).map_err(harness)?;
                for stmt in scenario::statements(&text) {
                    self.server(side)
                        .exec(&stmt)
                        .await
                        .map_err(|e| harness(format!("setup {file}: {e}")))?;
                }
            }
        }
        self.history.note("setup", serde_json::json!({"shop_scale": f.shop_scale, "source": f.source, "destination": f.destination}));
        Ok(())
    }

    /// The task's progress as the destination's metadata shows it: (phase, chunks committed, transactions applied).
    async fn progress(&self) -> Option<(String, u64, u64)> {
        let mut c = self.destination.conn().await.ok()?;
        let meta = Meta::new(&self.direct.metadata.schema, &self.direct.task.name);
        if !meta.exists(&mut c).await.ok()? {
            return Some(("created".into(), 0, 0));
        }
        let row = meta.load(&mut c).await.ok()?;
        let chunks: u64 = meta
            .progress(&mut c)
            .await
            .ok()?
            .iter()
            .map(|t| t.chunks_done)
            .sum();
        let cdc = meta.cdc(&mut c).await.ok()?;
        Some((row.phase().as_str().to_string(), chunks, cdc.transactions))
    }

    fn pick(&mut self, r: &Range) -> u64 {
        match r {
            Range::One(n) => *n,
            Range::Between([lo, hi]) => self.rng.random_range(*lo..=(*hi).max(*lo)),
        }
    }

    /// Waits for a fault's trigger; Err when ferry ended first (the fault can never fire).
    async fn trigger(
        &mut self,
        f: &Fault,
        (events, after_chunks): (Option<u64>, Option<u64>),
        cutover_done: bool,
    ) -> Result<(), String> {
        let w = &f.when;
        loop {
            let mut ok = true;
            if w.at_phase.is_some() || after_chunks.is_some() || events.is_some() {
                match self.progress().await {
                    Some((phase, chunks, txs)) => {
                        ok &= w.at_phase.as_ref().is_none_or(|p| *p == phase);
                        ok &= after_chunks.is_none_or(|n| chunks >= n);
                        ok &= events.is_none_or(|n| txs >= n);
                    }
                    None => ok = false,
                }
            }
            if let Some(s) = w.after_s {
                ok &= self
                    .ferry
                    .first_start
                    .is_some_and(|t| t.elapsed().as_secs_f64() >= s);
            }
            if let Some(fp) = &w.failpoint {
                let log = std::fs::read_to_string(&self.ferry.log).unwrap_or_default();
                ok &= log.contains(&format!("failpoint {fp}"));
            }
            ok &= !w.after_cutover || cutover_done;
            if ok {
                return Ok(());
            }
            let waits_on_ferry = w.at_phase.is_some() || after_chunks.is_some() || events.is_some();
            if waits_on_ferry && !self.ferry.running() && w.failpoint.is_none() {
                return Err("ferry ended before the trigger".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn apply(&mut self, f: &Fault) -> Result<(), Verdict> {
        match &f.action {
            Action::Sql {
                on,
                sql,
                file,
                background,
            } => {
                let mut stmts = sql.clone();
                if let Some(file) = file {
                    let text = std::fs::read_to_string(self.s.dir.join(file)).map_err(harness)?;
                    stmts.extend(scenario::statements(&text));
                }
                if *background {
                    let mut conn = self.server(*on).conn().await.map_err(harness)?;
                    self.background.push(tokio::spawn(async move {
                        for s in stmts {
                            conn.query_drop(&s)
                                .await
                                .map_err(|e| format!("background SQL `{s}`: {e}"))?;
                        }
                        Ok(())
                    }));
                    return Ok(());
                }
                for s in stmts {
                    // A fault's SQL may fail on purpose-less grounds (a lock wait under the workload): retry a few
                    // times as an operator would, then report it.
                    let mut last = None;
                    for _ in 0..5 {
                        match self.server(*on).exec_as_app(&s).await {
                            Ok(()) => {
                                last = None;
                                break;
                            }
                            Err(e) => last = Some(e),
                        }
                    }
                    if let Some(e) = last {
                        return Err(harness(format!("fault SQL `{s}`: {e}")));
                    }
                }
            }
            Action::KillConnections { on } => {
                let ids: Vec<u64> = self
                    .server(*on)
                    .query(&format!(
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{FERRY_USER}'"
                    ))
                    .await
                    .map_err(harness)?;
                for id in ids {
                    let _ = self.server(*on).exec(&format!("KILL {id}")).await;
                }
            }
            Action::Network {
                on,
                latency_ms,
                bandwidth_bytes_per_s,
                down,
                blackhole,
                reset,
            } => {
                let p = self.proxy(*on);
                p.set(Conditions {
                    latency_ms: *latency_ms,
                    bandwidth_bytes_per_s: *bandwidth_bytes_per_s,
                    down: *down,
                    blackhole: *blackhole,
                });
                if *reset {
                    p.reset();
                }
            }
            Action::Server { on, action } => {
                let inst = match on {
                    Side::Source => &mut self.source,
                    Side::Destination => &mut self.destination,
                };
                match action {
                    ProcessAction::Kill => inst.kill().await,
                    ProcessAction::Stop | ProcessAction::Terminate => inst.stop().await,
                    ProcessAction::Restart => inst.restart().await,
                    ProcessAction::Pause => inst.pause().await,
                    ProcessAction::Resume => inst.resume().await,
                }
                .map_err(harness)?;
            }
            Action::Ferry { action } => match action {
                ProcessAction::Kill | ProcessAction::Stop => self.ferry.kill(),
                ProcessAction::Restart => {
                    self.ferry.kill();
                    self.ferry.spawn().map_err(harness)?;
                }
                ProcessAction::Pause => self.ferry.signal("-STOP"),
                ProcessAction::Resume => self.ferry.signal("-CONT"),
                // What a service manager or Ctrl-C sends: ferry commits what is whole and exits.
                ProcessAction::Terminate => {
                    self.ferry.signal("-TERM");
                    if !self.ferry.wait(60.0).await {
                        return Err(Verdict::WrongOutcome(
                            "ferry did not exit within 60 s of SIGTERM".into(),
                        ));
                    }
                }
            },
            Action::Command { run } => {
                let ep = self.source.endpoint();
                let cmd = run
                    .replace("{ferry}", &self.ferry.bin.to_string_lossy())
                    .replace("{task}", &self.ferry.task_file.to_string_lossy())
                    .replace("{source_port}", &ep.port.to_string())
                    .replace(
                        "{source_password}",
                        &ep.password.clone().unwrap_or_default(),
                    )
                    .replace(
                        "{dsn}",
                        &format!(
                            "h=127.0.0.1,P={},u=root,p={}",
                            ep.port,
                            ep.password.clone().unwrap_or_default()
                        ),
                    );
                let out = tokio::process::Command::new("sh")
                    .args(["-c", &cmd])
                    .output()
                    .await
                    .map_err(harness)?;
                std::fs::write(
                    self.dir.join("command.log"),
                    [&out.stdout[..], &out.stderr[..]].concat(),
                )
                .map_err(harness)?;
                if !out.status.success() {
                    return Err(harness(format!(
                        "`{cmd}` failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
            }
        }
        Ok(())
    }

    async fn heal(&mut self, f: &Fault) -> Result<(), Verdict> {
        match &f.action {
            Action::Network { on, .. } => self.proxy(*on).heal(),
            Action::Server { on, action } => {
                let inst = match on {
                    Side::Source => &mut self.source,
                    Side::Destination => &mut self.destination,
                };
                match action {
                    ProcessAction::Pause => inst.resume().await,
                    ProcessAction::Kill | ProcessAction::Stop | ProcessAction::Terminate => {
                        inst.restart().await
                    }
                    _ => Ok(()),
                }
                .map_err(harness)?;
            }
            Action::Ferry { action } => match action {
                ProcessAction::Pause => self.ferry.signal("-CONT"),
                ProcessAction::Kill | ProcessAction::Stop | ProcessAction::Terminate => {
                    self.ferry.spawn().map_err(harness)?
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }

    /// The code a failed ferry process ended with (the last FERRY-... code in its log).
    fn last_code(&self) -> Option<String> {
        let log = std::fs::read_to_string(&self.ferry.log).unwrap_or_default();
        let mut found = None;
        for line in log
            .lines()
            .filter(|l| l.starts_with("error") || l.contains("error:"))
        {
            if let Some(code) = first_code(line) {
                found = Some(code);
            }
        }
        found
    }

    async fn go(&mut self) -> Result<(Verdict, Observed), Verdict> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut workloads = Vec::new();
        for (i, w) in self.s.file.workload.iter().enumerate() {
            let kind = match w.kind.as_str() {
                "shop" => workload::Kind::Shop,
                "sakila" => workload::Kind::Sakila,
                other => return Err(harness(format!("unknown workload kind {other}"))),
            };
            let (ep, stop, seed, writers) = (
                self.source.endpoint(),
                stop.clone(),
                self.seed.wrapping_add(i as u64),
                w.writers as usize,
            );
            workloads.push(tokio::spawn(async move {
                // An application reconnects after a source restart or outage: so does the workload, with the
                // next seed, its counts added up.
                let mut total = workload::WorkloadStats::default();
                for attempt in 0u64.. {
                    match workload::run(
                        &ep,
                        kind,
                        seed.wrapping_add(attempt * 1000),
                        writers,
                        u64::MAX,
                        stop.clone(),
                    )
                    .await
                    {
                        Ok(s) => {
                            total.transactions += s.transactions;
                            total.statements += s.statements;
                            total.rolled_back += s.rolled_back;
                            return Ok(total);
                        }
                        Err(e) if e.is_transient() && attempt < 1000 => {
                            if stop.load(Ordering::Relaxed) {
                                return Ok(total);
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(total)
            }));
        }
        // Every value drawn from the seed, printed before anything depends on it.
        let faults: Vec<Fault> = self.s.file.fault.clone();
        let mut points: Vec<(Option<u64>, Option<u64>)> = Vec::new();
        for f in &faults {
            let e = f.when.after_events.as_ref().map(|r| self.pick(r));
            let c = f.when.after_chunks.as_ref().map(|r| self.pick(r));
            points.push((e, c));
        }
        let derived = serde_json::json!({
            "seed": self.seed,
            "after_events": points.iter().map(|p| p.0).collect::<Vec<_>>(),
            "after_chunks": points.iter().map(|p| p.1).collect::<Vec<_>>(),
            "workload_seeds": (0..workloads.len()).map(|i| self.seed.wrapping_add(i as u64)).collect::<Vec<_>>(),
        });
        println!("derived from SEED={}: {derived}", self.seed);
        self.history.note("derived", derived);
        let quiet = Arc::new(AtomicBool::new(true));
        let sampling_done = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn(sample_lag(
            self.destination.url(),
            self.direct.metadata.schema.clone(),
            self.direct.task.name.clone(),
            quiet.clone(),
            sampling_done.clone(),
        ));
        self.ferry.spawn().map_err(harness)?;
        self.history.note(
            "ferry started",
            serde_json::json!({"failpoints": self.ferry.failpoints}),
        );

        let mut cutover_done = false;
        let finish = self.s.file.finish.clone();
        for (i, f) in faults.iter().enumerate() {
            if f.when.after_cutover && !cutover_done {
                self.stop_workloads(&stop, &mut workloads).await?;
                self.cutover().await?;
                cutover_done = true;
            }
            match self.trigger(f, points[i], cutover_done).await {
                Ok(()) => {}
                Err(why) => {
                    self.history
                        .note("fault skipped", serde_json::json!({"fault": i, "why": why}));
                    continue;
                }
            }
            if f.heal_after_s.is_some() {
                quiet.store(false, Ordering::Relaxed);
            }
            self.apply(f).await?;
            self.observed.faults_fired += 1;
            self.history
                .note("fault", serde_json::to_value(&f.action).unwrap_or_default());
            if let Some(s) = f.heal_after_s {
                tokio::time::sleep(Duration::from_secs_f64(s)).await;
                self.heal(f).await?;
                self.history.note("healed", serde_json::json!({"fault": i}));
                // Lag counts again once sync had 5 s to catch up after the heal.
                let q = quiet.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    q.store(true, Ordering::Relaxed);
                });
            }
        }
        if !workloads.is_empty() {
            tokio::time::sleep(Duration::from_secs_f64(finish.settle_s)).await;
        }
        // Everything healed before the final checks.
        self.source_proxy.heal();
        self.destination_proxy.heal();
        self.ferry.signal("-CONT");

        // An application whose account read_only does not stop writes on into the cutover, until the source has
        // been read-only for a while; the others are stopped first, as an operator stops the application.
        let keeps_writing = match finish.writes_after_read_only_s {
            Some(s)
                if finish.how == FinishHow::Cutover && !cutover_done && !workloads.is_empty() =>
            {
                self.history.note(
                    "workload writes into the cutover",
                    serde_json::json!({"after_read_only_s": s}),
                );
                Some(tokio::spawn(stop_after_read_only(
                    self.source.url(),
                    stop.clone(),
                    Duration::from_secs_f64(s),
                    Duration::from_secs(self.s.file.scenario.timeout_s),
                )))
            }
            _ => {
                self.stop_workloads(&stop, &mut workloads).await?;
                None
            }
        };
        sampling_done.store(true, Ordering::Relaxed);
        self.observed.lag_s_max = sampler.await.ok().flatten();
        for b in std::mem::take(&mut self.background) {
            b.await.map_err(harness)?.map_err(harness)?;
        }
        let timeout_s = self.s.file.scenario.timeout_s as f64;
        match finish.how {
            FinishHow::Cutover if !cutover_done => {
                self.cutover().await?;
                if let Some(stopper) = keeps_writing {
                    let read_only_seen = stopper.await.map_err(harness)?;
                    self.history.note(
                        "read_only seen by the workload",
                        serde_json::json!({"seen": read_only_seen}),
                    );
                    self.stop_workloads(&stop, &mut workloads).await?;
                }
            }
            FinishHow::Drain if self.ferry.running() => {
                // A ferry just (re)started may not serve its admin endpoint yet (the task row still names the
                // last process's address): ask again while it runs, for a bounded time.
                let asked = Instant::now();
                let mut r = ferry_engine::admin::call(&self.direct, "/drain").await;
                while r.is_err() && self.ferry.running() && asked.elapsed() < DRAIN_ASK_MAX {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    r = ferry_engine::admin::call(&self.direct, "/drain").await;
                }
                self.history.note(
                    "drain",
                    serde_json::json!({"answer": r.map_err(|e| e.to_string())}),
                );
                if !self.ferry.wait(timeout_s).await {
                    return Err(Verdict::Timeout("ferry did not drain".into()));
                }
            }
            _ => {
                if !self.ferry.wait(timeout_s).await {
                    return Err(Verdict::Timeout("ferry did not end by itself".into()));
                }
            }
        }
        self.ferry.running();
        let ok = match finish.how {
            FinishHow::Cutover => self.observed.outcome == Some(Outcome::Ok),
            _ => self.ferry.last_status.is_some_and(|s| s.success()),
        };
        if finish.how != FinishHow::Cutover {
            self.observed.outcome = Some(if ok { Outcome::Ok } else { Outcome::Failed });
            self.observed.code = if ok { None } else { self.last_code() };
        }
        self.observed.ferry_starts = self.ferry.starts;
        self.history.note(
            "ferry ended",
            serde_json::json!({"outcome": self.observed.outcome, "code": self.observed.code, "status": self.ferry.last_status.map(|s| s.to_string())}),
        );
        self.check().await
    }

    async fn stop_workloads(
        &mut self,
        stop: &Arc<AtomicBool>,
        workloads: &mut Vec<
            tokio::task::JoinHandle<ferry_engine::error::Result<workload::WorkloadStats>>,
        >,
    ) -> Result<(), Verdict> {
        stop.store(true, Ordering::Relaxed);
        for w in workloads.drain(..) {
            let stats = w
                .await
                .map_err(harness)?
                .map_err(|e| harness(format!("workload: {e}")))?;
            self.observed.workload_transactions += stats.transactions;
        }
        self.history.note(
            "workload stopped",
            serde_json::json!({"transactions": self.observed.workload_transactions}),
        );
        Ok(())
    }

    /// Waits until the task syncs (incremental phase, a transaction applied), as an operator waits before a
    /// cutover; bounded by the scenario's timeout around the whole run.
    async fn wait_syncing(&mut self) -> Result<(), Verdict> {
        loop {
            if let Some((phase, _, txs)) = self.progress().await {
                if phase == "incremental" && txs > 0 {
                    return Ok(());
                }
            }
            if !self.ferry.running() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn cutover(&mut self) -> Result<(), Verdict> {
        self.wait_syncing().await?;
        let mut attempt = 0;
        let out = loop {
            attempt += 1;
            let out = tokio::process::Command::new(&self.ferry.bin)
                .args(["cutover", "-c"])
                .arg(&self.ferry.task_file)
                .arg("--json")
                .env(
                    "FERRY_FAILPOINTS",
                    if attempt == 1 {
                        self.ferry.failpoints.as_str()
                    } else {
                        ""
                    },
                )
                .output()
                .await
                .map_err(harness)?;
            let _ = std::fs::write(
                self.dir.join(format!("cutover-{attempt}.log")),
                [&out.stdout[..], &out.stderr[..]].concat(),
            );
            let code = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_string))
                .or_else(|| first_code(&String::from_utf8_lossy(&out.stderr)));
            // A cutover process that died (a failpoint's crash) is run again, as the operator would; so is one
            // refused for lag (FERRY-CUT-003) while sync catches up after the workload stopped.
            let again = (out.status.code() == Some(137) && attempt == 1)
                || (code.as_deref() == Some("FERRY-CUT-003") && attempt < 5);
            if again {
                self.history.note(
                    "cutover again",
                    serde_json::json!({"attempt": attempt, "code": code}),
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            break (out, code);
        };
        let (out, code) = out;
        let ok = out.status.success();
        self.observed.outcome = Some(if ok { Outcome::Ok } else { Outcome::Failed });
        if !ok {
            self.observed.code = code;
        }
        self.history.note(
            "cutover",
            serde_json::json!({"ok": ok, "code": self.observed.code}),
        );
        // The run process is fenced off by the cutover and ends.
        if !self.ferry.wait(60.0).await {
            self.ferry.kill();
        }
        Ok(())
    }

    async fn checksums(&self) -> Result<Vec<(String, Option<u64>)>, Verdict> {
        let dbs: Vec<String> = self
            .destination
            .query(
                "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND \
                 TABLE_SCHEMA NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema', 'ferry_meta') \
                 ORDER BY 1, 2",
            )
            .await
            .map(|rows: Vec<(String, String)>| {
                rows.into_iter()
                    .map(|(d, t)| format!("`{d}`.`{t}`"))
                    .collect()
            })
            .map_err(harness)?;
        let mut out = Vec::new();
        for t in dbs {
            let mut c = self.destination.conn().await.map_err(harness)?;
            let row: Option<(String, Option<u64>)> = c
                .query_first(format!("CHECKSUM TABLE {t}"))
                .await
                .map_err(harness)?;
            out.push((t, row.and_then(|r| r.1)));
        }
        Ok(out)
    }

    async fn check(&mut self) -> Result<(Verdict, Observed), Verdict> {
        let e = self.s.file.expect.clone();
        let mut wrong = Vec::new();
        if self.observed.outcome != Some(e.outcome) {
            wrong.push(format!(
                "outcome {:?}, expected {:?} (code {:?})",
                self.observed.outcome, e.outcome, self.observed.code
            ));
        }
        if e.outcome == Outcome::Failed && self.observed.code != e.code {
            wrong.push(format!(
                "code {:?}, expected {:?}",
                self.observed.code, e.code
            ));
        }
        // Warnings recorded by the task.
        if let Ok(mut c) = self.destination.conn().await {
            let meta = Meta::new(&self.direct.metadata.schema, &self.direct.task.name);
            if let Ok(ws) = meta.warnings(&mut c, 1000).await {
                self.observed.warnings = ws.into_iter().map(|w| w.code).collect();
            }
        }
        for w in &e.warnings {
            if !self.observed.warnings.contains(w) {
                wrong.push(format!(
                    "warning {w} not recorded (got {:?})",
                    self.observed.warnings
                ));
            }
        }
        if let Some(bound) = e.lag_s_max {
            match self.observed.lag_s_max {
                Some(l) if l <= bound => {}
                Some(l) => wrong.push(format!(
                    "lag reached {l:.1} s, above the bound of {bound} s"
                )),
                None => wrong.push("no lag was sampled while syncing".into()),
            }
        }
        for (objects, want) in [
            (&e.objects_on_destination, true),
            (&e.objects_absent_on_destination, false),
        ] {
            for o in objects {
                let q = scenario::object_query(o).map_err(harness)?;
                let found: Option<u64> = self.destination.query_first(&q).await.map_err(harness)?;
                if found.is_some() != want {
                    wrong.push(format!(
                        "{o} {} on the destination",
                        if want { "is not" } else { "is still" }
                    ));
                }
            }
        }
        if let Some(code) = self
            .s
            .file
            .finish
            .stale_run_code
            .as_ref()
            .filter(|_| self.observed.outcome == Some(Outcome::Ok))
        {
            let before = self.checksums().await?;
            let run = tokio::process::Command::new(&self.ferry.bin)
                .args(["run", "-c"])
                .arg(&self.ferry.task_file)
                .kill_on_drop(true)
                .output();
            match tokio::time::timeout(Duration::from_secs(60), run).await {
                Err(_) => wrong.push(format!(
                    "the stale run was not refused ({code}) within 60 s"
                )),
                Ok(out) => {
                    let out = out.map_err(harness)?;
                    let text = String::from_utf8_lossy(&out.stderr).to_string();
                    let _ = std::fs::write(self.dir.join("stale-run.log"), &text);
                    if out.status.success() || !text.contains(code.as_str()) {
                        wrong.push(format!("the stale run did not fail with {code}: {text}"));
                    }
                    self.history.note(
                        "stale run",
                        serde_json::json!({"refused": !out.status.success()}),
                    );
                }
            }
            let after = self.checksums().await?;
            if before != after {
                wrong.push("the stale run changed the destination".into());
            }
        }
        let verify = e.verify_equal.unwrap_or(e.outcome == Outcome::Ok);
        let mut divergence = None;
        if verify {
            let report = ferry_verifier::verify(
                &self.direct,
                &ferry_verifier::VerifyOptions {
                    out: Some(self.dir.join("verify")),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| harness(format!("verifier: {e}")))?;
            let t = &report.totals;
            let line = format!(
                "{} rows in {} tables: {} missing, {} extra, {} different",
                t.rows_checked, t.tables, t.missing, t.extra, t.different
            );
            self.history.note(
                "verify",
                serde_json::json!({"consistent": t.consistent, "summary": line}),
            );
            self.observed.verify = Some(line.clone());
            if !t.consistent {
                divergence = Some(line);
            }
        }
        let verdict = match (wrong.is_empty(), divergence) {
            (false, _) => Verdict::WrongOutcome(wrong.join("; ")),
            (true, Some(d)) => Verdict::DataDivergence(d),
            (true, None) => Verdict::Pass,
        };
        Ok((verdict, self.observed.clone()))
    }
}
