//! Connections to a source or destination: TLS mode, session settings per role, server flavor and version.

use crate::codes;
use crate::config::{Endpoint, TlsMode};
use crate::error::{Error, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts};

/// What a session is used for; each role gets the session settings it needs on every (re)connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reading the schema: results in utf8mb4 like any client.
    Introspect,
    /// Reading rows: values arrive as stored (no charset conversion), TIMESTAMP in UTC.
    ReadRows,
    /// Writing rows and DDL: UTC, strict, FK checks off, zero dates allowed, AUTO_INCREMENT 0 kept.
    Write,
}

/// The session mode ferry writes with: strict (nothing silently truncated) but accepting every value the source holds.
pub const WRITE_SQL_MODE: &str = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION";

fn setup_statements(role: Role) -> Vec<String> {
    match role {
        Role::Introspect => vec![
            "SET SESSION time_zone = '+00:00', sql_mode = '', character_set_results = utf8mb4".into(),
        ],
        Role::ReadRows => vec![
            "SET SESSION time_zone = '+00:00', sql_mode = '', character_set_results = NULL".into(),
        ],
        Role::Write => vec![format!(
            "SET SESSION time_zone = '+00:00', sql_mode = '{WRITE_SQL_MODE}', foreign_key_checks = 0, \
             character_set_results = NULL"
        )],
    }
}

/// The longest wait for a session from a pool.
const CHECKOUT_S: std::time::Duration = std::time::Duration::from_secs(60);

/// MySQL or MariaDB: they differ in binlog protocol, system tables and some SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Flavor {
    MySql,
    MariaDb,
}

/// What a server said about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ServerInfo {
    pub version: String,
    pub flavor: Flavor,
}

impl ServerInfo {
    pub fn from_version(version: &str) -> ServerInfo {
        let flavor = if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        ServerInfo {
            version: version.to_string(),
            flavor,
        }
    }
}

/// A connected endpoint: resolved TLS choice, pools per role on demand.
#[derive(Clone)]
pub struct Server {
    endpoint: Endpoint,
    use_tls: bool,
    pub info: ServerInfo,
    label: &'static str,
}

impl Server {
    /// Connects once to check reachability, credentials and TLS, and reads the server version.
    /// `label` is "source" or "destination", for messages.
    pub async fn connect(endpoint: &Endpoint, label: &'static str) -> Result<Server> {
        let (use_tls, mut conn) = match endpoint.tls {
            TlsMode::Disabled => (false, open(endpoint, false).await.at(endpoint, label)?),
            TlsMode::Preferred => match open(endpoint, true).await {
                Ok(c) => (true, c),
                Err(OpenError::NoTlsOnServer) => {
                    (false, open(endpoint, false).await.at(endpoint, label)?)
                }
                Err(e) => return Err(e.into_error(endpoint, label)),
            },
            _ => (true, open(endpoint, true).await.at(endpoint, label)?),
        };
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| Error::from(e).context(format!("{label} {}", endpoint.address())))?;
        let _ = conn.disconnect().await;
        Ok(Server {
            endpoint: endpoint.clone(),
            use_tls,
            info: ServerInfo::from_version(&version.unwrap_or_default()),
            label,
        })
    }

    pub fn label(&self) -> &'static str {
        self.label
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// One connection outside any pool, for a session that ends with the connection (the binlog stream).
    pub async fn dedicated(&self) -> Result<mysql_async::Conn> {
        mysql_async::Conn::new(opts_for(&self.endpoint, self.use_tls))
            .await
            .map_err(|e| {
                Error::from(e).context(format!("{} {}", self.label, self.endpoint.address()))
            })
    }

    /// A session from `pool`, waiting at most `CHECKOUT_S` (a pool that never hands one out is a defect, not a
    /// reason to hang).
    pub async fn checkout(pool: &Pool, what: &str) -> Result<mysql_async::Conn> {
        match tokio::time::timeout(CHECKOUT_S, pool.get_conn()).await {
            Ok(c) => c.map_err(|e| Error::from(e).context(what.to_string())),
            Err(_) => Err(Error::transient(format!(
                "{what}: no pooled session within {} s",
                CHECKOUT_S.as_secs()
            ))),
        }
    }

    /// A pool of at most `max_conns` sessions set up for `role`.
    pub fn pool(&self, role: Role, max_conns: usize) -> Pool {
        self.pool_with(role, max_conns, true, &[])
    }

    /// A pool whose sessions are not reset when they return to it: for readers that issue many short queries and
    /// leave no session state behind but their own settings (the reset costs a round trip, the role's setup
    /// statements again, and the prepared statements; the verifier measured a third of its time in them).
    /// `extra` statements run once per session after the role's own.
    pub fn pool_kept(&self, role: Role, max_conns: usize, extra: &[&str]) -> Pool {
        self.pool_with(role, max_conns, false, extra)
    }

    fn pool_with(&self, role: Role, max_conns: usize, reset: bool, extra: &[&str]) -> Pool {
        let constraints = PoolConstraints::new(0, max_conns.max(1)).unwrap_or_default();
        let mut setup = setup_statements(role);
        setup.extend(extra.iter().map(|s| s.to_string()));
        let mut opts = opts_for(&self.endpoint, self.use_tls).setup(setup);
        if role == Role::Write {
            // The copy's LOAD DATA LOCAL reads buffers staged in memory; no file is ever served.
            opts = opts.local_infile_handler(Some(crate::copy::load::handler));
        }
        let opts = opts
            // Writers check the rows each statement matched (an UPDATE that changes nothing still matched).
            .client_found_rows(role == Role::Write)
            .pool_opts(
                PoolOpts::default()
                    .with_constraints(constraints)
                    .with_reset_connection(reset),
            );
        Pool::new(opts)
    }
}

