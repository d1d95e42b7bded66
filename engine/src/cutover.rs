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
    pub seconds: f64,
}

/// How long the source's binlog must stand still to count as stopped.
const QUIET_S: u64 = 2;
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
    let mut read_only_set = false;
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
            if read_only_set {
                undone = src
                    .query_drop("SET GLOBAL read_only = OFF")
                    .await
                    .ctx("source: undoing read_only");
                if undone.is_ok() {
                    report
                        .steps
                        .push("rollback: source read_only set back to OFF".into());
                }
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
    read_only_set: &mut bool,
    report: &mut CutoverReport,
) -> Result<()> {
    // 4. No more writes on the source: set read_only, or wait until the operator's stop shows as a binlog that
    //    stands still.
    if cfg.cutover.set_source_read_only {
        src.query_drop("SET GLOBAL read_only = ON")
            .await
            .ctx("source: setting read_only")?;
        *read_only_set = true;
        report.steps.push("source read_only = ON".into());
    } else {
        wait_quiet(src, source, cfg.cutover.quiet_wait_s).await?;
        report.steps.push(format!(
            "source binlog still for {QUIET_S} s (writes stopped)"
        ));
    }
    let final_position = Position::current(src, source.info.flavor).await?;
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

/// Waits until the source's binlog position stays the same for `QUIET_S`, at most `wait_s`.
async fn wait_quiet(src: &mut Conn, source: &Server, wait_s: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(wait_s);
    let mut last = Position::current(src, source.info.flavor).await?;
    let mut still_since = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = Position::current(src, source.info.flavor).await?;
        if now.to_string() != last.to_string() {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= Duration::from_secs(QUIET_S) {
            return Ok(());
        }
    }
    Err(Error::definite(
        &codes::CUT_REFUSED,
        format!(
            "the source was still being written after cutover.quiet_wait_s = {wait_s} s (last at {last}); stop the \
             application's writes, or set cutover.set_source_read_only = true"
        ),
    ))
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
    privs.split(", ").map(|p| p.trim().to_string()).collect()
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
}
