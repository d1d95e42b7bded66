//! The cutover runbook (`ferry cutover`): from "the destination follows the source" to "the application writes to
//! the destination", with every older ferry process of the task fenced off, in the order an operator would do it.

use crate::cdc::position::Position;
use crate::cdc::sync::{self, Control};
use crate::codes;
use crate::config::{MigrationType, TaskConfig};
use crate::error::{Error, Result, ResultExt};
use crate::meta::{Meta, Phase, Step};
use crate::mysql::conn::{Role, Server};
use crate::mysql::quote::ident;
use crate::schema::model::{NameMap, ObjectKind};
use crate::schema::{apply, introspect};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::{info, warn};

/// What a cutover did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CutoverReport {
    pub task: String,
    /// `done` (switched; also when an earlier run already did it), `rolled_back` (nothing switched; the task can
    /// run again), `unknown` (a rollback step failed: see `steps`).
    pub outcome: String,
    /// Set when this run found the task already cut over and changed nothing.
    pub already: bool,
    /// The code behind a rollback, an unknown outcome, or a revoke that did not take.
    pub code: Option<String>,
    pub reason: Option<String>,
    /// The task generation ferry writes under after this run (older processes are fenced off).
    pub generation: u64,
    pub lag_s: Option<f64>,
    /// The source position the destination applied up to before switching.
    pub final_position: Option<String>,
    /// Every step taken, in order.
    pub steps: Vec<String>,
    /// Coded warnings (also recorded in the task's warnings): sessions read_only does not stop (FERRY-CUT-005).
    #[serde(default)]
    pub warnings: Vec<CutoverWarning>,
    pub seconds: f64,
}

/// A coded warning of a cutover.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CutoverWarning {
    pub code: String,
    pub detail: String,
}

/// How long the source's binlog must stand still to count as stopped (writes stopped by the operator).
const QUIET_S: u64 = 2;
/// How long the source's binlog must stand still after read_only before the final position is taken: sessions
/// read_only does not stop may still commit, and their last commits belong before the final position.
const READ_ONLY_QUIET_MS: u64 = 500;
/// How often the source's position is read while waiting for its binlog to stand still.
const QUIET_POLL_MS: u64 = 100;
/// Session ids named per account in a FERRY-CUT-005 warning (the rest are counted).
const SESSIONS_NAMED_MAX: usize = 20;
/// How long cutover waits for the fence lock before it ends the session that holds it.
const FENCE_LOCK_POLITE_S: u64 = 10;

pub async fn run(cfg: &TaskConfig) -> Result<CutoverReport> {
    let started = Instant::now();
    let mut report = CutoverReport {
        task: cfg.task.name.clone(),
        ..CutoverReport::default()
    };
    let source = Server::connect(&cfg.source, "source").await?;
    let destination = Server::connect(&cfg.destination, "destination").await?;
    let dst_pool = destination.pool(Role::Write, 1);
    let mut dst = dst_pool.get_conn().await.ctx("destination")?;
    let src_pool = source.pool(Role::Write, 1);
    let mut src = src_pool.get_conn().await.ctx("source")?;
    let result = steps(cfg, &source, &destination, &mut src, &mut dst, &mut report).await;
    drop(src);
    drop(dst);
    let _ = src_pool.disconnect().await;
    let _ = dst_pool.disconnect().await;
    report.seconds = started.elapsed().as_secs_f64();
    result.map(|()| report)
}

