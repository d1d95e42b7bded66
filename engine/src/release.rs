//! `ferry release`: removes a task's metadata from the destination on request, fencing off any process still
//! running it, and its heartbeat row from the source.

use crate::codes;
use crate::config::TaskConfig;
use crate::error::{Error, Result, ResultExt};
use crate::meta::Meta;
use crate::mysql::conn::{Role, Server};
use crate::mysql::quote::{ident, string};
use mysql_async::prelude::Queryable;

/// Releases the task. Only a task that was cut over, unless `force` (a task abandoned mid-way: its destination
/// keeps what was copied, and the name cannot run again).
pub async fn run(cfg: &TaskConfig, force: bool) -> Result<String> {
    let destination = Server::connect(&cfg.destination, "destination").await?;
    let pool = destination.pool(Role::Write, 1);
    let mut conn = pool.get_conn().await.ctx("destination")?;
    let mut meta = Meta::new(&cfg.metadata.schema, &cfg.task.name);
    let row = meta.load(&mut conn).await?;
    let state = row.state();
    let result = if !row.exists {
        Err(Error::definite(
            &codes::CFG_BAD_VALUE,
            format!(
                "task `{}` has no metadata on this destination",
                cfg.task.name
            ),
        ))
    } else if state == "released" {
        Ok(format!("task `{}` was already released", cfg.task.name))
    } else if state != "cut_over" && !force {
        Err(Error::definite(
            &codes::CUT_REFUSED,
            format!(
                "task `{}` is {state}, not cut over: releasing it abandons the migration (pass --force to do so)",
                cfg.task.name
            ),
        ))
    } else {
        meta.release(&mut conn).await?;
        Ok(format!("task `{}` released (was {state})", cfg.task.name))
    };
    drop(conn);
    let _ = pool.disconnect().await;
    let message = result?;
    // The heartbeat row sync wrote on the source (best effort: the source may be gone by now).
    if let Ok(source) = Server::connect(&cfg.source, "source").await {
        let pool = source.pool(Role::Write, 1);
        if let Ok(mut c) = pool.get_conn().await {
            let _ = c
                .query_drop(format!(
                    "DELETE FROM {}.{} WHERE task = {}",
                    ident(&cfg.metadata.schema),
                    ident("heartbeat"),
                    string(&cfg.task.name)
                ))
                .await;
        }
        let _ = pool.disconnect().await;
    }
    Ok(message)
}
