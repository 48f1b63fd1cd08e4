//! Peers: other stacks loaded with the same plan, the same pre-signed bodies and the same load
//! code as ours, for side-by-side figures from one run (issue 17). One so far, `seed-flask`: the
//! Flask + python-alipay-sdk app merchants start from, under gunicorn, started with its own
//! `serve.sh` on a fresh Postgres database whose orders the bench inserts straight into the
//! seed's schema.

pub mod process_group;

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;

use crate::load;
use crate::service;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Peer {
    /// Flask + python-alipay-sdk under gunicorn (`--peer-dir`: its serve.sh and schema.sql).
    SeedFlask,
}

/// Where the seed lives relative to a checkout's root, as its README runs it.
pub const DEFAULT_SEED_DIR: &str = "../shared/peers/seed-flask";
/// gunicorn `sync` workers: the seed's README found 4 the fastest on a 2-core machine.
pub const DEFAULT_WORKERS: usize = 4;
/// serve.sh builds its venv with pip on first use, before gunicorn listens; that may take minutes.
pub const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// The Postgres server to make the seed's database on: the seed speaks psycopg, so only
/// `postgres://` (or `postgresql://`) will do.
pub fn postgres_url(database: Option<&str>) -> anyhow::Result<&str> {
    match database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(url),
        Some(url) => anyhow::bail!("--peer needs a Postgres server as --database, not {url}"),
        None => anyhow::bail!("--peer needs --database postgres://…"),
    }
}

/// The seed's folder, after checking it holds what the bench runs.
pub fn seed_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    for file in ["serve.sh", "schema.sql"] {
        anyhow::ensure!(
            dir.join(file).is_file(),
            "{} has no {file}: name the seed-flask folder with --peer-dir",
            dir.display()
        );
    }
    // serve.sh `cd`s into its folder; an absolute path keeps the log's hints usable from anywhere.
    dir.canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))
}

/// For tests: the seed's folder (SEED_FLASK_DIR, or where it sits beside this checkout) when it
/// is there; it lives outside this repository.
#[cfg(test)]
pub fn seed_dir_for_tests() -> Option<PathBuf> {
    let dir = std::env::var_os("SEED_FLASK_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/seed-flask"),
        Into::into,
    );
    seed_dir(&dir).ok()
}

/// A public key (DER SubjectPublicKeyInfo) as the PEM file the seed's ALIPAY_PUBLIC_KEY_FILE names.
pub fn public_key_pem(spki_der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("PUBLIC KEY", spki_der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// What the seed is started with.
pub struct SeedConfig<'a> {
    /// Its folder (serve.sh, app.py, schema.sql).
    pub dir: &'a Path,
    pub workers: usize,
    pub database_url: &'a str,
    /// The key the notifications are signed with, public half, DER.
    pub alipay_public_key_der: &'a [u8],
    pub app_id: &'a str,
    /// For the key file and the log.
    pub work_dir: &'a Path,
}

/// The seed's gunicorn, leader of its own process group; the group is killed if this is dropped
/// before `stop`.
pub struct SeedFlask {
    child: Child,
    pub address: SocketAddr,
    pub log: PathBuf,
    workers: usize,
    /// Whether the master has been waited for (its pid, the group's id, may then be reused).
    reaped: bool,
}

impl SeedFlask {
    /// `serve.sh --kind sync --workers N --bind 127.0.0.1:<free port>`, in a new process group so
    /// that its workers can be measured and stopped together. serve.sh `exec`s gunicorn, so the
    /// child's pid is the master's.
    pub fn start(config: &SeedConfig<'_>) -> anyhow::Result<Self> {
        let address = service::free_loopback_port()?;
        let key_file = config.work_dir.join("alipay_public_key.pem");
        std::fs::write(&key_file, public_key_pem(config.alipay_public_key_der))
            .with_context(|| format!("writing {}", key_file.display()))?;
        let log = config.work_dir.join("seed.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(config.dir.join("serve.sh"))
            .args(["--kind", "sync", "--workers"])
            .arg(config.workers.to_string())
            .arg("--bind")
            .arg(address.to_string())
            .env("DATABASE_URL", config.database_url)
            .env("ALIPAY_PUBLIC_KEY_FILE", &key_file)
            .env("ALIPAY_APP_ID", config.app_id)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}/serve.sh", config.dir.display()))?;
        Ok(Self {
            child,
            address,
            log,
            workers: config.workers,
            reaped: false,
        })
    }

    fn pgid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Until the seed answers HTTP and all its workers are forked. The first start builds the
    /// venv (pip), which is why the timeout is long.
    pub async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let url = format!("http://{}/alipay/notify", self.address);
        let deadline = Instant::now() + timeout;
        let mut answered = false;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                anyhow::bail!(
                    "the seed exited ({status}):\n{}",
                    service::log_tail(&self.log, 20)
                );
            }
            answered = answered || client.post(&url).send().await.is_ok();
            // The master and its workers.
            if answered && process_group::members(self.pgid()).len() > self.workers {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "the seed was not ready within {timeout:?}:\n{}",
                    service::log_tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// CPU the master and workers have used so far (user + system), in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let members = process_group::members(self.pgid());
        service::ticks_to_seconds(process_group::cpu_ticks(self.pgid(), &members))
    }

    /// Peak RSS summed over the master and workers, in KiB. Pages they share since the fork
    /// count in each, so this overstates what they hold together.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        process_group::members(self.pgid())
            .iter()
            .map(|(pid, _)| process_group::peak_rss_kib(*pid))
            .sum()
    }

    /// SIGTERM to the whole group (gunicorn stops its workers gracefully), SIGKILL to the group
    /// after `grace`. The master is reaped last: until then its pid names the group, so no other
    /// process can take it and be signalled by mistake.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        signal_group(self.pgid(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            let others = process_group::members(self.pgid())
                .iter()
                .filter(|(pid, _)| *pid != self.pgid())
                .count();
            if others == 0 && self.child.try_wait()?.is_some() {
                self.reaped = true;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        signal_group(self.pgid(), libc::SIGKILL);
        self.child.wait()?;
        self.reaped = true;
        anyhow::bail!("the seed did not stop within {grace:?} of SIGTERM")
    }
}