async fn steps(
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
    src: &mut Conn,
    dst: &mut Conn,
    report: &mut CutoverReport,
) -> Result<()> {
    // 1. Where the task stands. Cut over already: say so and change nothing (cutover is safe to run again).
    let mut meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let row = meta.load(dst).await?;
    if row.phase() == Phase::CutOver {
        let mut earlier: CutoverReport = row
            .cutover_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default();
        earlier.already = true;
        earlier.outcome = "done".into();
        *report = earlier;
        return Ok(());
    }
    let incremental = cfg.has(MigrationType::Incremental);
    let ready = match row.phase() {
        Phase::Incremental | Phase::CuttingOver => incremental,
        Phase::Done | Phase::PostData => !incremental,
        _ => false,
    };
    if !ready {
        return refuse(
            report,
            format!(
                "the task is in phase {} ({}): cutover needs the copy done{}",
                row.phase().as_str(),
                if row.exists {
                    "run `ferry run` first"
                } else {
                    "it never ran here"
                },
                if incremental {
                    " and binlog sync running"
                } else {
                    ""
                }
            ),
        );
    }

    // 2. Lag below the bound (a resumed cutover skips it: the application may already be stopped).
    if incremental && row.phase() == Phase::Incremental {
        let status = crate::status::read(cfg).await?;
        let lag_s = status.incremental.as_ref().and_then(|i| i.lag_s);
        report.lag_s = lag_s;
        match lag_s {
            Some(l) if l <= cfg.cutover.lag_s_max as f64 => {
                report.steps.push(format!(
                    "lag {l:.1} s <= lag_s_max {} s",
                    cfg.cutover.lag_s_max
                ));
            }
            other => {
                return refuse(
                    report,
                    format!(
                        "lag {} is above cutover.lag_s_max = {} s; let sync catch up first",
                        other
                            .map(|l| format!("{l:.1} s"))
                            .unwrap_or_else(|| "unknown".into()),
                        cfg.cutover.lag_s_max
                    ),
                );
            }
        }
    }

    // 3. The fence: raise the task's generation under the fence lock. From this commit on, every write of an
    //    older ferry process of this task matches nothing and stops it with FERRY-CUT-001; a DDL it is running
    //    finishes first (it holds the lock), and a session that holds the lock and does not let go is ended.
    //    First the session the applier last committed on is ended, wherever its process is: a process stopped
    //    in the middle of a transaction holds row locks the final drain (and the fence itself) would wait on.
    if let Some(id) = meta.applier_connection(dst).await? {
        if end_session(dst, id).await? {
            report.steps.push(format!(
                "ended destination session {id} of the task's last applier"
            ));
        }
    }
    take_fence_lock(dst, &meta, report).await?;
    let raised = meta.raise_generation(dst).await;
    meta.unlock_fence(dst).await?;
    report.generation = raised?;
    crate::failpoint::hit(crate::failpoint::names::CUTOVER_FENCED).await?;
    report.steps.push(format!(
        "generation raised to {}: older ferry processes of the task are fenced off",
        report.generation
    ));
    info!(generation = report.generation, "cutover: fence raised");

    // 4-6 may roll back; the rollback undoes what was done to the source and leaves the task runnable again.
    let mut read_only_set = None;
    match switch(
        cfg,
        source,
        destination,
        src,
        dst,
        &meta,
        incremental,
        &mut read_only_set,
        report,
    )
    .await
    {
        Ok(()) => {}
        Err(e) => {
            warn!(error = %e, "cutover: rolling back");
            report.code = Some(e.code().id.to_string());
            report.reason = Some(e.to_string());
            let mut undone = Ok(());
            if let Some(set) = read_only_set {
                undone = undo_read_only(src, set, report).await;
            }
            report.outcome = if undone.is_ok() {
                "rolled_back"
            } else {
                "unknown"
            }
            .into();
            if let Err(u) = undone {
                report.steps.push(format!("rollback failed: {u}"));
            }
            let json = serde_json::to_string(&*report).unwrap_or_default();
            meta.record_cutover(dst, None, &json).await?;
            return Ok(());
        }
    }

    // 7. Optionally take ferry's own write rights on the migrated databases away, and check they are gone.
    if cfg.cutover.revoke_destination_writes {
        if let Err(e) = revoke_writes(cfg, destination, dst, report).await {
            report.code = Some(e.code().id.to_string());
            report.reason = Some(e.to_string());
            report.steps.push(format!("revoke not done: {e}"));
        }
    }

    // 8. Done: recorded with its report, so a second cutover says so and a later `ferry run` refuses.
    report.outcome = "done".into();
    let json = serde_json::to_string(&*report).unwrap_or_default();
    meta.record_cutover(dst, Some("cut_over"), &json).await?;
    info!(task = %cfg.task.name, "cutover done");
    Ok(())
}

