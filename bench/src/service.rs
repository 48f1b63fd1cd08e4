//! The real service under test, as a separate process: this same binary run as `serve`, configured
//! through the environment exactly as a deployment is, its log kept in a file.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

/// What the service is started with; keys as PEM or bare base64, as the settings accept them.
pub struct ServiceConfig<'a> {
    pub database_url: &'a str,
    pub app_id: &'a str,
    pub seller_id: &'a str,
    pub app_private_key_pem: &'a str,
    pub alipay_public_key_base64: &'a str,
    pub api_token: &'a SecretString,
    pub log_dir: &'a Path,
    /// The `alipay-notify` binary to run.
    pub binary: &'a Path,
    /// A webhook endpoint (URL, secret) to deliver every event to.
    pub webhook: Option<(&'a str, &'a str)>,
    /// `RUST_LOG` for the service; `None` leaves it unset (also when this process has one), so
    /// the service logs with its production default filter.
    pub log_level: Option<&'a str>,
}

/// A running `alipay-notify serve`; killed if dropped before `stop`.
pub struct Service {
    child: Child,
    pub address: SocketAddr,
    pub log: PathBuf,
}

impl Service {
    pub fn start(config: &ServiceConfig<'_>) -> anyhow::Result<Self> {
        let address = free_loopback_port()?;
        let log = config.log_dir.join("service.log");
        let mut command = Command::new(config.binary);
        if let Some((url, secret)) = config.webhook {
            command
                .env("WEBHOOK_URL", url)
                .env("WEBHOOK_SECRET", secret);
        }
        match config.log_level {
            Some(filter) => command.env("RUST_LOG", filter),
            None => command.env_remove("RUST_LOG"),
        };
        let child = command
            .arg("serve")
            .env("DATABASE_URL", config.database_url)
            .env("LISTEN_ADDR", address.to_string())
            .env("PUBLIC_URL", format!("http://{address}"))
            .env("ALIPAY_APP_ID", config.app_id)
            .env("ALIPAY_APP_PRIVATE_KEY", config.app_private_key_pem)
            .env("ALIPAY_PUBLIC_KEY", config.alipay_public_key_base64)
            .env("ALIPAY_SELLER_ID", config.seller_id)
            .env("RECONCILE_INTERVAL_SECONDS", "0")
            .env("API_TOKEN", config.api_token.expose_secret())
            .env_remove("ALIPAY_APP_PRIVATE_KEY_FILE")
            .env_remove("ALIPAY_PUBLIC_KEY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting `{} serve`", config.binary.display()))?;
        Ok(Self {
            child,
            address,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` until it answers 200 (migrations applied, database reachable).
    pub async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let url = format!("http://{}/readyz", self.address);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the service exited ({status}):\n{}", self.log_tail(20));
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("the service was not ready within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process's peak resident set size so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time the process has used so far (user + system), from `/proc/<pid>/stat`.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(&format!("/proc/{}/stat", self.pid()))
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        terminate(self.pid());
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        anyhow::bail!("the service did not stop within {grace:?} of SIGTERM")
    }

    /// The last `lines` lines of the service's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// How many lines the service logged, at whatever filter it ran with (`--log-level`; by
    /// default its production filter, which logs every request at `info`).
    pub fn log_lines(&self) -> usize {
        log_lines(&self.log)
    }
}

/// The last `lines` lines of a log file (empty if it cannot be read).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// How many lines a log file holds.
pub fn log_lines(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(unix)]
fn terminate(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) only sends a signal; `pid` is our own child, not yet reaped.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

#[cfg(not(unix))]
fn terminate(_pid: u32) {}

/// A port the OS just handed out on 127.0.0.1 (released again for the service to bind).
pub fn free_loopback_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
pub fn cpu_seconds(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // The command name (field 2) may hold spaces; the fields after its `)` are fixed.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    ticks_to_seconds(ticks)
}

/// Clock ticks (the unit of `/proc/…/stat`'s times) as seconds.
pub fn ticks_to_seconds(ticks: u64) -> Option<f64> {
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

/// The CPU time spent between two readings of [`cpu_seconds`], when both were read.
pub fn cpu_used(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    Some(after? - before?)
}
