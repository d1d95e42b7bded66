//! A task's status read from the destination's metadata: phase, failure, and per-table copy progress.

use crate::config::TaskConfig;
use crate::error::{Result, ResultExt};
use crate::meta::{Meta, Phase, TableProgress};
use crate::mysql::conn::{Role, Server};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub task: String,
    pub phase: Phase,
    pub failed_code: Option<String>,
    pub failed_detail: Option<String>,
    pub tables: Vec<TableProgress>,
}

pub async fn read(cfg: &TaskConfig) -> Result<Status> {
    let destination = Server::connect(&cfg.destination, "destination").await?;
    let pool = destination.pool(Role::Write, 1);
    let mut conn = pool.get_conn().await.ctx("destination")?;
    let meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let row = meta.load(&mut conn).await?;
    let tables = if row.exists {
        meta.progress(&mut conn).await?
    } else {
        Vec::new()
    };
    drop(conn);
    let _ = pool.disconnect().await;
    Ok(Status {
        task: cfg.task.name.clone(),
        phase: row.phase(),
        failed_code: row.failed_code.clone(),
        failed_detail: row.failed_detail.clone(),
        tables,
    })
}
