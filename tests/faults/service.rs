//! The real `alipay-notify serve` as a child process, configured only through its environment,
//! in a working directory of its own (so no `config/default.toml` is read), logging to a file
//! that is printed when a test fails. Killed (SIGKILL) when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const APP_ID: &str = "2021000000000001";
pub const SELLER_ID: &str = "2088000000000001";
pub const API_TOKEN: &str = "faults-token-0123456789";

/// How long a fresh service may take to answer `/healthz` (a debug build applying migrations on
/// a busy two-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub use alipay_test_support::keys::keys;
use alipay_test_support::net::address_was_taken;
pub use alipay_test_support::net::free_port;

/// HTTP client for loopback only: no proxy from the environment, bounded waits.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

/// What a test sets beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Further environment variables (they win over the defaults).
    pub env: Vec<(&'static str, String)>,
    /// Start the process with this soft limit on open files (the hard limit is kept).
    pub soft_open_files: Option<u64>,
}

impl Options {
    pub fn env(mut self, name: &'static str, value: impl ToString) -> Self {
        self.env.push((name, value.to_string()));
        self
    }
}

pub struct Service {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Spawns `alipay-notify serve` on `database_url` and waits until `/healthz` answers.
    pub async fn start(database_url: &str) -> Self {
        Self::start_with(database_url, Options::default()).await
    }

    /// The port is picked before the child binds it (it must be told one), so it may be taken
    /// in between: the child then exits saying so, and is started again on another port.
    pub async fn start_with(database_url: &str, options: Options) -> Self {
        for _ in 0..5 {
            let mut service = Self::spawn(database_url, options.clone());
            match service.wait_healthy().await {
                Ok(()) => return service,
                Err(log) if address_was_taken(&log) => continue,
                Err(log) => {
                    panic!("service did not answer /healthz within {START_TIMEOUT:?}:\n{log}")
                }
            }
        }
        panic!("five ports in a row were taken before the service could bind them");
    }

    fn spawn(database_url: &str, options: Options) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("faults-service-")
            .tempdir()
            .expect("service dir");
        let log = dir.path().join("service.log");
        let out = File::create(&log).expect("service log");
        let err = out.try_clone().expect("service log");
        let port = free_port();
        let keys = keys();
        let mut command = Command::new(env!("CARGO_BIN_EXE_alipay-notify"));
        command
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("ALIPAY_APP_ID", APP_ID)
            .env("ALIPAY_APP_PRIVATE_KEY", keys.app.to_pkcs8_pem())
            .env("ALIPAY_PUBLIC_KEY", keys.alipay.public_key_base64())
            .env("ALIPAY_SELLER_ID", SELLER_ID)
            .env("API_TOKEN", API_TOKEN)
            .env("RECONCILE_INTERVAL_SECONDS", "0")
            .env("RUST_LOG", "info")
            .envs(options.env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some(soft) = options.soft_open_files {
            let (_, hard) = rlimit::Resource::NOFILE.get().expect("open files limit");
            // SAFETY: setrlimit(2) is async-signal-safe, and nothing else runs in the child
            // between fork and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                    rlimit::Resource::NOFILE.set(soft, hard)
                });
            }
        }
        let child = command.spawn().expect("spawn alipay-notify serve");
        Self {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Waits until this child (its log says it is listening; another process might hold the
    /// port) answers `/healthz`. The tail of its log if it exits or does not answer in time.
    async fn wait_healthy(&mut self) -> Result<(), String> {
        let client = client();
        let started = Instant::now();
        while started.elapsed() < START_TIMEOUT {
            if self.exited().is_some() {
                return Err(self.log_tail(40));
            }
            if let Ok(response) = client.get(self.url("/healthz")).send().await {
                let ours = self.log_tail(usize::MAX).contains("listening");
                if response.status().is_success() && ours {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(self.log_tail(40))
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Exit status if the process has exited (reaping it), `None` while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGKILL: a crash. Waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the orderly stop an orchestrator sends.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) with a pid we spawned and have not reaped.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "kill(SIGTERM) failed");
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if started.elapsed() > within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- service on port {} (last log lines) ---\n{}",
                self.port,
                self.log_tail(30)
            );
        }
        self.kill();
    }
}
