//! The admin console in a real browser: runs a scenario of
//! `tests/browser/console.mjs` (Playwright, from npm, driving Debian's
//! Chromium; both installed by `scripts/test.sh`) against a running gateway,
//! and fails the test with the script's output if any of its checks fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::command::wait_or_kill;
use super::Gateway;

/// Where the browser is: `TENANT_GATEWAY_TEST_CHROMIUM`, else Debian's path.
pub const CHROMIUM_ENV: &str = "TENANT_GATEWAY_TEST_CHROMIUM";
/// How long one scenario may take, browser start included.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    let bin = std::env::var_os(CHROMIUM_ENV)
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        bin.is_file(),
        "{} not found: install chromium (apt-get install chromium, or ./scripts/test.sh)",
        bin.display()
    );
    bin
}

impl Gateway {
    /// Runs `node tests/browser/console.mjs SCENARIO` against this gateway's
    /// console (`/ui/` on its admin listener) and data path, and returns its
    /// output (one line per step).
    pub async fn console_scenario(&self, scenario: &str) -> String {
        let chromium = chromium();
        let dir = browser_dir();
        assert!(
            dir.join("node_modules/playwright-core").is_dir(),
            "playwright-core is not installed: run `npm ci` in {} (./scripts/test.sh does)",
            dir.display()
        );
        let token = self.options.token.clone().unwrap_or_default();
        let out = tempfile::tempdir().expect("temporary directory");
        let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
        let mut child = Command::new("node")
            .arg(dir.join("console.mjs"))
            .arg(scenario)
            .current_dir(&dir)
            .env("CONSOLE_URL", format!("http://{}/ui/", self.admin_addr))
            .env("CONSOLE_TOKEN", token)
            .env("DATA_ADDR", self.addr.to_string())
            .env(CHROMIUM_ENV, chromium)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("run node (install nodejs, or ./scripts/test.sh)");
        let status = wait_or_kill(&mut child, SCENARIO_TIMEOUT).await;
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let output = format!("{}{}", read(&stdout), read(&stderr));
        match status {
            Some(status) if status.success() => output,
            Some(status) => panic!(
                "console scenario {scenario} failed ({status}):\n{output}\ngateway log:\n{}",
                self.log()
            ),
            None => panic!("console scenario {scenario} took over {SCENARIO_TIMEOUT:?}:\n{output}"),
        }
    }
}
