//! A throwaway PostgreSQL server for the tests: started once per test binary
//! (on first use) in a temporary directory on a free loopback port, and one
//! fresh database per test. A test that stops and restarts PostgreSQL gets
//! a server of its own ([`private_server`]), so the others are not disturbed.
//!
//! Teardown without a destructor: the server is run by a small watchdog
//! shell whose stdin is a pipe held by this process. When the test binary
//! exits, however it exits (even SIGKILL), the kernel closes the pipe, the
//! shell's `read` sees end of file, and it stops PostgreSQL (`pg_ctl stop -m
//! immediate`) and removes the directory. So no server outlives `cargo test`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::ports::free_port;

/// The running test server.
pub struct TestPostgres {
    pub port: u16,
    pub dir: PathBuf,
    bin: PathBuf,
    /// `pg_ctl start` and `pg_ctl stop` for this server, as shell commands.
    start_cmd: String,
    stop_cmd: String,
    /// Held open for the life of the process; see the module comment.
    _watchdog: Mutex<Child>,
}

static SERVER: OnceLock<TestPostgres> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The server of this test binary, started on first use.
pub fn server() -> &'static TestPostgres {
    SERVER.get_or_init(TestPostgres::start)
}

/// A new empty database on the test server; returns its URL.
pub fn fresh_database() -> String {
    server().fresh_database()
}

/// A server for this test alone (to stop and restart); it is stopped and
/// removed when dropped.
pub fn private_server() -> TestPostgres {
    TestPostgres::start()
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql); run ./scripts/test.sh")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb; run ./scripts/test.sh")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when we are root (PostgreSQL
/// refuses to run as root).
fn as_pg_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl TestPostgres {
    fn start() -> TestPostgres {
        let bin = pg_bin();
        let dir = tempfile::Builder::new()
            .prefix("tgw-pg-")
            .tempdir()
            .expect("temporary directory")
            .keep();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown {}", dir.display());
        }
        let data = dir.join("data");
        let out = as_pg_user(&bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        // Durability is pointless for a throwaway server: skip fsync.
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            dir.display()
        );
        let pg_ctl = bin.join("pg_ctl");
        let ctl = |args: &str| {
            let prefix = if is_root() {
                "runuser -u postgres -- ".to_string()
            } else {
                String::new()
            };
            format!("{prefix}{} -D {} {args}", pg_ctl.display(), data.display())
        };
        let log = dir.join("pg_ctl.log");
        let start_cmd = format!(
            "{} >>{} 2>&1 </dev/null",
            ctl(&format!(
                "-w -t 60 -o '{options}' -l {}/server.log start",
                dir.display()
            )),
            log.display()
        );
        let stop_cmd = format!(
            "{} >>{} 2>&1 </dev/null",
            ctl("-m immediate -w stop"),
            log.display()
        );
        let script = format!(
            "{start_cmd}; echo started; \
             while read -r _; do :; done; \
             {stop_cmd}; rm -rf {dir}",
            dir = dir.display(),
        );
        let mut watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the PostgreSQL watchdog");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(watchdog.stdout.take().expect("watchdog stdout")),
            &mut line,
        )
        .expect("watchdog output");
        let server = TestPostgres {
            port,
            dir: dir.clone(),
            bin,
            start_cmd,
            stop_cmd,
            _watchdog: Mutex::new(watchdog),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.try_psql("postgres", "SELECT 1") {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// A new empty database on this server; returns its URL.
    pub fn fresh_database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Stops the server at once (as a crash would), keeping its data. A
    /// checkpoint first makes every commit durable, as it would be with
    /// `synchronous_commit` on (the test server turns it off for speed).
    pub fn stop(&self) {
        self.psql("postgres", "CHECKPOINT");
        let status = Command::new("sh")
            .args(["-c", &self.stop_cmd])
            .status()
            .expect("pg_ctl stop");
        assert!(status.success(), "pg_ctl stop failed");
    }

    /// Starts a stopped server again on the same port and data.
    pub fn restart(&self) {
        let status = Command::new("sh")
            .args(["-c", &self.start_cmd])
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "pg_ctl start failed");
    }

    /// The directory of this server's programs (`psql`, `pg_ctl`, …).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn try_psql(&self, database: &str, sql: &str) -> bool {
        self.psql_output(database, sql).is_ok()
    }

    fn psql_output(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(database))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        child
            .stdin
            .take()
            .expect("psql stdin")
            .write_all(sql.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs SQL in `database` with psql and returns its unaligned output
    /// (one row a line, columns separated by `|`); panics on failure.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.psql_output(database, sql)
            .unwrap_or_else(|e| panic!("psql {database}: {sql}\n{e}"))
    }
}

/// The database name of a URL made by [`fresh_database`].
pub fn database_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Runs SQL in the database of `url`; see [`TestPostgres::psql`].
pub fn psql(url: &str, sql: &str) -> String {
    server().psql(database_of(url), sql)
}

/// The DDL of `python manage.py migrate` for a `customers` app whose
/// `Client(TenantMixin)` has a `name` field and `Domain(DomainMixin)`.
pub const DJANGO_TABLES: &str = r#"
CREATE TABLE "customers_client" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "schema_name" varchar(63) NOT NULL UNIQUE, "name" varchar(100) NOT NULL);
CREATE TABLE "customers_domain" ("id" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, "domain" varchar(253) NOT NULL UNIQUE, "is_primary" boolean NOT NULL, "tenant_id" bigint NOT NULL);
ALTER TABLE "customers_domain" ADD CONSTRAINT "customers_domain_tenant_id_d0e0c0c5_fk_customers_client_id" FOREIGN KEY ("tenant_id") REFERENCES "customers_client" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "customers_client_schema_name_2ad5ae0b_like" ON "customers_client" ("schema_name" varchar_pattern_ops);
CREATE INDEX "customers_domain_domain_0b6ddd11_like" ON "customers_domain" ("domain" varchar_pattern_ops);
CREATE INDEX "customers_domain_is_primary_7a2a1a6d" ON "customers_domain" ("is_primary");
CREATE INDEX "customers_domain_tenant_id_d0e0c0c5" ON "customers_domain" ("tenant_id");
INSERT INTO customers_client (schema_name, name) VALUES ('public', 'Public'), ('acme', 'Acme Corp');
INSERT INTO customers_domain (domain, is_primary, tenant_id) VALUES
    ('example.test', true, 1), ('acme.test', true, 2), ('shop.acme.test', false, 2);
CREATE SCHEMA acme;
"#;