fn opts_for(ep: &Endpoint, tls: bool) -> OptsBuilder {
    let mut b = OptsBuilder::default()
        .ip_or_hostname(ep.host.clone())
        .tcp_port(ep.port)
        .user(Some(ep.user.clone()))
        .pass(ep.password.clone())
        .prefer_socket(false)
        .stmt_cache_size(64);
    if tls {
        let ssl = match ep.tls {
            TlsMode::VerifyIdentity => SslOpts::default(),
            TlsMode::VerifyCa => SslOpts::default().with_danger_skip_domain_validation(true),
            _ => SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        };
        b = b.ssl_opts(ssl);
    }
    b
}

enum OpenError {
    NoTlsOnServer,
    Other(mysql_async::Error),
}

impl OpenError {
    fn into_error(self, ep: &Endpoint, label: &str) -> Error {
        let at = format!("{label} {} as {}", ep.address(), ep.user);
        match self {
            OpenError::NoTlsOnServer => Error::definite(
                &codes::CON_TLS,
                format!("{at}: tls = {:?} but the server does not offer TLS", ep.tls),
            ),
            OpenError::Other(mysql_async::Error::Io(io)) => {
                let text = io.to_string();
                if matches!(io, mysql_async::IoError::Tls(_)) {
                    Error::definite(&codes::CON_TLS, format!("{at}: {text}"))
                } else {
                    Error::definite(&codes::CON_UNREACHABLE, format!("{at}: {text}"))
                }
            }
            OpenError::Other(e) => Error::from(e).context(at),
        }
    }
}

async fn open(ep: &Endpoint, tls: bool) -> Result<mysql_async::Conn, OpenError> {
    let fut = mysql_async::Conn::new(opts_for(ep, tls));
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Err(_) => Err(OpenError::Other(mysql_async::Error::Io(
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            )
            .into(),
        ))),
        Ok(Ok(c)) => Ok(c),
        Ok(Err(mysql_async::Error::Driver(
            mysql_async::DriverError::NoClientSslFlagFromServer,
        ))) => Err(OpenError::NoTlsOnServer),
        Ok(Err(e)) => Err(OpenError::Other(e)),
    }
}

/// How long one connection attempt may take before the server counts as unreachable.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wraps `open`'s error with the endpoint for `connect`.
trait OpenResultExt<T> {
    fn at(self, ep: &Endpoint, label: &str) -> Result<T>;
}

impl<T> OpenResultExt<T> for std::result::Result<T, OpenError> {
    fn at(self, ep: &Endpoint, label: &str) -> Result<T> {
        self.map_err(|e| e.into_error(ep, label))
    }
}
