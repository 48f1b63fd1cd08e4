//! Postgres for the fault tests: a throwaway server the test owns (so it may stop it), and fresh
//! databases on the shared server at TEST_DATABASE_URL. Both clean up on drop, also on failure.
//! Unreachable or missing Postgres fails the test; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::Connection;

use crate::service::free_port;

/// A private PostgreSQL server: `initdb` into a temp dir, `pg_ctl` on a free loopback port, trust
/// auth, its socket in the same dir. Run as the `postgres` user when we are root.
pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

impl OwnPostgres {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("faults-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir for Postgres");
        let mut server = Self {
            bin: bin_dir(),
            dir,
            port: free_port(),
            running: false,
        };
        if is_root() {
            let mut chown = Command::new("chown");
            chown.arg("postgres:postgres").arg(server.dir.path());
            run(chown, "chown the Postgres dir to postgres");
        }
        let mut initdb = server.command("initdb");
        initdb
            .arg("-D")
            .arg(server.data())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        run(initdb, "initdb");
        server.start_again();
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let mut start = self.pg_ctl();
        start
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        run(start, "pg_ctl start");
        self.running = true;
    }

    /// `pg_ctl stop -m fast`: sessions are cut, open transactions roll back.
    pub fn stop(&mut self) {
        self.stop_with("fast");
    }

    fn stop_with(&mut self, mode: &str) {
        let mut stop = self.pg_ctl();
        stop.args(["-m", mode, "-w", "-t", "30", "stop"]);
        run(stop, "pg_ctl stop");
        self.running = false;
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn pg_ctl(&self) -> Command {
        let mut command = self.command("pg_ctl");
        command.arg("-D").arg(self.data());
        command
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("--- own Postgres log (last lines, newest first) ---");
            tail.iter().for_each(|line| eprintln!("{line}"));
        }
        if self.running {
            let mut stop = self.pg_ctl();
            stop.args(["-m", "immediate", "-w", "-t", "30", "stop"]);
            let _ = stop.output();
        }
        // The TempDir removes the data dir after this.
    }
}

/// The newest server binaries in /usr/lib/postgresql/*/bin.
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries in {}/*/bin: this test needs initdb and pg_ctl \
             and fails rather than skip",
            root.display()
        ),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh database on the shared server at TEST_DATABASE_URL, dropped on drop.
pub struct SharedDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl SharedDatabase {
    pub async fn create() -> Self {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need the Postgres server at TEST_DATABASE_URL ({admin_url}): \
                     {e}; they fail rather than skip"
                )
            });
        let name = format!("alipay_faults_{}", unique());
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Self {
            url: url.into(),
            admin_url,
            name,
        }
    }
}

fn unique() -> String {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for SharedDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("drop database if exists {} with (force)", self.name);
        // Drop may run inside the test's runtime: wait for the drop on a thread with its own.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&sql).execute(&mut admin).await;
                }
            });
        });
        let _ = dropper.join();
    }
}
