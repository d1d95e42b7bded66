//! A task's status read from the destination's metadata: phase, failure, per-table copy progress, and for
//! incremental the positions, lag, apply rates, per-table sync state and warnings.

use crate::cdc::position::Position;
use crate::config::TaskConfig;
use crate::error::{Result, ResultExt};
use crate::meta::{Meta, Phase, SyncedTable, TableProgress, Warning};
use crate::mysql::conn::{Role, Server};
use mysql_async::prelude::Queryable;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub task: String,
    pub phase: Phase,
    /// What an operator sees: released, cut_over, cutting_over, failed, paused, prechecked, or the phase.
    pub state: &'static str,
    pub failed_code: Option<String>,
    pub failed_detail: Option<String>,
    pub tables: Vec<TableProgress>,
    /// Present once the task recorded a binlog start position.
    pub incremental: Option<IncrementalStatus>,
    /// The newest warnings (coded), oldest first.
    pub warnings: Vec<Warning>,
}

/// Where binlog sync stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IncrementalStatus {
    /// `catch_up` (idempotent, before the end-of-copy position P1) or `exact`.
    pub mode: &'static str,
    pub p0: Option<Position>,
    pub p1: Option<Position>,
    /// The end of the last source transaction applied on the destination.
    pub checkpoint: Option<Position>,
    pub checkpoint_at: Option<String>,
    /// The source's current position; None when the source could not be asked.
    pub source_position: Option<Position>,
    /// Seconds between the source committing the checkpointed transaction and now (0 when the checkpoint is the
    /// source's current position). With the heartbeat on, an idle source still moves, so this is end to end;
    /// with it off it grows on an idle source until something is written. Server clocks are assumed in step.
    pub lag_s: Option<f64>,
    pub transactions: u64,
    pub rows: u64,
    pub transactions_per_s: f64,
    pub rows_per_s: f64,
    /// Every table sync tracks or tracked: `syncing`, `renamed`, `dropped`, `detached`.
    pub tables: Vec<SyncedTable>,
    /// Tables catch-up followed foreign key cascades into, re-copied from a source snapshot when it reaches P1.
    pub recopy: Vec<crate::meta::RecopyRow>,
}

/// Warnings shown, at most.
const WARNINGS_MAX: u32 = 50;

pub async fn read(cfg: &TaskConfig) -> Result<Status> {
    let destination = Server::connect(&cfg.destination, "destination").await?;
    let pool = destination.pool(Role::Write, 1);
    let mut conn = pool.get_conn().await.ctx("destination")?;
    let meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let row = meta.load(&mut conn).await?;
    let (tables, warnings, cdc) = if row.exists {
        (
            meta.progress(&mut conn).await?,
            meta.warnings(&mut conn, WARNINGS_MAX).await?,
            Some(meta.cdc(&mut conn).await?),
        )
    } else {
        (Vec::new(), Vec::new(), None)
    };
    let incremental = match cdc {
        Some(c) if c.p0.is_some() => {
            let now: Option<f64> = conn
                .query_first("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) AS DOUBLE)")
                .await
                .ctx("destination clock")?;
            let synced = meta.synced_tables(&mut conn).await?;
            // Metadata written by a ferry without re-copy rounds has no such table until the next run.
            let recopy = meta.recopy(&mut conn).await.unwrap_or_default();
            let source_position = source_position(cfg).await;
            let at = c.checkpoint.clone().or(c.p0.clone());
            let caught_up = match (&at, &source_position) {
                (Some(a), Some(s)) => a.cmp_in_log(s).map(|o| o.is_ge()).unwrap_or(false),
                _ => false,
            };
            let lag_s = if caught_up {
                Some(0.0)
            } else {
                match (now, c.source_ts) {
                    (Some(n), Some(ts)) if ts > 0 => Some((n - ts as f64).max(0.0)),
                    _ => None,
                }
            };
            // ignore_and_proceed stays idempotent (catch-up) for the whole task (see `cdc::apply`).
            let idempotent =
                cfg.schema.conflict_mode == crate::config::ConflictMode::IgnoreAndProceed;
            // Past P1 with a re-copy round to run (or to finish) is still catch-up (see `cdc::recopy`).
            let states: Vec<crate::cdc::recopy::Recorded> = recopy.iter().map(Into::into).collect();
            let exact = !idempotent
                && match (&at, &c.p1) {
                    (Some(a), Some(p1)) => {
                        a.cmp_in_log(p1).map(|o| o.is_ge()).unwrap_or(false)
                            && crate::cdc::recopy::step(&states, p1, a, idempotent).ok()
                                == Some(crate::cdc::recopy::Step::Nothing)
                    }
                    _ => false,
                };
            Some(IncrementalStatus {
                mode: if exact { "exact" } else { "catch_up" },
                p0: c.p0,
                p1: c.p1,
                checkpoint: c.checkpoint,
                checkpoint_at: c.checkpoint_at,
                source_position,
                lag_s,
                transactions: c.transactions,
                rows: c.rows,
                transactions_per_s: c.transactions_per_s,
                rows_per_s: c.rows_per_s,
                tables: synced,
                recopy,
            })
        }
        _ => None,
    };
    drop(conn);
    let _ = pool.disconnect().await;
    Ok(Status {
        task: cfg.task.name.clone(),
        phase: row.phase(),
        state: row.state(),
        failed_code: row.failed_code.clone(),
        failed_detail: row.failed_detail.clone(),
        tables,
        incremental,
        warnings,
    })
}

/// The source's current binlog position, if the source answers (status never fails for a source that is down).
async fn source_position(cfg: &TaskConfig) -> Option<Position> {
    let source = Server::connect(&cfg.source, "source").await.ok()?;
    let pool = source.pool(Role::Introspect, 1);
    let p = async {
        let mut c = pool.get_conn().await.ok()?;
        Position::current(&mut c, source.info.flavor).await.ok()
    }
    .await;
    let _ = pool.disconnect().await;
    p
}
