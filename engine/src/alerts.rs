//! Alerts (`[alerts]`): on task failure, and when lag stays above a threshold, a JSON POST to a webhook and/or a
//! command run with the alert in its environment.

use crate::config::AlertsSection;
use serde::Serialize;
use std::time::Duration;
use tracing::warn;

/// One alert, as the webhook receives it (and the command in FERRY_ALERT_JSON).
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub task: String,
    /// `failed`, `lag`, `lag_recovered`, `resuming`.
    pub event: String,
    pub code: Option<String>,
    pub detail: String,
    pub lag_s: Option<f64>,
    /// Unix time (s) of the alert.
    pub at: u64,
}

impl Alert {
    pub fn new(
        task: &str,
        event: &str,
        code: Option<&str>,
        detail: String,
        lag_s: Option<f64>,
    ) -> Alert {
        Alert {
            task: task.to_string(),
            event: event.to_string(),
            code: code.map(str::to_string),
            detail,
            lag_s,
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }
}

/// How long one delivery may take (webhook request or command), at most.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Delivers `alert` to every configured target. Failures to deliver are logged, never fatal: an alert must not
/// stop the migration it reports on.
pub async fn send(cfg: &AlertsSection, alert: &Alert) {
    let json = match serde_json::to_string(alert) {
        Ok(j) => j,
        Err(e) => {
            warn!(error = %e, "alert: cannot encode");
            return;
        }
    };
    if !cfg.webhook.is_empty() {
        let (url, body) = (cfg.webhook.clone(), json.clone());
        let sent = tokio::task::spawn_blocking(move || {
            ureq::post(&url)
                .timeout(DELIVERY_TIMEOUT)
                .set("Content-Type", "application/json")
                .send_string(&body)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(webhook = %cfg.webhook, error = %e, "alert: webhook failed"),
            Err(e) => warn!(error = %e, "alert: webhook task failed"),
        }
    }
    if !cfg.command.is_empty() {
        let run = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&cfg.command)
            .env("FERRY_ALERT_JSON", &json)
            .env("FERRY_ALERT_EVENT", &alert.event)
            .env("FERRY_ALERT_TASK", &alert.task)
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(DELIVERY_TIMEOUT, run).await {
            Ok(Ok(s)) if s.success() => {}
            Ok(Ok(s)) => warn!(command = %cfg.command, status = %s, "alert: command failed"),
            Ok(Err(e)) => {
                warn!(command = %cfg.command, error = %e, "alert: command could not start")
            }
            Err(_) => warn!(command = %cfg.command, "alert: command timed out"),
        }
    }
}

/// Watches the task's lag while `ferry run` runs: one `lag` alert when it has stayed above `lag_s_threshold` for
/// `lag_s_for` seconds, one `lag_recovered` when it is back under. Runs until aborted.
pub async fn watch_lag(task_cfg: crate::config::TaskConfig) {
    let a = task_cfg.alerts.clone();
    if a.webhook.is_empty() && a.command.is_empty() {
        return;
    }
    let poll = Duration::from_secs(a.poll_s.max(1));
    let mut above_since: Option<std::time::Instant> = None;
    let mut alerted = false;
    loop {
        tokio::time::sleep(poll).await;
        let lag = match crate::status::read(&task_cfg).await {
            Ok(s) => s.incremental.and_then(|i| i.lag_s),
            Err(_) => None,
        };
        match lag {
            Some(l) if l > a.lag_s_threshold as f64 => {
                let since = *above_since.get_or_insert_with(std::time::Instant::now);
                if !alerted && since.elapsed() >= Duration::from_secs(a.lag_s_for) {
                    alerted = true;
                    send(
                        &a,
                        &Alert::new(
                            &task_cfg.task.name,
                            "lag",
                            None,
                            format!(
                                "lag {l:.1} s above {} s for {} s or more",
                                a.lag_s_threshold, a.lag_s_for
                            ),
                            Some(l),
                        ),
                    )
                    .await;
                }
            }
            Some(l) => {
                above_since = None;
                if alerted {
                    alerted = false;
                    send(
                        &a,
                        &Alert::new(
                            &task_cfg.task.name,
                            "lag_recovered",
                            None,
                            format!("lag {l:.1} s"),
                            Some(l),
                        ),
                    )
                    .await;
                }
            }
            None => {}
        }
    }
}
