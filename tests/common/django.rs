//! A real Django + django-tenants site (`integrations/django/example`) on
//! the test PostgreSQL: shared tables migrated and tenants created with
//! django-tenants' own commands and models, served by gunicorn on a free
//! loopback port. Needs the Python virtualenv that `scripts/test.sh` makes;
//! its interpreter comes in `TENANT_GATEWAY_TEST_PYTHON`.
//!
//! Teardown: gunicorn runs under a small shell holding a pipe from this
//! process (as `pg.rs` does for PostgreSQL), so it is stopped gracefully on
//! drop and also when the test binary dies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;

use super::command::wait_or_kill;
use super::data_path::fetch;
use super::pg::fresh_database;
use super::Reply;

/// The variable `scripts/test.sh` sets to its virtualenv's `python`.
pub const PYTHON_ENV: &str = "TENANT_GATEWAY_TEST_PYTHON";

/// How long migrations, tenant creation or gunicorn's start may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(180);

/// The test virtualenv's Python, or `None` (with a loud message) when the
/// tests run outside `scripts/test.sh`, which always sets it.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os(PYTHON_ENV) {
        Some(python) => Some(PathBuf::from(python)),
        None => {
            eprintln!(
                "\n*** SKIPPED: {PYTHON_ENV} is not set, so the Django tests did not run. \
                 Run ./scripts/test.sh (it makes the virtualenv with Django, django-tenants \
                 and gunicorn and sets {PYTHON_ENV}). ***\n"
            );
            None
        }
    }
}

/// `integrations/django` in this repository.
pub fn integration_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("integrations/django")
}

/// The example site on a database of its own, with the user `owner` and the
/// tenants of its `create_example_tenants` command: `public` (example.test),
/// `acme` (acme.test, two notes), `globex` (globex.test, one note) and
/// `tenant_template` (no domain, kept migrated as the gateway's template).
pub struct DjangoSite {
    python: PathBuf,
    /// `postgres://…` of the site's database (the gateway's store too).
    pub database: String,
    /// The project directory (`manage.py`): the example, or a copy of it.
    pub project: PathBuf,
    /// The copy's directory, removed on drop.
    _copy: Option<TempDir>,
}

impl DjangoSite {
    /// Migrates a fresh database and creates the example tenants.
    pub async fn create(python: PathBuf) -> DjangoSite {
        Self::set_up(DjangoSite {
            python,
            database: fresh_database(),
            project: Self::example_dir(),
            _copy: None,
        })
        .await
    }

    /// Like [`DjangoSite::create`], on a copy of the example project that a
    /// test may change (e.g. add a migration).
    pub async fn create_copy(python: PathBuf) -> DjangoSite {
        let dir = tempfile::tempdir().expect("temporary directory");
        let project = dir.path().join("example");
        copy_dir(&Self::example_dir(), &project);
        Self::set_up(DjangoSite {
            python,
            database: fresh_database(),
            project,
            _copy: Some(dir),
        })
        .await
    }

    async fn set_up(site: DjangoSite) -> DjangoSite {
        site.manage(&["migrate_schemas", "--shared", "--noinput"])
            .await;
        site.manage(&["create_example_tenants"]).await;
        site
    }

    fn example_dir() -> PathBuf {
        integration_dir().join("example")
    }

    /// The flags that point a `tenant-gateway` command at this site's
    /// tables, with `run_command`'s `{config}`: `ARGS… --config {config}
    /// --store URL --store-layout django-tenants`.
    pub fn command<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut command = args.to_vec();
        command.extend([
            "--config",
            "{config}",
            "--store",
            &self.database,
            "--store-layout",
            "django-tenants",
        ]);
        command
    }

    /// Runs `python manage.py ARGS` and returns its stdout; panics with its
    /// output when it fails.
    pub async fn manage(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.python);
        cmd.arg("manage.py")
            .args(args)
            .current_dir(&self.project)
            .env("TGW_EXAMPLE_DATABASE", &self.database);
        run_python(cmd, &format!("manage.py {}", args.join(" "))).await
    }

    /// Starts gunicorn with `workers` sync workers. `middleware` is
    /// `gateway` or `django-tenants`; `signing_keys` is `id=secret,…`.
    pub async fn serve(&self, middleware: &str, signing_keys: &str, workers: usize) -> Gunicorn {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join("gunicorn.log");
        // The shell stops gunicorn (TERM, then waits) once our pipe closes.
        let script = r#""$@" & pid=$!; while read -r _; do :; done; kill -TERM $pid; wait $pid"#;
        let child = Command::new("sh")
            .args(["-c", script, "sh"])
            .arg(&self.python)
            .args(["-m", "gunicorn", "--workers", &workers.to_string()])
            .args([
                "--worker-class",
                "sync",
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .arg("--chdir")
            .arg(&self.project)
            .arg("--error-logfile")
            .arg(&log)
            .arg("example_site.wsgi:application")
            .env("TGW_EXAMPLE_DATABASE", &self.database)
            .env("TGW_EXAMPLE_MIDDLEWARE", middleware)
            .env("TGW_EXAMPLE_SIGNING_KEYS", signing_keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn gunicorn");
        let app = Gunicorn {
            url: format!("http://127.0.0.1:{port}"),
            child,
            dir,
            client: Client::builder(TokioExecutor::new()).build_http(),
        };
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            if let Ok(reply) = app.try_get("example.test", "/healthz", &[]).await {
                if reply.status == StatusCode::OK {
                    return app;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gunicorn did not answer /healthz; its log:\n{}",
                app.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Copies the directory `from` to `to` (which must not exist), without
/// Python's caches.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the copy's directory");
    for entry in std::fs::read_dir(from).expect("read the example project") {
        let entry = entry.expect("a directory entry");
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "__pycache__" {
            continue;
        }
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&source, &target);
        } else {
            std::fs::copy(&source, &target).expect("copy a project file");
        }
    }
}

/// Runs the `tests` of the `tenant_gateway_django` package with unittest.
pub async fn run_package_unit_tests(python: &Path) -> String {
    let mut cmd = Command::new(python);
    cmd.args(["-m", "unittest", "discover", "-v", "-s", "tests", "-t", "."])
        .current_dir(integration_dir());
    run_python(cmd, "python -m unittest (integrations/django)").await
}

/// Runs `cmd` to completion; panics with its output when it fails or
/// outlives [`SETUP_TIMEOUT`].
async fn run_python(mut cmd: Command, what: &str) -> String {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let status = wait_or_kill(&mut child, SETUP_TIMEOUT).await;
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => out + &err,
        Some(status) => panic!("{what} failed ({status}):\n{out}\n{err}"),
        None => panic!("{what} did not finish within {SETUP_TIMEOUT:?}:\n{out}\n{err}"),
    }
}

/// A gunicorn serving the example site, stopped on drop.
pub struct Gunicorn {
    /// `http://127.0.0.1:PORT`, as the gateway's pools take it.
    pub url: String,
    child: Child,
    dir: TempDir,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Gunicorn {
    /// A request straight to the app (not through the gateway) with the
    /// given Host and extra headers.
    pub async fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.try_get(host, path, headers)
            .await
            .unwrap_or_else(|e| panic!("GET {path} to gunicorn failed: {e}\n{}", self.log()))
    }

    async fn try_get(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path}", self.url))
            .header("host", host);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        fetch(&self.client, req).await
    }

    /// gunicorn's error log (start-up, worker and Django errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gunicorn.log")).unwrap_or_default()
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        // Closing the pipe makes the shell stop gunicorn and wait for it.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
