//! One-shot `tenant-gateway` commands (`check-config`, a `serve` that must
//! refuse to start), run to completion with a timeout; and that wait for any
//! child process.

use std::fs::File;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{BINARY, GATEWAY_ENV, START_TIMEOUT};

/// A finished `tenant-gateway` command.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tenant-gateway ARGS` with `config` written to a temporary
/// `config.yaml` (its path replaces every `{config}` argument) and `env` set,
/// and waits up to 20 s for it to exit (a `serve` that keeps running is a
/// failure: it is killed and the test panics).
pub async fn run_command(args: &[&str], config: &str, env: &[(&str, &str)]) -> Finished {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let mut cmd = Command::new(BINARY);
    for arg in args {
        match *arg {
            "{config}" => cmd.arg(&config_path),
            "{data}" => cmd.arg(dir.path().join("gw.db")),
            other => cmd.arg(other),
        };
    }
    for var in GATEWAY_ENV {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn tenant-gateway");
    let Some(status) = wait_or_kill(&mut child, START_TIMEOUT).await else {
        panic!(
            "tenant-gateway {args:?} did not exit; stderr:\n{}",
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
    };
    Finished {
        status,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Waits for `child` to exit, without blocking the test's runtime; kills it
/// and returns `None` if it is still running after `timeout`.
pub async fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for a child process") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