/// Steps 4-6: stop the source's writes, apply up to its final position, create the post-data objects.
#[allow(clippy::too_many_arguments)]
async fn switch(
    cfg: &TaskConfig,
    source: &Server,
    destination: &Server,
    src: &mut Conn,
    dst: &mut Conn,
    meta: &Meta,
    incremental: bool,
    read_only_set: &mut Option<ReadOnlySet>,
    report: &mut CutoverReport,
) -> Result<()> {
    // 4. No more writes on the source: set super_read_only where the server has it (it stops every account), else
    //    read_only, and name the sessions read_only does not stop; or wait until the operator's stop shows as a
    //    binlog that stands still. Either way the final position is one the binlog stood still at: a session
    //    read_only did not stop may have committed right after it was set, and that commit belongs before it.
    let wait_s = cfg.cutover.quiet_wait_s;
    let final_position = if cfg.cutover.set_source_read_only {
        let set = set_read_only(src, wait_s).await?;
        *read_only_set = Some(set);
        if set.super_read_only {
            report
                .steps
                .push("source super_read_only = ON (and read_only): no account writes".into());
        } else {
            report.steps.push("source read_only = ON".into());
            warn_unstopped(cfg, source, src, dst, meta, report).await?;
        }
        let still = wait_still(
            src,
            source,
            Duration::from_millis(READ_ONLY_QUIET_MS),
            wait_s,
            |last| {
                format!(
                    "the source was still being written {wait_s} s after read_only was set (cutover.quiet_wait_s; \
                     last at {last}): sessions read_only does not stop write to it (FERRY-CUT-005 names those \
                     connected); end them or revoke their privilege, then run the cutover again"
                )
            },
        )
        .await?;
        report.steps.push(format!(
            "source binlog stood still for {READ_ONLY_QUIET_MS} ms after read_only"
        ));
        still
    } else {
        let still = wait_still(src, source, Duration::from_secs(QUIET_S), wait_s, |last| {
            format!(
                "the source was still being written after cutover.quiet_wait_s = {wait_s} s (last at {last}); stop \
                 the application's writes, or set cutover.set_source_read_only = true"
            )
        })
        .await?;
        report.steps.push(format!(
            "source binlog still for {QUIET_S} s (writes stopped)"
        ));
        still
    };
    report.final_position = Some(final_position.to_string());

    // 5. The destination applies everything up to the final position, under the new generation.
    if incremental {
        let mut drain_cfg = cfg.clone();
        drain_cfg.incremental.heartbeat = false;
        let (_ctl, rx) = watch::channel(Control::Drain);
        let drained = tokio::time::timeout(
            Duration::from_secs(cfg.cutover.drain_s_max),
            sync::run(&drain_cfg, source, destination, meta, rx),
        )
        .await
        .map_err(|_| {
            Error::definite(
                &codes::CUT_REFUSED,
                format!(
                    "the final position was not applied within cutover.drain_s_max = {} s",
                    cfg.cutover.drain_s_max
                ),
            )
        })??;
        let at = meta.cdc(dst).await?.checkpoint;
        let applied = at
            .as_ref()
            .map(|a| a.cmp_in_log(&final_position).map(|o| o.is_ge()))
            .transpose()?
            .unwrap_or(false);
        if !applied {
            return Err(Error::definite(
                &codes::CUT_REFUSED,
                format!(
                    "sync ended ({}) at {} before the final position {final_position}",
                    drained.ended,
                    at.map(|a| a.to_string())
                        .unwrap_or_else(|| "no checkpoint".into())
                ),
            ));
        }
        report.steps.push(format!(
            "destination applied the source up to {final_position} ({} transaction(s) in the final drain)",
            drained.transactions
        ));
        // read_only held: nothing was committed on the source since the final position (ferry's own heartbeat
        // pauses while the source is read-only), so nothing the application wrote is left behind.
        if cfg.cutover.set_source_read_only {
            let now = Position::current(src, source.info.flavor).await?;
            if written_since(&final_position, &now) {
                return Err(Error::definite(
                    &codes::CUT_REFUSED,
                    format!(
                        "the source was written after the final position {final_position} (now at {now}): a session \
                         read_only does not stop committed after the binlog stood still (FERRY-CUT-005 names those \
                         connected); end them or revoke their privilege, then run the cutover again"
                    ),
                ));
            }
            report
                .steps
                .push("source unchanged since the final position (read_only held)".into());
        }
        crate::failpoint::hit(crate::failpoint::names::CUTOVER_DRAINED).await?;
    }

    // 6. Post-data objects: triggers (they fire for the application's writes from now on) and events, enabled.
    let schema = {
        let pool = source.pool(Role::Introspect, 1);
        let mut c = pool.get_conn().await.ctx("source")?;
        let s = introspect::read_task(&mut c, cfg, true).await;
        drop(c);
        let _ = pool.disconnect().await;
        s?
    };
    if cfg.has(MigrationType::Schema) {
        let on_destination = schema.mapped(&NameMap::new(cfg));
        let created = apply::post_data(dst, meta, &on_destination).await?;
        for c in &created.created {
            report.steps.push(format!("created {c}"));
        }
        for e in on_destination
            .objects
            .iter()
            .filter(|o| o.kind == ObjectKind::Event)
        {
            dst.query_drop(format!(
                "ALTER EVENT {}.{} ENABLE",
                ident(&e.db),
                ident(&e.name)
            ))
            .await
            .ctx(format!("enabling event {}.{}", e.db, e.name))?;
            report
                .steps
                .push(format!("enabled event {}.{}", e.db, e.name));
        }
        meta.mark_done(dst, Step::SchemaPost).await?;
    }
    Ok(())
}

/// Takes the fence lock; a session that keeps it past `FENCE_LOCK_POLITE_S` (a ferry process stopped in the
/// middle of a DDL) is ended first, so no older process can write after the generation moves.
async fn take_fence_lock(dst: &mut Conn, meta: &Meta, report: &mut CutoverReport) -> Result<()> {
    let name = meta.fence_lock_name();
    let got: Option<Option<i64>> = dst
        .exec_first("SELECT GET_LOCK(?, ?)", (&name, FENCE_LOCK_POLITE_S))
        .await
        .ctx("taking the fence lock")?;
    if got.flatten() == Some(1) {
        return Ok(());
    }
    let holder: Option<Option<u64>> = dst
        .exec_first("SELECT IS_USED_LOCK(?)", (&name,))
        .await
        .ctx("finding the fence lock's holder")?;
    if let Some(id) = holder.flatten() {
        if end_session(dst, id).await? {
            report.steps.push(format!(
                "ended destination session {id}, which held the fence lock"
            ));
        }
    }
    meta.lock_fence(dst).await
}

/// Ends destination session `id` unless it is this one or already gone; whether it was ended.
async fn end_session(dst: &mut Conn, id: u64) -> Result<bool> {
    let own: Option<u64> = dst
        .query_first("SELECT CONNECTION_ID()")
        .await
        .ctx("destination")?;
    if own == Some(id) {
        return Ok(false);
    }
    match dst.query_drop(format!("KILL CONNECTION {id}")).await {
        Ok(()) => Ok(true),
        Err(e) => {
            let e = Error::from(e);
            // 1094: unknown thread id (the session is gone already).
            if e.mysql_errno() == Some(1094) {
                Ok(false)
            } else {
                Err(e.context(format!("ending destination session {id}")))
            }
        }
    }
}

