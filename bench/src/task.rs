//! The ferry task files the bench writes, the `ferry` child processes it runs on them, and the command-line
//! credentials of the anchor tools.

use crate::process::{self, Finished};
use crate::{setup, Options, Servers};
use ferry_engine::error::Result;
use ferry_sim::Instance;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// host/port/user/password of a server, as ferry's task file spells them.
fn endpoint_toml(i: &Instance) -> String {
    let e = i.endpoint();
    format!(
        "host = \"{}\"\nport = {}\nuser = \"{}\"\npassword = \"{}\"\n",
        e.host,
        e.port,
        e.user,
        e.password.unwrap_or_default()
    )
}

/// A task file for the data set's database: `[task]` with `types`, both servers, and `extra` TOML appended
/// (sections of its own: `[full]`, `[incremental]`, ...). Written into the scratch folder; returns its path.
pub fn write(servers: &Servers, name: &str, types: &[&str], extra: &str) -> Result<PathBuf> {
    let objects = format!("databases = [\"{}\"]\n", servers.data.db);
    write_objects(servers, name, types, &objects, extra)
}

/// `write` with the `[objects]` section's body given.
pub fn write_objects(
    servers: &Servers,
    name: &str,
    types: &[&str],
    objects: &str,
    extra: &str,
) -> Result<PathBuf> {
    let types: Vec<String> = types.iter().map(|t| format!("\"{t}\"")).collect();
    let text = format!(
        "[task]\nname = \"{name}\"\ntypes = [{}]\n\n[source]\n{}\n[destination]\n{}\n[objects]\n{objects}\n{extra}",
        types.join(", "),
        endpoint_toml(&servers.source),
        endpoint_toml(&servers.destination),
    );
    let path = servers.scratch.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).map_err(|e| setup(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Runs `ferry <args>` to its end (or SIGTERM after `stop_after`) on a blocking thread; `ok_codes` are the exit
/// codes that count as success.
pub async fn ferry(
    opts: &Options,
    servers: &Servers,
    what: &str,
    args: Vec<String>,
    stop_after: Option<Duration>,
    ok_codes: &[i32],
) -> Result<Finished> {
    let mut cmd = Command::new(&opts.ferry);
    cmd.args(&args).env("RUST_LOG", "warn");
    let scratch = servers.scratch.path().to_path_buf();
    let what_owned = what.to_string();
    let f = tokio::task::spawn_blocking(move || {
        process::run(
            &what_owned,
            cmd,
            &scratch,
            Duration::from_secs(LIMIT_S),
            stop_after,
        )
    })
    .await
    .map_err(|e| setup(format!("{what}: {e}")))??;
    // A process the bench stopped ends as its signal handling decides (a copy stopped midway exits 2 with
    // FERRY-RUN-001): that is the bench's doing, not a failure.
    let stopped = stop_after.is_some_and(|s| f.seconds >= s.as_secs_f64());
    if !stopped && !f.code.is_some_and(|c| ok_codes.contains(&c)) {
        return Err(setup(format!(
            "{what}: ferry {} exited {:?}: {}",
            args.join(" "),
            f.code,
            f.stderr_tail()
        )));
    }
    Ok(f)
}

/// The longest any one contender may run.
pub const LIMIT_S: u64 = 3600;

/// `-h.. -P.. -u.. -p..` for the mariadb client tools.
pub fn client_args(i: &Instance) -> String {
    let e = i.endpoint();
    format!(
        "-h{} -P{} -u{} -p{}",
        e.host,
        e.port,
        e.user,
        e.password.unwrap_or_default()
    )
}

/// `--host .. --port .. --user .. --password ..` for mydumper and myloader.
pub fn mydumper_args(i: &Instance) -> String {
    let e = i.endpoint();
    format!(
        "--host {} --port {} --user {} --password {}",
        e.host,
        e.port,
        e.user,
        e.password.unwrap_or_default()
    )
}

/// A pt-table-sync DSN for a server.
pub fn dsn(i: &Instance) -> String {
    let e = i.endpoint();
    format!(
        "h={},P={},u={},p={}",
        e.host,
        e.port,
        e.user,
        e.password.unwrap_or_default()
    )
}
