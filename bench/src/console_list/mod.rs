//! `alipay-notify-bench console-list`: the console's order list and overview on a million
//! orders. Seeds a database through the service's own migrations, then times the exact store
//! calls the console makes (`order_page(filter, cursor, 50)` for each kind of filter, and the
//! overview's counts), each warmed up and repeated, and prints median and p95 per database.

mod seed;
mod shapes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};
use time::OffsetDateTime;

use alipay_notify::orders::events::Subscriptions;
use alipay_notify::orders::OrderStore;

use crate::database::FreshDatabase;
use shapes::Measured;

/// Bumped when the seeded data change, so a kept SQLite file of older data is not reused.
const SEED_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, clap::Args)]
pub struct ConsoleListArgs {
    /// Orders to seed.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Which databases to seed and time, in one run.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    database: Which,
    /// The Postgres server to create the benchmark's own database on (dropped afterwards).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// The SQLite file, kept and reused while it holds --rows orders of this seed; default
    /// `console-bench/orders-v<N>-<rows>.db` in the target directory this binary was built in.
    #[arg(long)]
    sqlite_file: Option<PathBuf>,
    /// Timed calls per shape after two warm-up calls (fewer if a shape takes over 20 s in all).
    #[arg(long, default_value_t = 30)]
    repetitions: usize,
    /// Seed the SQLite file again even if it looks complete.
    #[arg(long)]
    reseed: bool,
}

/// What one database measured.
pub struct DatabaseRun {
    pub name: &'static str,
    pub seed_seconds: Option<f64>,
    pub results: Vec<(String, Measured)>,
}

impl ConsoleListArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let mut runs = Vec::new();
        if matches!(self.database, Which::Sqlite | Which::Both) {
            runs.push(self.run_sqlite().await.context("SQLite")?);
        }
        if matches!(self.database, Which::Postgres | Which::Both) {
            runs.push(self.run_postgres().await.context("Postgres")?);
        }
        println!("{}", shapes::table(self.rows, &runs));
        Ok(())
    }

    fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.sqlite_file {
            return Ok(path.clone());
        }
        let exe = std::env::current_exe().context("locating this binary")?;
        // target/<profile>/alipay-notify-bench → target/console-bench/
        let target = exe
            .parent()
            .and_then(Path::parent)
            .context("this binary has no target directory")?;
        let name = format!("orders-v{SEED_VERSION}-{}.db", self.rows);
        Ok(target.join("console-bench").join(name))
    }

    async fn run_sqlite(&self) -> anyhow::Result<DatabaseRun> {
        let path = self.sqlite_path()?;
        let url = format!("sqlite:{}", path.display());
        let complete = !self.reseed && path.exists() && count(&url).await.ok() == Some(self.rows);
        if !complete {
            for suffix in ["", "-wal", "-shm"] {
                let file = PathBuf::from(format!("{}{suffix}", path.display()));
                if file.exists() {
                    std::fs::remove_file(&file)?;
                }
            }
        }
        let store = open(&url).await?;
        let seed_seconds = if complete {
            eprintln!("reusing {} ({} orders)", path.display(), self.rows);
            None
        } else {
            let bar = bar(self.rows, "sqlite");
            let seconds = seed::sqlite(&url, self.rows, OffsetDateTime::now_utc(), &bar).await?;
            bar.finish_and_clear();
            eprintln!("seeded {} in {seconds:.0} s", path.display());
            Some(seconds)
        };
        let results = shapes::measure(store.as_ref(), self.repetitions).await?;
        Ok(DatabaseRun {
            name: "SQLite",
            seed_seconds,
            results,
        })
    }

    async fn run_postgres(&self) -> anyhow::Result<DatabaseRun> {
        let database = FreshDatabase::create(Some(&self.postgres)).await?;
        let run = self.run_postgres_on(&database.url).await;
        let removed = database.remove().await;
        let run = run?;
        removed.context("dropping the benchmark database")?;
        Ok(run)
    }

    async fn run_postgres_on(&self, url: &str) -> anyhow::Result<DatabaseRun> {
        let store = open(url).await?;
        let bar = bar(self.rows, "postgres");
        let seconds = seed::postgres(url, self.rows, OffsetDateTime::now_utc(), &bar).await?;
        bar.finish_and_clear();
        eprintln!("seeded Postgres in {seconds:.0} s");
        let results = shapes::measure(store.as_ref(), self.repetitions).await?;
        Ok(DatabaseRun {
            name: "Postgres",
            seed_seconds: Some(seconds),
            results,
        })
    }
}

/// The store as the service opens it, migrated.
async fn open(url: &str) -> anyhow::Result<Arc<dyn OrderStore>> {
    let store = alipay_notify::orders::connect(url, 4, Subscriptions::none()).await?;
    store.migrate().await?;
    Ok(store)
}

async fn count(url: &str) -> anyhow::Result<usize> {
    let options: SqliteConnectOptions = url.parse()?;
    let mut conn = SqliteConnection::connect_with(&options.read_only(true)).await?;
    let n: i64 = sqlx::query_scalar("select count(*) from payment_order")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n as usize)
}

fn bar(len: usize, what: &'static str) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{msg:<8} [{bar:40}] {pos}/{len} {per_sec:>12} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> ");
    ProgressBar::new(len as u64)
        .with_style(style)
        .with_message(what)
}

/// Runs `call` twice to warm up, then `repetitions` times (fewer once 20 s are spent, at least
/// five), and returns the rows the last call found and the times.
async fn time<F, Fut>(repetitions: usize, mut call: F) -> anyhow::Result<Measured>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<usize>>,
{
    for _ in 0..2 {
        call().await?;
    }
    let budget = Instant::now();
    let mut times = Vec::with_capacity(repetitions);
    let mut rows = 0;
    while times.len() < repetitions
        && (times.len() < 5 || budget.elapsed() < Duration::from_secs(20))
    {
        let started = Instant::now();
        rows = call().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Measured::new(rows, times))
}
