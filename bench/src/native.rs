//! Native replication as an anchor: the destination replicates the source from a position with N parallel SQL
//! threads, is waited for until it executed up to a position, and is then stopped and made a plain server again.

use crate::setup;
use ferry_engine::error::{Result, ResultExt};
use ferry_sim::Instance;
use mysql_async::prelude::Queryable;
use std::time::{Duration, Instant};

/// A binlog position with the GTID list at it.
#[derive(Debug, Clone)]
pub struct At {
    pub file: String,
    pub pos: u64,
    pub gtid: String,
}

/// The source's current binlog position.
pub async fn position(server: &Instance) -> Result<At> {
    let mut c = server.conn().await?;
    let row: Option<mysql_async::Row> =
        c.query_first("SHOW MASTER STATUS").await.ctx("position")?;
    let row = row.ok_or_else(|| setup("SHOW MASTER STATUS: the source writes no binlog"))?;
    let file: String = row
        .get(0)
        .ok_or_else(|| setup("SHOW MASTER STATUS: no file"))?;
    let pos: u64 = row
        .get(1)
        .ok_or_else(|| setup("SHOW MASTER STATUS: no position"))?;
    let gtid: Option<String> = c
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .await
        .ctx("position")?;
    c.disconnect().await.ctx("position")?;
    Ok(At {
        file,
        pos,
        gtid: gtid.unwrap_or_default(),
    })
}

/// CHANGE MASTER TO `from` with `threads` parallel SQL threads (0: MariaDB's single SQL thread), START SLAVE.
pub async fn start(replica: &Instance, source: &Instance, from: &At, threads: u32) -> Result<()> {
    let ep = source.endpoint();
    let mut c = replica.conn().await?;
    for sql in [
        "STOP SLAVE".to_string(),
        "RESET SLAVE ALL".to_string(),
        format!("SET GLOBAL slave_parallel_threads = {threads}"),
        "SET GLOBAL slave_parallel_mode = 'optimistic'".to_string(),
        format!(
            "CHANGE MASTER TO MASTER_HOST = '{}', MASTER_PORT = {}, MASTER_USER = '{}', MASTER_PASSWORD = '{}', \
             MASTER_LOG_FILE = '{}', MASTER_LOG_POS = {}, MASTER_USE_GTID = no",
            ep.host,
            ep.port,
            ep.user,
            ep.password.unwrap_or_default(),
            from.file,
            from.pos
        ),
        "START SLAVE".to_string(),
    ] {
        c.query_drop(&sql).await.ctx("native replication")?;
    }
    c.disconnect().await.ctx("native replication")?;
    Ok(())
}

/// Waits until the replica's SQL thread executed up to `to` (polling every 20 ms, at most `wait_max`).
pub async fn wait_executed(replica: &Instance, to: &At, wait_max: Duration) -> Result<()> {
    let deadline = Instant::now() + wait_max;
    let mut c = replica.conn().await?;
    loop {
        let row: Option<mysql_async::Row> = c
            .query_first("SHOW SLAVE STATUS")
            .await
            .ctx("native replication")?;
        let row = row.ok_or_else(|| setup("SHOW SLAVE STATUS: not a replica"))?;
        let file: Option<String> = row.get("Relay_Master_Log_File");
        let pos: Option<u64> = row.get("Exec_Master_Log_Pos");
        for field in ["Last_SQL_Error", "Last_IO_Error"] {
            let err: Option<String> = row.get(field);
            if let Some(e) = err.filter(|e| !e.is_empty()) {
                return Err(setup(format!("native replication stopped: {e}")));
            }
        }
        if file.as_deref() == Some(to.file.as_str()) && pos.unwrap_or(0) >= to.pos {
            break;
        }
        if Instant::now() > deadline {
            return Err(setup(format!(
                "native replication did not reach {}:{} in {} s",
                to.file,
                to.pos,
                wait_max.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.disconnect().await.ctx("native replication")?;
    Ok(())
}

/// STOP SLAVE and RESET SLAVE ALL: the destination is a plain server again.
pub async fn stop(replica: &Instance) -> Result<()> {
    let mut c = replica.conn().await?;
    for sql in [
        "STOP SLAVE",
        "RESET SLAVE ALL",
        "SET GLOBAL slave_parallel_threads = 0",
    ] {
        c.query_drop(sql).await.ctx("native replication")?;
    }
    c.disconnect().await.ctx("native replication")?;
    Ok(())
}