/// Waits until the source's binlog position stays the same for `quiet`, at most `wait_s`: the position it stood
/// still at. Past the limit: FERRY-CUT-003 with `still_written(last position)`.
async fn wait_still(
    src: &mut Conn,
    source: &Server,
    quiet: Duration,
    wait_s: u64,
    still_written: impl Fn(&Position) -> String,
) -> Result<Position> {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    let mut last = Position::current(src, source.info.flavor).await?;
    let mut still_since = Instant::now();
    loop {
        if still_since.elapsed() >= quiet {
            return Ok(last);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::definite(&codes::CUT_REFUSED, still_written(&last)));
        }
        tokio::time::sleep(Duration::from_millis(QUIET_POLL_MS).min(deadline - now)).await;
        let at = Position::current(src, source.info.flavor).await?;
        if at.file() != last.file() || at.pos() != last.pos() {
            last = at;
            still_since = Instant::now();
        }
    }
}

/// Whether a transaction was committed on the source between two of its positions: by GTID where the server
/// keeps them (a binlog rotation moves the file, not the GTIDs), else by file and offset.
fn written_since(before: &Position, now: &Position) -> bool {
    let gtids = |p: &Position| match p {
        Position::MySql { gtid_set, .. } => gtid_set.clone(),
        Position::MariaDb { gtid_list, .. } => gtid_list.clone(),
    };
    let (a, b) = (gtids(before), gtids(now));
    if !a.is_empty() || !b.is_empty() {
        return a != b;
    }
    before.file() != now.file() || before.pos() != now.pos()
}

/// What the cutover set on the source to stop its writes, undone on rollback.
#[derive(Debug, Clone, Copy)]
struct ReadOnlySet {
    /// super_read_only was set (the server has it): no account writes, whatever its privileges.
    super_read_only: bool,
}

/// Sets super_read_only where the server has it (MySQL 5.7.8+; detected by the variable, not the version), else
/// read_only. Setting either waits for running commits and table locks: bounded by `wait_s` (lock_wait_timeout).
async fn set_read_only(src: &mut Conn, wait_s: u64) -> Result<ReadOnlySet> {
    let has_super: Option<(String, String)> = src
        .query_first("SHOW GLOBAL VARIABLES LIKE 'super_read_only'")
        .await
        .ctx("source: reading super_read_only")?;
    src.query_drop(format!("SET SESSION lock_wait_timeout = {}", wait_s.max(1)))
        .await
        .ctx("source: bounding the wait for read_only")?;
    let (var, set) = if has_super.is_some() {
        ("super_read_only", "SET GLOBAL super_read_only = ON")
    } else {
        ("read_only", "SET GLOBAL read_only = ON")
    };
    match src.query_drop(set).await {
        Ok(()) => Ok(ReadOnlySet {
            super_read_only: has_super.is_some(),
        }),
        Err(e) => {
            let e = Error::from(e);
            // 1205: lock wait timeout (a LOCK TABLES, FLUSH TABLES WITH READ LOCK or long statement held it).
            if e.mysql_errno() == Some(1205) {
                Err(Error::definite(
                    &codes::CUT_REFUSED,
                    format!(
                        "the source's {var} could not be set within cutover.quiet_wait_s = {wait_s} s: a session holds \
                         a table lock or a global read lock (LOCK TABLES, FLUSH TABLES WITH READ LOCK, a long \
                         statement); end it and run the cutover again"
                    ),
                ))
            } else {
                Err(e.context(format!("source: setting {var}")))
            }
        }
    }
}

/// Rollback: super_read_only and read_only back to OFF.
async fn undo_read_only(
    src: &mut Conn,
    set: ReadOnlySet,
    report: &mut CutoverReport,
) -> Result<()> {
    if set.super_read_only {
        src.query_drop("SET GLOBAL super_read_only = OFF")
            .await
            .ctx("source: undoing super_read_only")?;
        report
            .steps
            .push("rollback: source super_read_only set back to OFF".into());
    }
    src.query_drop("SET GLOBAL read_only = OFF")
        .await
        .ctx("source: undoing read_only")?;
    report
        .steps
        .push("rollback: source read_only set back to OFF".into());
    Ok(())
}

/// Names the sessions connected to the source that read_only does not stop (FERRY-CUT-005, recorded in the
/// task's warnings and the report). A check that cannot run is a step of the report, not a failure: the wait for
/// a binlog that stands still is what holds the cutover back.
async fn warn_unstopped(
    cfg: &TaskConfig,
    source: &Server,
    src: &mut Conn,
    dst: &mut Conn,
    meta: &Meta,
    report: &mut CutoverReport,
) -> Result<()> {
    let found = match unstopped_sessions(src, source, &cfg.source.user).await {
        Ok(found) => found,
        Err(e) => {
            warn!(error = %e, "cutover: the sessions read_only does not stop were not checked");
            report.steps.push(format!(
                "sessions read_only does not stop: not checked ({e})"
            ));
            return Ok(());
        }
    };
    let Some(detail) = found.detail() else {
        report
            .steps
            .push("no session connected to the source writes despite read_only".into());
        return Ok(());
    };
    let at = Position::current(src, source.info.flavor).await?;
    warn!(code = codes::CUT_UNSTOPPED.id, "{detail}");
    dst.query_drop(meta.warning_sql(&codes::CUT_UNSTOPPED, &detail, &at.to_string()))
        .await
        .ctx("recording a warning")?;
    report.steps.push(format!(
        "{}: {} session(s) read_only does not stop (see warnings)",
        codes::CUT_UNSTOPPED.id,
        found.sessions()
    ));
    report.warnings.push(CutoverWarning {
        code: codes::CUT_UNSTOPPED.id.to_string(),
        detail,
    });
    Ok(())
}

