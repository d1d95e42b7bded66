//! The loopback HTTP admin endpoint of a `ferry run` process: status JSON, Prometheus metrics, pause / resume /
//! drain / stop, and throttle changes while the task runs.

use crate::cdc::sync::Control;
use crate::config::TaskConfig;
use crate::throttle::{Rates, Throttle};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

/// What the endpoint steers in the running task.
#[derive(Debug)]
pub struct Live {
    pub control: watch::Sender<Control>,
    pub full: Arc<Throttle>,
    pub incremental: Arc<Throttle>,
}

impl Live {
    pub fn new(cfg: &TaskConfig, first: Control) -> (Arc<Live>, watch::Receiver<Control>) {
        let (tx, rx) = watch::channel(first);
        (
            Arc::new(Live {
                control: tx,
                full: Arc::new(Throttle::new(cfg.full.rates())),
                incremental: Arc::new(Throttle::new(cfg.incremental.rates())),
            }),
            rx,
        )
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({
            "control": format!("{:?}", *self.control.borrow()).to_ascii_lowercase(),
            "throttle": { "full": self.full.rates(), "incremental": self.incremental.rates() },
        })
    }
}

/// Requests handled at once, at most: the endpoint is for an operator and a scraper, not a crowd.
const WORKERS: usize = 2;

/// Serves the endpoint on `listen` (loopback) from its own threads until the process ends; returns the address
/// it bound (port 0 picks a free one).
pub fn serve(
    listen: &str,
    cfg: TaskConfig,
    live: Arc<Live>,
    rt: tokio::runtime::Handle,
) -> crate::Result<SocketAddr> {
    let server = tiny_http::Server::http(listen).map_err(|e| {
        crate::Error::definite(
            &crate::codes::ADMIN_UNAVAILABLE,
            format!("admin endpoint on {listen}: {e}"),
        )
    })?;
    let addr = server.server_addr().to_ip().ok_or_else(|| {
        crate::Error::definite(
            &crate::codes::ADMIN_UNAVAILABLE,
            "admin endpoint: no IP address",
        )
    })?;
    let server = Arc::new(server);
    for _ in 0..WORKERS {
        let (server, cfg, live, rt) = (server.clone(), cfg.clone(), live.clone(), rt.clone());
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let (status, body, kind) = handle(&req, &cfg, &live, &rt);
                let mut response = tiny_http::Response::from_string(body).with_status_code(status);
                if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
                {
                    response = response.with_header(h);
                }
                let _ = req.respond(response);
            }
        });
    }
    Ok(addr)
}

fn handle(
    req: &tiny_http::Request,
    cfg: &TaskConfig,
    live: &Live,
    rt: &tokio::runtime::Handle,
) -> (u16, String, &'static str) {
    const JSON: &str = "application/json";
    let (path, query) = req.url().split_once('?').unwrap_or((req.url(), ""));
    let post = *req.method() == tiny_http::Method::Post;
    match (path, post) {
        ("/status", false) => {
            let status = rt.block_on(crate::status::read(cfg));
            let body = serde_json::json!({
                "live": live.state(),
                "status": match status {
                    Ok(s) => serde_json::to_value(&s).unwrap_or_default(),
                    Err(e) => serde_json::json!({ "error": e.to_string() }),
                },
            });
            (200, body.to_string(), JSON)
        }
        ("/metrics", false) => (200, metrics(cfg, live, rt), "text/plain; version=0.0.4"),
        ("/pause", true) => {
            record_paused(cfg, rt, true);
            steer(live, Control::Pause)
        }
        ("/resume", true) => {
            record_paused(cfg, rt, false);
            steer(live, Control::Run)
        }
        ("/drain", true) => steer(live, Control::Drain),
        ("/stop", true) => steer(live, Control::Stop),
        ("/throttle", true) => match throttle(live, query) {
            Ok(()) => (200, live.state().to_string(), JSON),
            Err(e) => (400, serde_json::json!({ "error": e }).to_string(), JSON),
        },
        _ => (
            404,
            serde_json::json!({ "error": "GET /status, /metrics; POST /pause, /resume, /drain, /stop, /throttle?phase=full|incremental&rows_per_s_max=..&mb_per_s_max=..&source_qps_max=.." }).to_string(),
            JSON,
        ),
    }
}

/// Records the pause in the metadata for `ferry status` (best effort: the pause itself is the control channel's).
fn record_paused(cfg: &TaskConfig, rt: &tokio::runtime::Handle, paused: bool) {
    let done = rt.block_on(async {
        let destination =
            crate::mysql::conn::Server::connect(&cfg.destination, "destination").await?;
        let pool = destination.pool(crate::mysql::conn::Role::Write, 1);
        let r = match pool.get_conn().await {
            Ok(mut c) => {
                crate::meta::Meta::new(&cfg.metadata.schema, &cfg.task.name)
                    .set_paused(&mut c, paused)
                    .await
            }
            Err(e) => Err(e.into()),
        };
        let _ = pool.disconnect().await;
        r
    });
    if let Err(e) = done {
        tracing::warn!(error = %e, "admin: could not record the pause in the metadata");
    }
}

fn steer(live: &Live, c: Control) -> (u16, String, &'static str) {
    let _ = live.control.send(c);
    (200, live.state().to_string(), "application/json")
}

