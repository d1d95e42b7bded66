//! Throwaway MySQL-family servers for tests, the demo and scenarios: one interface, local-process and docker
//! providers, each with binlog ROW/FULL, a unique server_id, and stop/kill/restart/pause/resume.

use ferry_engine::codes;
use ferry_engine::config::{Endpoint, TlsMode};
use ferry_engine::error::{Error, Result};
use mysql_async::prelude::Queryable;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The root password of every throwaway server.
pub const ROOT_PASSWORD: &str = "ferry-sim-root";
/// The image the docker provider uses unless FERRY_DOCKER_IMAGE says otherwise (built by docker/build-mariadb-image.sh).
pub const DEFAULT_IMAGE: &str = "ferry/mariadb:10.11";
/// How long a server may take to accept connections.
pub const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// Which provider runs the servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Docker,
}

impl Backend {
    /// FERRY_BACKEND=docker|local|auto (auto: docker when the daemon answers and the image exists, else local).
    pub fn from_env() -> Result<Backend> {
        Backend::parse(&std::env::var("FERRY_BACKEND").unwrap_or_default())
    }

    /// `docker`, `local` or `auto` (empty is auto).
    pub fn parse(name: &str) -> Result<Backend> {
        match name {
            "local" => Ok(Backend::Local),
            "docker" => Ok(Backend::Docker),
            "" | "auto" => Ok(if docker_image_usable(&docker_image()) {
                Backend::Docker
            } else {
                Backend::Local
            }),
            other => Err(Error::definite(
                &codes::CFG_BAD_VALUE,
                format!("backend `{other}`: use docker, local or auto (FERRY_BACKEND)"),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Docker => "docker",
        }
    }
}

pub fn docker_image() -> String {
    std::env::var("FERRY_DOCKER_IMAGE").unwrap_or_else(|_| DEFAULT_IMAGE.to_string())
}

/// True when a docker daemon answers and has `image` locally.
pub fn docker_image_usable(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Options for one server.
#[derive(Debug, Clone, Default)]
pub struct InstanceOptions {
    /// Leave the server running (and its data) when the handle is dropped.
    pub keep: bool,
    /// Extra server arguments (`--sql-mode=...`).
    pub extra_args: Vec<String>,
}

static NEXT_SERVER_ID: AtomicU32 = AtomicU32::new(0);

fn next_server_id() -> u32 {
    // Unique within this process; spread by pid so two processes rarely pick the same ids.
    let base = 100 + (std::process::id() % 10_000) * 100;
    base + NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed)
}

/// The arguments every throwaway server gets.
fn server_args(server_id: u32, mariadb: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "--log-bin=mysql-bin",
        "--binlog-format=ROW",
        "--binlog-row-image=FULL",
        "--max-allowed-packet=256M",
        "--character-set-server=utf8mb4",
        "--innodb-buffer-pool-size=128M",
        "--innodb-flush-log-at-trx-commit=2",
        "--sync-binlog=0",
        "--event-scheduler=ON",
        "--skip-name-resolve",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(format!("--server-id={server_id}"));
    if mariadb {
        a.push("--binlog-row-metadata=FULL".into());
        a.push("--collation-server=utf8mb4_general_ci".into());
    }
    a
}

/// A running throwaway server.
pub struct Instance {
    pub backend: Backend,
    pub version: String,
    pub server_id: u32,
    host: String,
    port: u16,
    inner: Inner,
}

enum Inner {
    Local(LocalServer),
    Docker(Option<Box<DockerServer>>),
}

impl Instance {
    /// Starts a server with the backend FERRY_BACKEND selects.
    pub async fn start(opts: InstanceOptions) -> Result<Instance> {
        Self::start_with(Backend::from_env()?, opts).await
    }

    pub async fn start_with(backend: Backend, opts: InstanceOptions) -> Result<Instance> {
        let server_id = next_server_id();
        let mut inst = match backend {
            Backend::Local => {
                let s = LocalServer::start(server_id, &opts)?;
                Instance {
                    backend,
                    version: String::new(),
                    server_id,
                    host: "127.0.0.1".into(),
                    port: s.port,
                    inner: Inner::Local(s),
                }
            }
            Backend::Docker => {
                let s = DockerServer::start(server_id, &opts).await?;
                Instance {
                    backend,
                    version: String::new(),
                    server_id,
                    host: "127.0.0.1".into(),
                    port: s.port,
                    inner: Inner::Docker(Some(Box::new(s))),
                }
            }
        };
        inst.wait_ready().await?;
        let v: Option<String> = inst.query_first("SELECT VERSION()").await?;
        inst.version = v.unwrap_or_default();
        Ok(inst)
    }

    /// Root credentials over TCP.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint_as("root", ROOT_PASSWORD)
    }

    pub fn endpoint_as(&self, user: &str, password: &str) -> Endpoint {
        Endpoint {
            host: self.host.clone(),
            port: self.port,
            user: user.into(),
            password: Some(password.into()),
            password_env: None,
            tls: TlsMode::Disabled,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root:...@127.0.0.1:PORT`, for people.
    pub fn url(&self) -> String {
        format!("mysql://root:{ROOT_PASSWORD}@{}:{}", self.host, self.port)
    }

    fn opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some("root"))
            .pass(Some(ROOT_PASSWORD))
            .prefer_socket(false)
            .into()
    }

    /// A new root connection.
    pub async fn conn(&self) -> Result<mysql_async::Conn> {
        Ok(mysql_async::Conn::new(self.opts()).await?)
    }

    /// Runs statements (`;`-free each) as root.
    pub async fn exec(&self, sql: &str) -> Result<()> {
        let mut c = self.conn().await?;
        c.query_drop(sql)
            .await
            .map_err(|e| Error::from(e).context(format!("sim: {sql}")))?;
        let _ = c.disconnect().await;
        Ok(())
    }

    /// Runs `sql` the way an application under concurrent load does: a deadlock (1213) or lock wait timeout
    /// (1205) is retried, at most `APP_RETRIES` times, with a short growing pause. For tests that issue DDL or
    /// writes on the source while the workload runs; anything else is returned at once.
    pub async fn exec_as_app(&self, sql: &str) -> Result<()> {
        const APP_RETRIES: u32 = 5;
        let mut attempt = 0;
        loop {
            match self.exec(sql).await {
                Err(e) if attempt < APP_RETRIES && matches!(e.mysql_errno(), Some(1213 | 1205)) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    pub async fn query_first<T: mysql_async::prelude::FromRow + Send + 'static>(
        &self,
        sql: &str,
    ) -> Result<Option<T>> {
        let mut c = self.conn().await?;
        let r = c.query_first(sql).await?;
        let _ = c.disconnect().await;
        Ok(r)
    }

    pub async fn query<T: mysql_async::prelude::FromRow + Send + 'static>(
        &self,
        sql: &str,
    ) -> Result<Vec<T>> {
        let mut c = self.conn().await?;
        let r = c.query(sql).await?;
        let _ = c.disconnect().await;
        Ok(r)
    }

    /// Creates a user with exactly these grants (`SELECT ON shop.*`, `REPLICATION SLAVE ON *.*`, ...).
    pub async fn create_user(&self, user: &str, password: &str, grants: &[&str]) -> Result<()> {
        let u = format!("'{}'@'%'", user.replace('\'', "''"));
        self.exec(&format!(
            "CREATE USER {u} IDENTIFIED BY '{}'",
            password.replace('\'', "''")
        ))
        .await?;
        for g in grants {
            self.exec(&format!("GRANT {g} TO {u}")).await?;
        }
        Ok(())
    }

    /// Feeds an SQL script (plain or .gz) to the command-line client, as a DBA would load a dump.
    pub async fn load_sql_file(&self, path: &Path) -> Result<()> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::definite(&codes::SIM_SERVER, format!("{}: {e}", path.display())))?;
        let script = if path.extension().is_some_and(|e| e == "gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .map_err(|e| {
                    Error::definite(&codes::SIM_SERVER, format!("{}: {e}", path.display()))
                })?;
            out
        } else {
            bytes
        };
        self.load_sql(&script)
            .await
            .map_err(|e| e.context(path.display()))
    }

    pub async fn load_sql(&self, script: &[u8]) -> Result<()> {
        let client = find_binary(&["mariadb", "mysql"]).ok_or_else(|| {
            Error::definite(
                &codes::SIM_SERVER,
                "no mariadb or mysql command-line client on PATH",
            )
        })?;
        let mut child = Command::new(client)
            .args([
                "--protocol=TCP",
                "-h",
                &self.host,
                "-P",
                &self.port.to_string(),
                "-uroot",
                &format!("-p{ROOT_PASSWORD}"),
                "--default-character-set=utf8mb4",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::definite(&codes::SIM_SERVER, format!("client: {e}")))?;
        let mut stdin = child.stdin.take();
        let script = script.to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&script);
            }
        });
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .map_err(|e| Error::definite(&codes::SIM_SERVER, format!("client: {e}")))?
            .map_err(|e| Error::definite(&codes::SIM_SERVER, format!("client: {e}")))?;
        let _ = writer.join();
        if !out.status.success() {
            return Err(Error::definite(
                &codes::SIM_SERVER,
                format!(
                    "loading SQL failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            ));
        }
        Ok(())
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let opts = self.opts();
        loop {
            match mysql_async::Conn::new(opts.clone()).await {
                Ok(mut c) => {
                    if c.query_drop("SELECT 1").await.is_ok() {
                        let _ = c.disconnect().await;
                        return Ok(());
                    }
                }
                Err(e) => {
                    if let Some(why) = self.exited() {
                        return Err(Error::definite(
                            &codes::SIM_SERVER,
                            format!("server exited: {why}"),
                        ));
                    }
                    if Instant::now() > deadline {
                        return Err(Error::definite(
                            &codes::SIM_SERVER,
                            format!(
                                "not ready after {}s: {e}; {}",
                                READY_TIMEOUT.as_secs(),
                                self.log_tail()
                            ),
                        ));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn exited(&mut self) -> Option<String> {
        match &mut self.inner {
            Inner::Local(s) => s.exited(),
            Inner::Docker(_) => None,
        }
    }

    /// The last lines of the server's error log (local) for messages.
    pub fn log_tail(&self) -> String {
        match &self.inner {
            Inner::Local(s) => s.log_tail(),
            Inner::Docker(_) => "see `docker logs`".into(),
        }
    }

    /// Clean shutdown; the data stays for `restart`.
    pub async fn stop(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Local(s) => s.stop(),
            Inner::Docker(d) => match d {
                Some(d) => d.container.stop().await.map_err(docker_err),
                None => Ok(()),
            },
        }
    }

    /// SIGKILL: no shutdown, InnoDB recovers on restart.
    pub async fn kill(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Local(s) => s.kill(),
            Inner::Docker(d) => match d {
                Some(d) => d
                    .container
                    .stop_with_timeout(Some(0))
                    .await
                    .map_err(docker_err),
                None => Ok(()),
            },
        }
    }

    /// Starts again on the same data and port (after stop or kill).
    pub async fn restart(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Local(s) => {
                s.stop()?;
                s.spawn()?;
            }
            Inner::Docker(d) => {
                if let Some(d) = d {
                    if d.container.is_running().await.unwrap_or(false) {
                        d.container.stop().await.map_err(docker_err)?;
                    }
                    d.container.start().await.map_err(docker_err)?;
                }
            }
        }
        self.wait_ready().await
    }

    /// SIGSTOP / docker pause: the server holds its connections but answers nothing.
    pub async fn pause(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Local(s) => s.signal(libc::SIGSTOP),
            Inner::Docker(d) => match d {
                Some(d) => d.container.pause().await.map_err(docker_err),
                None => Ok(()),
            },
        }
    }

    pub async fn resume(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Local(s) => s.signal(libc::SIGCONT),
            Inner::Docker(d) => match d {
                Some(d) => d.container.unpause().await.map_err(docker_err),
                None => Ok(()),
            },
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Inner::Docker(d) = &mut self.inner {
            if let Some(d) = d.take() {
                if d.keep {
                    // Leave the container running for the user; testcontainers would remove it on drop.
                    std::mem::forget(d.container);
                } else {
                    // Removing needs the docker API; do it from a plain thread so drop works in and outside a runtime.
                    let id = d.container.id().to_string();
                    std::mem::forget(d.container);
                    let _ = Command::new("docker")
                        .args(["rm", "-f", "-v", &id])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
    }
}

fn docker_err(e: testcontainers::TestcontainersError) -> Error {
    Error::definite(&codes::SIM_SERVER, format!("docker: {e}"))
}

/// Finds the first of `names` on PATH or in the server's usual directories.
pub fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in [
        "/usr/sbin",
        "/usr/local/sbin",
        "/usr/libexec",
        "/usr/local/mysql/bin",
        "/usr/bin",
    ] {
        dirs.push(PathBuf::from(d));
    }
    for n in names {
        for d in &dirs {
            let p = d.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A server process on this machine with its own datadir copied from a cached template.
struct LocalServer {
    binary: PathBuf,
    mariadb: bool,
    root: PathBuf,
    _dir: Option<tempfile::TempDir>,
    port: u16,
    server_id: u32,
    extra_args: Vec<String>,
    keep: bool,
    child: Option<Child>,
}

impl LocalServer {
    fn start(server_id: u32, opts: &InstanceOptions) -> Result<LocalServer> {
        let binary = find_binary(&["mariadbd", "mysqld"]).ok_or_else(|| {
            Error::definite(
                &codes::SIM_SERVER,
                "no mariadbd or mysqld found (apt-get install mariadb-server)",
            )
        })?;
        let mariadb = binary.file_name().is_some_and(|n| n == "mariadbd")
            || server_version(&binary).contains("MariaDB");
        let template = template_dir(&binary, mariadb)?;
        let root = std::env::temp_dir().join("ferry-sim");
        std::fs::create_dir_all(&root).map_err(io_err)?;
        let dir = tempfile::Builder::new()
            .prefix("server-")
            .tempdir_in(&root)
            .map_err(io_err)?;
        copy_dir(&template, &dir.path().join("data")).map_err(io_err)?;
        let root = dir.path().to_path_buf();
        let mut s = LocalServer {
            binary,
            mariadb,
            // A kept server's files outlive this process.
            _dir: if opts.keep {
                let _ = dir.keep();
                None
            } else {
                Some(dir)
            },
            root,
            port: 0,
            server_id,
            extra_args: opts.extra_args.clone(),
            keep: opts.keep,
            child: None,
        };
        // A port picked free can be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            s.port = free_port()?;
            s.spawn()?;
            std::thread::sleep(Duration::from_millis(300));
            match s.exited() {
                None => return Ok(s),
                Some(why) => last = why,
            }
        }
        Err(Error::definite(&codes::SIM_SERVER, last))
    }

    fn root(&self) -> PathBuf {
        self.root.clone()
    }

    fn spawn(&mut self) -> Result<()> {
        let root = self.root();
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", root.join("data").display()))
            .arg(format!("--socket={}", root.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", root.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", root.join("error.log").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg("--innodb-log-file-size=16M")
            .args(server_args(self.server_id, self.mariadb))
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            cmd.arg("--user=root");
        }
        if !self.keep {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; the server dies with this process even when a test is killed.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        self.child = Some(cmd.spawn().map_err(|e| {
            Error::definite(
                &codes::SIM_SERVER,
                format!("{}: {e}", self.binary.display()),
            )
        })?);
        Ok(())
    }

    fn exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(format!("{status}; {}", self.log_tail()))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.root().join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains("[Note]")).collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    fn signal(&mut self, sig: i32) -> Result<()> {
        if let Some(c) = &self.child {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // A paused server must be resumed to shut down.
        // SAFETY: signals to our own child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGCONT);
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        if self.keep {
            if let Some(c) = self.child.take() {
                std::mem::forget(c);
            }
        } else {
            let _ = self.kill();
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn io_err(e: std::io::Error) -> Error {
    Error::definite(&codes::SIM_SERVER, e.to_string())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io_err)?;
    Ok(l.local_addr().map_err(io_err)?.port())
}

fn server_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

static TEMPLATE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A datadir initialized once per server version (root@'%' with ROOT_PASSWORD), copied for every instance.
fn template_dir(binary: &Path, mariadb: bool) -> Result<PathBuf> {
    let _guard = TEMPLATE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let version = server_version(binary);
    let tag: String = version
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or("unknown")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let root = std::env::temp_dir().join("ferry-sim");
    let dir = root.join(format!("template-{tag}"));
    if dir.join("ready").exists() {
        return Ok(dir.join("data"));
    }
    std::fs::create_dir_all(&root).map_err(io_err)?;
    let work = tempfile::Builder::new()
        .prefix("template-build-")
        .tempdir_in(&root)
        .map_err(io_err)?;
    let data = work.path().join("data");
    let log = work.path().join("init.log");
    let init = if mariadb {
        let installer = find_binary(&["mariadb-install-db", "mysql_install_db"])
            .ok_or_else(|| Error::definite(&codes::SIM_SERVER, "mariadb-install-db not found"))?;
        let mut c = Command::new(installer);
        c.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--innodb-log-file-size=16M",
            ]);
        if is_root() {
            c.arg("--user=root");
        }
        c.stdout(Stdio::null()).stderr(Stdio::null()).status()
    } else {
        let mut c = Command::new(binary);
        c.arg("--no-defaults")
            .arg("--initialize-insecure")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--log-error={}", log.display()));
        if is_root() {
            c.arg("--user=root");
        }
        c.stdout(Stdio::null()).stderr(Stdio::null()).status()
    };
    match init {
        Ok(s) if s.success() => {}
        other => {
            return Err(Error::definite(
                &codes::SIM_SERVER,
                format!(
                    "initializing a datadir failed ({other:?}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            ))
        }
    }
    // One start with an init file creates root@'%' (bootstrap mode skips the grant tables), then a clean stop.
    let init_sql = work.path().join("init.sql");
    // MariaDB's installer also creates root@127.0.0.1 and root@<hostname> without password, which would
    // shadow root@'%' for TCP logins.
    let cleanup = if mariadb {
        "DELETE FROM mysql.global_priv WHERE User='root' AND Host<>'localhost';\nFLUSH PRIVILEGES;\n"
    } else {
        ""
    };
    std::fs::write(
        &init_sql,
        format!(
            "{cleanup}CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '{ROOT_PASSWORD}';\n\
             GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;\n"
        ),
    )
    .map_err(io_err)?;
    let sock = work.path().join("init.sock");
    let mut c = Command::new(binary);
    c.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("--init-file={}", init_sql.display()))
        .arg(format!("--log-error={}", log.display()))
        .arg("--skip-networking")
        .arg("--innodb-log-file-size=16M");
    if is_root() {
        c.arg("--user=root");
    }
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io_err)?;
    // The init file has run once the server reports it is ready (the socket appears before that). A SIGTERM
    // that arrives while the init file still runs can hang MariaDB 10.11.19's shutdown, so wait for the line.
    let deadline = Instant::now() + READY_TIMEOUT;
    let ready = || {
        std::fs::read_to_string(&log)
            .map(|l| l.contains("ready for connections"))
            .unwrap_or(false)
    };
    while !ready() {
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::definite(
                &codes::SIM_SERVER,
                format!(
                    "template server did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: SIGTERM to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    // A clean stop, bounded: a template whose server did not stop is not published.
    let stop_deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < stop_deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::definite(
                    &codes::SIM_SERVER,
                    format!(
                        "template server did not stop within {} s: {}",
                        READY_TIMEOUT.as_secs(),
                        std::fs::read_to_string(&log).unwrap_or_default()
                    ),
                ));
            }
        }
    }
    let _ = std::fs::remove_file(&sock);
    // Publish atomically: another process may have raced us; either copy is good.
    let built = work.keep();
    std::fs::write(built.join("ready"), version.as_bytes()).map_err(io_err)?;
    if std::fs::rename(&built, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&built);
    }
    Ok(dir.join("data"))
}

/// A container of the configured image.
struct DockerServer {
    container: testcontainers::ContainerAsync<testcontainers::GenericImage>,
    port: u16,
    keep: bool,
}

impl DockerServer {
    async fn start(server_id: u32, opts: &InstanceOptions) -> Result<DockerServer> {
        use testcontainers::core::IntoContainerPort;
        use testcontainers::runners::AsyncRunner;
        use testcontainers::ImageExt;
        let image = docker_image();
        let (name, tag) = image.rsplit_once(':').unwrap_or((image.as_str(), "latest"));
        let mariadb = name.contains("mariadb");
        let port = free_port()?;
        let mut args = server_args(server_id, mariadb);
        args.extend(opts.extra_args.iter().cloned());
        let container = testcontainers::GenericImage::new(name, tag)
            .with_exposed_port(3306.tcp())
            .with_mapped_port(port, 3306.tcp())
            .with_env_var("FERRY_ROOT_PASSWORD", ROOT_PASSWORD)
            .with_env_var("MARIADB_ROOT_PASSWORD", ROOT_PASSWORD)
            .with_env_var("MYSQL_ROOT_PASSWORD", ROOT_PASSWORD)
            .with_env_var("MYSQL_ROOT_HOST", "%")
            .with_cmd(args)
            .start()
            .await
            .map_err(|e| {
                Error::definite(
                    &codes::SIM_SERVER,
                    format!(
                        "docker image {image}: {e} (build it with docker/build-mariadb-image.sh)"
                    ),
                )
            })?;
        Ok(DockerServer {
            container,
            port,
            keep: opts.keep,
        })
    }
}
