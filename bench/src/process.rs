//! Runs one contender's command to its end (or a deadline) and measures its wall time and peak RSS.

use crate::setup;
use ferry_engine::error::Result;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How often the child's RSS is read from /proc.
const RSS_SAMPLE_MS: u64 = 20;

#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub seconds: f64,
    /// The most the process (not its children) held, from VmHWM and the sampled VmRSS; 0 when unknown.
    pub peak_rss_mb: f64,
    /// CPU seconds (user + system) the process used, as last read from /proc before it exited (at most
    /// RSS_SAMPLE_MS short of the end).
    pub cpu_s: f64,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The tail of stderr, for an error message.
    pub fn stderr_tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }
}

/// The resident set high-water mark of a live process, in MiB (VmHWM; VmRSS where the kernel has no VmHWM).
pub fn rss_mb(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
    };
    field("VmHWM:")
        .or_else(|| field("VmRSS:"))
        .map(|kb| kb / 1024.0)
}

/// CPU seconds (utime + stime) of a live process.
pub fn cpu_s(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks > 0.0).then(|| (utime + stime) / ticks)
}

/// Runs `cmd` (stdout and stderr to files in `scratch`, so a chatty child never blocks on a pipe) until it exits,
/// or until `stop_after` passes, when it gets SIGTERM and, 30 s later, SIGKILL.
pub fn run(
    what: &str,
    mut cmd: Command,
    scratch: &Path,
    limit: Duration,
    stop_after: Option<Duration>,
) -> Result<Finished> {
    let tag = format!(
        "{}-{}",
        what.replace(|c: char| !c.is_alphanumeric(), "_"),
        rand::random::<u32>()
    );
    let out_path = scratch.join(format!("{tag}.out"));
    let err_path = scratch.join(format!("{tag}.err"));
    let out = std::fs::File::create(&out_path).map_err(|e| setup(format!("{what}: {e}")))?;
    let err = std::fs::File::create(&err_path).map_err(|e| setup(format!("{what}: {e}")))?;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| setup(format!("{what}: cannot start {:?}: {e}", cmd.get_program())))?;
    let pid = child.id();
    let mut peak: f64 = 0.0;
    let mut cpu: f64 = 0.0;
    let mut termed: Option<Instant> = None;
    let status = loop {
        if let Some(mb) = rss_mb(pid) {
            peak = peak.max(mb);
        }
        if let Some(s) = cpu_s(pid) {
            cpu = cpu.max(s);
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(setup(format!("{what}: waiting: {e}"))),
        }
        let elapsed = started.elapsed();
        if stop_after.is_some_and(|s| elapsed >= s) && termed.is_none() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
            termed = Some(Instant::now());
        }
        if elapsed >= limit || termed.is_some_and(|t| t.elapsed() > Duration::from_secs(30)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(setup(format!(
                "{what}: still running after {:.0} s (limit {} s); killed",
                elapsed.as_secs_f64(),
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(RSS_SAMPLE_MS));
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(Finished {
        seconds,
        peak_rss_mb: peak,
        cpu_s: cpu,
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    })
}

/// `run` for a shell pipeline (`a | b`), failing unless every part exited 0.
pub fn shell(what: &str, script: &str, scratch: &Path, limit: Duration) -> Result<Finished> {
    let mut cmd = Command::new("bash");
    cmd.args(["-o", "pipefail", "-c", script]);
    let f = run(what, cmd, scratch, limit, None)?;
    if f.code != Some(0) {
        return Err(setup(format!(
            "{what}: exited {:?}: {}",
            f.code,
            f.stderr_tail()
        )));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_timed_and_its_rss_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 64 MiB touched by a shell-free child: dd's buffer is resident while it copies.
        let mut cmd = Command::new("dd");
        cmd.args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=4"]);
        let f = run("dd", cmd, dir.path(), Duration::from_secs(30), None).expect("dd");
        assert_eq!(f.code, Some(0));
        assert!(f.peak_rss_mb > 32.0, "{f:?}");
        assert!(f.stderr.contains("records in"), "{f:?}");
    }

    #[test]
    fn a_busy_child_shows_its_cpu_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"]);
        let f = run("busy", cmd, dir.path(), Duration::from_secs(60), None).expect("busy");
        assert_eq!(f.code, Some(0));
        assert!(
            f.cpu_s > 0.05,
            "a shell counting to 300,000 used CPU: {f:?}"
        );
        assert!(
            f.cpu_s <= f.seconds + 0.05,
            "one thread cannot use more CPU than wall time: {f:?}"
        );
    }

    #[test]
    fn a_failing_pipeline_part_fails_the_pipeline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = shell("p", "false | cat", dir.path(), Duration::from_secs(10)).expect_err("fails");
        assert!(e.to_string().contains("FERRY-BEN-001"), "{e}");
        let ok = shell("p", "echo hi | cat", dir.path(), Duration::from_secs(10)).expect("ok");
        assert_eq!(ok.stdout, "hi\n");
    }

    #[test]
    fn a_child_past_its_stop_time_is_terminated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let f = run(
            "sleep",
            cmd,
            dir.path(),
            Duration::from_secs(20),
            Some(Duration::from_millis(200)),
        )
        .expect("sleep");
        assert!(f.seconds < 5.0, "{f:?}");
        assert_eq!(f.code, None, "ended by a signal: {f:?}");
    }
}