/// `phase=full|incremental` and any of `source_qps_max`, `rows_per_s_max`, `mb_per_s_max` (others keep their rate).
fn throttle(live: &Live, query: &str) -> Result<(), String> {
    let mut phase = None;
    let mut changes: Vec<(&str, u64)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or(format!("`{pair}`: key=value"))?;
        match k {
            "phase" => phase = Some(v),
            "source_qps_max" | "rows_per_s_max" | "mb_per_s_max" => {
                let n = v
                    .parse::<u64>()
                    .map_err(|_| format!("{k}={v}: a whole number (0 = unlimited)"))?;
                changes.push((k, n));
            }
            other => return Err(format!("unknown key `{other}`")),
        }
    }
    let t = match phase {
        Some("full") => &live.full,
        Some("incremental") => &live.incremental,
        _ => return Err("phase=full or phase=incremental".into()),
    };
    let mut r: Rates = t.rates();
    for (k, n) in changes {
        match k {
            "source_qps_max" if phase == Some("full") => r.queries_per_s = n,
            "source_qps_max" => return Err("source_qps_max is a full-copy throttle".into()),
            "rows_per_s_max" => r.rows_per_s = n,
            _ => r.mb_per_s = n,
        }
    }
    t.set(r);
    Ok(())
}

fn metrics(cfg: &TaskConfig, live: &Live, rt: &tokio::runtime::Handle) -> String {
    let task = cfg.task.name.replace(['"', '\\', '\n'], "_");
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, labels: &str, v: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{task=\"{task}\"{labels}}} {v}\n"
        ));
    };
    gauge("ferry_up", "The ferry run process answers.", "", 1.0);
    let paused = matches!(*live.control.borrow(), Control::Pause);
    gauge(
        "ferry_paused",
        "1 while paused through the admin endpoint.",
        "",
        if paused { 1.0 } else { 0.0 },
    );
    for (phase, r) in [
        ("full", live.full.rates()),
        ("incremental", live.incremental.rates()),
    ] {
        let l = format!(",phase=\"{phase}\"");
        gauge(
            "ferry_throttle_rows_per_second",
            "Configured rows/s limit (0 = unlimited).",
            &l,
            r.rows_per_s as f64,
        );
        gauge(
            "ferry_throttle_mib_per_second",
            "Configured MiB/s limit (0 = unlimited).",
            &l,
            r.mb_per_s as f64,
        );
    }
    gauge(
        "ferry_throttle_source_queries_per_second",
        "Configured full-copy queries/s limit (0 = unlimited).",
        "",
        live.full.rates().queries_per_s as f64,
    );
    if let Ok(s) = rt.block_on(crate::status::read(cfg)) {
        gauge(
            "ferry_phase_info",
            "The task's phase (label).",
            &format!(",phase=\"{}\"", s.phase.as_str()),
            1.0,
        );
        let copied: u64 = s.tables.iter().map(|t| t.rows_copied).sum();
        gauge(
            "ferry_rows_copied",
            "Rows the full copy committed.",
            "",
            copied as f64,
        );
        if let Some(i) = &s.incremental {
            gauge(
                "ferry_sync_transactions",
                "Source transactions applied.",
                "",
                i.transactions as f64,
            );
            gauge("ferry_sync_rows", "Row events applied.", "", i.rows as f64);
            if let Some(l) = i.lag_s {
                gauge(
                    "ferry_lag_seconds",
                    "Seconds the destination is behind the source.",
                    "",
                    l,
                );
            }
        }
    }
    out
}

/// For `ferry pause|resume|drain|stop|throttle`: finds the task's endpoint in the metadata and sends `path`
/// (`/pause`, `/throttle?...`) to it; the answer is the live state as JSON.
pub async fn call(cfg: &TaskConfig, path: &str) -> crate::Result<serde_json::Value> {
    use crate::error::ResultExt;
    let unavailable = |what: String| crate::Error::definite(&crate::codes::ADMIN_UNAVAILABLE, what);
    let destination = crate::mysql::conn::Server::connect(&cfg.destination, "destination").await?;
    let pool = destination.pool(crate::mysql::conn::Role::Introspect, 1);
    let addr = {
        let mut c = pool.get_conn().await.ctx("destination")?;
        let meta = crate::meta::Meta::new(&cfg.metadata.schema, &cfg.task.name);
        meta.admin_addr(&mut c).await
    };
    let _ = pool.disconnect().await;
    let Some(addr) = addr? else {
        return Err(unavailable(format!(
            "task `{}` has no recorded admin endpoint: it never ran with one on this destination",
            cfg.task.name
        )));
    };
    let url = format!("http://{addr}{path}");
    let task = cfg.task.name.clone();
    let answer = tokio::task::spawn_blocking(move || {
        match ureq::post(&url)
            .timeout(std::time::Duration::from_secs(10))
            .call()
        {
            Ok(r) => r
                .into_string()
                .map_err(|e| format!("reading the answer from {addr}: {e}")),
            // It answered, and refused the request: say what it said.
            Err(ureq::Error::Status(code, r)) => Err(format!(
                "the admin endpoint at {addr} refused {url} ({code}): {}",
                r.into_string().unwrap_or_default()
            )),
            Err(e) => Err(format!(
                "no ferry run of task `{task}` answers at {addr} (stopped, or another host): {e}"
            )),
        }
    })
    .await
    .map_err(|e| unavailable(format!("admin request: {e}")))?
    .map_err(unavailable)?;
    serde_json::from_str(&answer)
        .map_err(|e| unavailable(format!("admin endpoint answered {answer:?}: {e}")))
}