impl Drop for SeedFlask {
    fn drop(&mut self) {
        if !self.reaped {
            signal_group(self.pgid(), libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Sends `signal` to every process of group `pgid` (ours: the seed's, made by `start`).
fn signal_group(pgid: i32, signal: libc::c_int) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) only sends a signal; a negative pid names the group we created.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Requests answered before the clock starts: each worker gets some (and its first connection),
/// and the plain-HTTP path is proved to survive gunicorn closing every connection. Empty bodies,
/// which the seed refuses (400, no sign) before any database work, so the orders stay untouched.
pub async fn warm_up(
    client: &reqwest::Client,
    notify_url: &str,
    workers: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let bodies: Vec<Arc<[u8]>> = (0..workers.max(1) * 25)
        .map(|_| Arc::from(&b""[..]))
        .collect();
    let result = load::send_all(
        client,
        notify_url,
        Arc::new(bodies),
        concurrency,
        &ProgressBar::hidden(),
    )
    .await;
    let unexpected: Vec<_> = result
        .failures
        .iter()
        .filter(|(what, _)| !what.starts_with("400 "))
        .collect();
    anyhow::ensure!(
        result.success == 0 && unexpected.is_empty(),
        "warming the seed up with unsigned requests: {} success, unexpected {unexpected:?}",
        result.success
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alipay_notify::alipay::keys::{PrivateKey, PublicKey};

    #[test]
    fn the_seed_needs_a_postgres_url() {
        let url = "postgres://postgres@127.0.0.1:5432/postgres";
        assert_eq!(postgres_url(Some(url)).unwrap(), url);
        assert!(postgres_url(Some("postgresql://localhost/x")).is_ok());
        assert!(postgres_url(Some("sqlite:/tmp/x.db")).is_err());
        assert!(postgres_url(None).is_err());
    }

    #[test]
    fn a_folder_without_serve_sh_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("schema.sql"), "").unwrap();
        let error = seed_dir(dir.path()).unwrap_err().to_string();
        assert!(error.contains("serve.sh"), "{error}");
    }

    #[test]
    fn the_public_key_pem_is_the_signing_keys() {
        let key = PrivateKey::generate();
        let pem = public_key_pem(&key.public_key_spki_der());
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(pem.lines().all(|line| line.len() <= 64));
        let public = PublicKey::parse(&pem).unwrap();
        public
            .verify(b"content", &key.sign(b"content"))
            .expect("the PEM holds the signing key's public half");
    }
}