/// Sessions read_only does not stop, by account, and those whose account's grants ferry could not read.
#[derive(Debug, Default)]
struct Unstopped {
    /// `user@host` of the account, the privilege that lets it write, its session ids.
    writers: std::collections::BTreeMap<String, (String, Vec<u64>)>,
    /// User name, its session ids.
    unreadable: std::collections::BTreeMap<String, Vec<u64>>,
}

impl Unstopped {
    fn sessions(&self) -> usize {
        self.writers
            .values()
            .map(|(_, ids)| ids.len())
            .sum::<usize>()
            + self.unreadable.values().map(Vec::len).sum::<usize>()
    }

    /// The warning's text; None when there is nothing to warn about.
    fn detail(&self) -> Option<String> {
        let ids = |ids: &[u64]| {
            let mut s = ids
                .iter()
                .take(SESSIONS_NAMED_MAX)
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            if ids.len() > SESSIONS_NAMED_MAX {
                s.push_str(&format!(" and {} more", ids.len() - SESSIONS_NAMED_MAX));
            }
            s
        };
        let mut parts = Vec::new();
        if !self.writers.is_empty() {
            parts.push(format!(
                "sessions whose accounts write despite read_only are connected to the source: {}",
                self.writers
                    .iter()
                    .map(|(account, (why, s))| format!("{account} ({why}; session {})", ids(s)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if !self.unreadable.is_empty() {
            parts.push(format!(
                "sessions whose accounts' grants ferry cannot read (its source account needs SELECT on mysql.*) \
                 may write despite read_only: {}",
                self.unreadable
                    .iter()
                    .map(|(user, s)| format!("{user} (session {})", ids(s)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        (!parts.is_empty()).then(|| {
            format!(
                "{}; end them or revoke the privilege: the cutover waits for the binlog to stand still",
                parts.join(". ")
            )
        })
    }
}

/// Processlist users that are server threads, not client sessions.
const SYSTEM_USERS: &[&str] = &["system user", "event_scheduler", "unauthenticated user", ""];
/// Processlist commands of server threads and binlog readers, not client sessions: daemons, a replica's own
/// replication threads (its applier writes despite read_only: the wait for a binlog that stands still covers
/// it), binlog dumps (replicas, ferry's own reader).
const SKIPPED_COMMANDS: &[&str] = &[
    "Daemon",
    "Binlog Dump",
    "Binlog Dump GTID",
    "Slave_IO",
    "Slave_SQL",
    "Slave_worker",
];
/// How deep roles granted to roles are followed.
const ROLE_DEPTH_MAX: usize = 8;

/// ID, USER, HOST, COMMAND of a processlist row.
type ProcesslistRow = (u64, Option<String>, Option<String>, Option<String>);

/// Finds the client sessions on the source (other than ferry's own account's) whose accounts can write despite
/// read_only: they hold READ_ONLY ADMIN (MariaDB 10.5+), SUPER (MySQL, and MariaDB before 10.11, where SUPER
/// includes it) or ALL PRIVILEGES on `*.*`, directly or through a role. The processlist gives a session's user
/// name and client host; the accounts are those of information_schema.USER_PRIVILEGES with that name whose host
/// pattern matches (all of that name when none does), read with SHOW GRANTS.
async fn unstopped_sessions(
    src: &mut Conn,
    source: &Server,
    ferry_user: &str,
) -> Result<Unstopped> {
    let sessions: Vec<ProcesslistRow> = src
        .query(
            "SELECT ID, USER, HOST, COMMAND FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
             ORDER BY ID",
        )
        .await
        .ctx("source: reading the processlist")?;
    let grantees: Vec<String> = src
        .query("SELECT DISTINCT GRANTEE FROM information_schema.USER_PRIVILEGES")
        .await
        .ctx("source: reading the accounts")?;
    let accounts: Vec<(String, String)> =
        grantees.iter().filter_map(|g| parse_grantee(g)).collect();
    let super_counts = super_ignores_read_only(&source.info);
    let mut found = Unstopped::default();
    let mut known: std::collections::HashMap<(String, String), Grants> = Default::default();
    for (id, user, host, command) in sessions {
        let user = user.unwrap_or_default();
        let command = command.unwrap_or_default();
        if user == ferry_user
            || SYSTEM_USERS.contains(&user.as_str())
            || SKIPPED_COMMANDS.contains(&command.as_str())
        {
            continue;
        }
        let host = client_host(host.as_deref().unwrap_or(""));
        let named: Vec<&(String, String)> = accounts.iter().filter(|(u, _)| *u == user).collect();
        if named.is_empty() {
            found.unreadable.entry(user).or_default().push(id);
            continue;
        }
        let matching: Vec<&(String, String)> = named
            .iter()
            .copied()
            .filter(|(_, h)| host_matches(h, host))
            .collect();
        let candidates = if matching.is_empty() { named } else { matching };
        for account in candidates {
            let grants = match known.get(account) {
                Some(g) => g.clone(),
                None => {
                    let g = account_grants(src, account, super_counts).await?;
                    known.insert(account.clone(), g.clone());
                    g
                }
            };
            let shown = format!("{}@{}", account.0, account.1);
            match grants {
                Grants::Writes(why) => {
                    found
                        .writers
                        .entry(shown)
                        .or_insert_with(|| (why, Vec::new()))
                        .1
                        .push(id);
                    break;
                }
                Grants::Unreadable => {
                    found.unreadable.entry(user.clone()).or_default().push(id);
                    break;
                }
                Grants::Stopped => {}
            }
        }
    }
    Ok(found)
}

/// What an account's grants say about read_only.
#[derive(Debug, Clone)]
enum Grants {
    /// It writes despite read_only, by this privilege.
    Writes(String),
    /// read_only stops it.
    Stopped,
    /// SHOW GRANTS was refused.
    Unreadable,
}

/// The grants of `(user, host)` and the roles granted to it (and to those, `ROLE_DEPTH_MAX` deep).
async fn account_grants(
    src: &mut Conn,
    (user, host): &(String, String),
    super_counts: bool,
) -> Result<Grants> {
    let mut queue = vec![(format!("{}@{}", ident(user), ident(host)), 0usize)];
    let mut seen = std::collections::HashSet::new();
    while let Some((who, depth)) = queue.pop() {
        if !seen.insert(who.clone()) {
            continue;
        }
        let lines: Vec<String> = match src.query(format!("SHOW GRANTS FOR {who}")).await {
            Ok(lines) => lines,
            Err(e) => {
                let e = Error::from(e);
                match e.mysql_errno() {
                    // Access denied to the mysql schema / a privilege: ferry cannot tell.
                    Some(1044 | 1142 | 1227) => return Ok(Grants::Unreadable),
                    // No such grant (the account or role went away meanwhile).
                    Some(1141) => continue,
                    _ => return Err(e.context(format!("source: SHOW GRANTS FOR {who}"))),
                }
            }
        };
        for line in &lines {
            if let Some(p) = read_only_bypass(&privileges_on(line, "*.*"), super_counts) {
                return Ok(Grants::Writes(p));
            }
            if depth < ROLE_DEPTH_MAX {
                queue.extend(roles_granted(line).into_iter().map(|r| (r, depth + 1)));
            }
        }
    }
    Ok(Grants::Stopped)
}

/// The privilege of a global privilege list that lets its holder write despite read_only.
fn read_only_bypass(privs: &[String], super_counts: bool) -> Option<String> {
    privs
        .iter()
        .find(|p| {
            *p == "ALL PRIVILEGES"
                || *p == "ALL"
                || *p == "READ_ONLY ADMIN"
                || (super_counts && *p == "SUPER")
        })
        .cloned()
}

/// Whether SUPER lets its holder write despite read_only: on MySQL (checked only where it has no
/// super_read_only), and on MariaDB before 10.11 (10.11 took READ_ONLY ADMIN out of SUPER). A version ferry
/// cannot read counts as yes, to err on the side of a warning.
fn super_ignores_read_only(info: &crate::mysql::conn::ServerInfo) -> bool {
    if info.flavor != crate::mysql::conn::Flavor::MariaDb {
        return true;
    }
    let mut nums = info
        .version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().ok());
    match (nums.next().flatten(), nums.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < (10, 11),
        _ => true,
    }
}

/// The roles a SHOW GRANTS line grants (`` GRANT `r1`, `r2` TO `u`@`%` ``; MySQL names them `` `r`@`%` ``), as
/// the server quoted them; empty for privilege lines.
fn roles_granted(line: &str) -> Vec<String> {
    let Some(rest) = line.strip_prefix("GRANT ") else {
        return Vec::new();
    };
    let Some((what, _)) = rest.split_once(" TO ") else {
        return Vec::new();
    };
    let mut roles = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in what.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => {
                roles.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(c),
        }
    }
    roles.push(cur.trim().to_string());
    // A role is a quoted name (with a quoted host on MySQL); a privilege list is not.
    if roles.iter().all(|r| r.starts_with('`') && r.ends_with('`')) {
        roles
    } else {
        Vec::new()
    }
}

/// `'user'@'host'` (information_schema's GRANTEE) as (user, host).
fn parse_grantee(g: &str) -> Option<(String, String)> {
    let (user, host) = g.rsplit_once("'@'")?;
    let user = user.strip_prefix('\'')?;
    let host = host.strip_suffix('\'')?;
    Some((user.replace("''", "'"), host.replace("''", "'")))
}

/// The host of a processlist HOST (`10.0.0.5:51234`, `localhost`): without the client port.
fn client_host(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Whether a client host matches an account's host pattern (`%`, `10.0.%`, `localhost`, case-insensitive); a
/// netmask pattern matches, to err on the side of a warning.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern.contains('/') {
        return true;
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let h: Vec<char> = host.to_lowercase().chars().collect();
    // Wildcard match with backtracking to the last `%`.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < h.len() {
        if i < p.len() && (p[i] == '_' || p[i] == h[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '%' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '%')
}

/// The write privileges REVOKE takes from ferry's account on each migrated database (SELECT stays, for the
/// verifier); MariaDB adds DELETE HISTORY.
const WRITE_PRIVILEGES: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "CREATE VIEW",
    "TRIGGER",
    "EVENT",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "LOCK TABLES",
    "CREATE TEMPORARY TABLES",
];

/// The privileges of one SHOW GRANTS line granted `on` (`*.*`, `` `shop`.* ``), uppercase; empty for other lines.
fn privileges_on(grant: &str, on: &str) -> Vec<String> {
    let u = grant.to_ascii_uppercase();
    let Some(rest) = u.strip_prefix("GRANT ") else {
        return Vec::new();
    };
    let Some((privs, after)) = rest.split_once(" ON ") else {
        return Vec::new();
    };
    if !after.starts_with(&format!("{} ", on.to_ascii_uppercase())) {
        return Vec::new();
    }
    // MySQL 8 lists dynamic privileges with bare commas (`BACKUP_ADMIN,BINLOG_ADMIN`).
    privs.split(',').map(|p| p.trim().to_string()).collect()
}

/// Whether a privilege list lets its holder write.
fn writes(privs: &[String]) -> bool {
    privs.iter().any(|p| {
        p == "ALL PRIVILEGES" || p == "DELETE HISTORY" || WRITE_PRIVILEGES.contains(&p.as_str())
    })
}

async fn revoke_writes(
    cfg: &TaskConfig,
    destination: &Server,
    dst: &mut Conn,
    report: &mut CutoverReport,
) -> Result<()> {
    let refuse = |what: String| Error::definite(&codes::CUT_REVOKE, what);
    let grants: Vec<String> = dst.query("SHOW GRANTS").await.ctx("destination grants")?;
    let global_write = grants.iter().any(|g| writes(&privileges_on(g, "*.*")));
    if global_write {
        return Err(refuse(
            "ferry's destination account writes through a global grant (ON *.*), which a per-database REVOKE cannot take away".into(),
        ));
    }
    let names = NameMap::new(cfg);
    let schema_dbs: Vec<String> = {
        let mut v: Vec<String> = cfg
            .objects
            .databases
            .iter()
            .map(String::as_str)
            .chain(
                cfg.objects
                    .tables
                    .iter()
                    .filter_map(|t| t.split_once('.').map(|(d, _)| d)),
            )
            .filter(|d| !crate::config::is_pattern(d))
            .map(|d| names.db(d).to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut privileges = WRITE_PRIVILEGES.join(", ");
    if destination.info.flavor == crate::mysql::conn::Flavor::MariaDb {
        privileges.push_str(", DELETE HISTORY");
    }
    for db in &schema_dbs {
        dst.query_drop(format!(
            "REVOKE {privileges} ON {}.* FROM CURRENT_USER()",
            ident(db)
        ))
        .await
        .map_err(|e| refuse(format!("REVOKE on {db}: {}", Error::from(e))))?;
    }
    let after: Vec<String> = dst.query("SHOW GRANTS").await.ctx("destination grants")?;
    for db in &schema_dbs {
        let on = format!("{}.*", ident(db));
        let left = after.iter().any(|g| writes(&privileges_on(g, &on)));
        if left {
            return Err(refuse(format!(
                "write privileges on {db} are still granted after REVOKE: {}",
                after.join("; ")
            )));
        }
        report.steps.push(format!(
            "revoked ferry's write privileges on {db} (checked with SHOW GRANTS)"
        ));
    }
    Ok(())
}

/// A refusal before anything was changed: rolled back, with FERRY-CUT-003.
fn refuse(report: &mut CutoverReport, why: String) -> Result<()> {
    report.outcome = "rolled_back".into();
    report.code = Some(codes::CUT_REFUSED.id.to_string());
    report.reason = Some(why);
    report.steps.push("nothing changed".into());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_lines_are_read_per_target() {
        let g = "GRANT SELECT, REFERENCES, EXECUTE, SHOW VIEW, DELETE HISTORY ON `shop`.* TO `ferry_dst`@`%` WITH GRANT OPTION";
        assert!(writes(&privileges_on(g, "`shop`.*")));
        assert!(privileges_on(g, "*.*").is_empty());
        let g = "GRANT SELECT, SHOW VIEW ON `shop`.* TO `ferry_dst`@`%`";
        assert!(!writes(&privileges_on(g, "`shop`.*")));
        let g = "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION";
        assert!(writes(&privileges_on(g, "*.*")));
        assert!(!writes(&privileges_on(
            "GRANT USAGE ON *.* TO `u`@`%`",
            "*.*"
        )));
    }

    #[test]
    fn privileges_that_read_only_does_not_stop_are_found_in_grant_lines() {
        let on = |g: &str| privileges_on(g, "*.*");
        let g = "GRANT INSERT, READ_ONLY ADMIN ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*7B9E'";
        assert_eq!(
            read_only_bypass(&on(g), false).as_deref(),
            Some("READ_ONLY ADMIN")
        );
        let g = "GRANT INSERT, SUPER ON *.* TO `su`@`%`";
        assert_eq!(
            read_only_bypass(&on(g), false),
            None,
            "MariaDB 10.11: SUPER is stopped"
        );
        assert_eq!(read_only_bypass(&on(g), true).as_deref(), Some("SUPER"));
        let g = "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION";
        assert_eq!(
            read_only_bypass(&on(g), false).as_deref(),
            Some("ALL PRIVILEGES")
        );
        let g = "GRANT ALL PRIVILEGES ON `shop`.* TO `app`@`%`";
        assert_eq!(
            read_only_bypass(&on(g), true),
            None,
            "per database: stopped"
        );
        // MySQL 8 lists dynamic privileges with bare commas.
        let g = "GRANT BACKUP_ADMIN,SUPER,SYSTEM_VARIABLES_ADMIN ON *.* TO `dba`@`%`";
        assert_eq!(read_only_bypass(&on(g), true).as_deref(), Some("SUPER"));
    }

    #[test]
    fn role_grants_are_told_from_privilege_grants() {
        assert_eq!(roles_granted("GRANT `r1` TO `pl`@`%`"), ["`r1`"]);
        assert_eq!(
            roles_granted("GRANT `r1`@`%`,`r,2`@`%` TO `u`@`%`"),
            ["`r1`@`%`", "`r,2`@`%`"]
        );
        assert!(roles_granted("GRANT INSERT ON `t`.* TO `pl`@`%`").is_empty());
        assert!(roles_granted("SET DEFAULT ROLE `r1` FOR `pl`@`%`").is_empty());
    }

    #[test]
    fn sessions_are_matched_to_accounts_by_host_pattern() {
        assert_eq!(
            parse_grantee("'app_admin'@'%'"),
            Some(("app_admin".into(), "%".into()))
        );
        assert_eq!(
            parse_grantee("'o''neil'@'10.0.%'"),
            Some(("o'neil".into(), "10.0.%".into()))
        );
        assert_eq!(client_host("127.0.0.1:46744"), "127.0.0.1");
        assert_eq!(client_host("localhost"), "localhost");
        assert_eq!(client_host("::1:5000"), "::1");
        assert!(host_matches("%", "127.0.0.1"));
        assert!(host_matches("127.0.0.%", "127.0.0.1"));
        assert!(host_matches("10._.0.1", "10.5.0.1"));
        assert!(host_matches("LOCALHOST", "localhost"));
        assert!(!host_matches("localhost", "127.0.0.1"));
        assert!(!host_matches("10.0.%", "10.1.0.1"));
        assert!(host_matches("%.example.org", "db.example.org"));
        assert!(
            host_matches("10.0.0.0/255.0.0.0", "10.1.2.3"),
            "netmasks err towards a warning"
        );
    }

    #[test]
    fn super_lets_its_holder_write_on_mariadb_before_10_11_only() {
        let info = |v: &str| crate::mysql::conn::ServerInfo::from_version(v);
        assert!(!super_ignores_read_only(&info(
            "10.11.18-MariaDB-0+deb12u1-log"
        )));
        assert!(!super_ignores_read_only(&info("11.4.2-MariaDB")));
        assert!(super_ignores_read_only(&info("10.6.19-MariaDB")));
        assert!(super_ignores_read_only(&info("5.7.44-log")));
        assert!(super_ignores_read_only(&info("MariaDB")));
    }

    #[test]
    fn a_commit_is_seen_by_gtid_and_a_rotation_is_not_one() {
        let p = |file: &str, pos: u64, gtid: &str| Position::MariaDb {
            file: file.into(),
            pos,
            gtid_list: gtid.into(),
        };
        assert!(!written_since(
            &p("b.000001", 400, "0-1-9"),
            &p("b.000002", 4, "0-1-9")
        ));
        assert!(written_since(
            &p("b.000001", 400, "0-1-9"),
            &p("b.000001", 700, "0-1-10")
        ));
        let m = |pos: u64| Position::MySql {
            file: "b.000001".into(),
            pos,
            gtid_set: String::new(),
        };
        assert!(written_since(&m(400), &m(700)));
        assert!(!written_since(&m(400), &m(400)));
    }

    #[test]
    fn the_warning_names_accounts_and_sessions() {
        let mut u = Unstopped::default();
        assert_eq!(u.detail(), None);
        u.writers.insert(
            "app_admin@%".into(),
            ("READ_ONLY ADMIN".into(), vec![12, 15]),
        );
        u.unreadable.insert("bob".into(), (1..=25).collect());
        let d = u.detail().expect("a warning");
        assert!(
            d.contains("app_admin@% (READ_ONLY ADMIN; session 12, 15)"),
            "{d}"
        );
        assert!(d.contains("bob (session 1, 2,"), "{d}");
        assert!(d.contains("and 5 more"), "{d}");
        assert_eq!(u.sessions(), 27);
    }
}
