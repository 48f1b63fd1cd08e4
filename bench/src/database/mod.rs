//! The benchmark's database: a fresh one to run on (a temp SQLite file, a new file, or a uniquely
//! named Postgres database dropped afterwards), and checking it afterwards; `seed` does the same
//! for the seed peer's schema.

mod check;
pub mod seed;

pub use check::{check_run, rows_per_commit, Check};

use std::path::PathBuf;

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Connection, PgConnection, PgPool, SqlitePool};

/// A database made for one run; `drop` removes it (the temp dir goes with the value).
pub struct FreshDatabase {
    pub url: String,
    /// What the report calls it: `sqlite (temp file)`, `postgres`, …
    pub kind: String,
    postgres: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl FreshDatabase {
    /// No URL: a SQLite file in a temp dir. `sqlite:PATH`: a new file there (to measure another
    /// disk). `postgres://…`: a new database on that server, named `alipay_notify_bench_<hex>`.
    pub async fn create(url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            None => {
                let dir = tempfile::tempdir()?;
                Ok(Self {
                    url: format!("sqlite:{}", dir.path().join("bench.db").display()),
                    kind: "sqlite (temp file)".into(),
                    postgres: None,
                    _dir: Some(dir),
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let options: SqliteConnectOptions = url.parse()?;
                let path = options.get_filename().to_owned();
                anyhow::ensure!(
                    !path.exists(),
                    "{} exists; the benchmark needs a new file",
                    path.display()
                );
                Ok(Self {
                    url: url.to_owned(),
                    kind: format!("sqlite ({})", path.display()),
                    postgres: None,
                    _dir: None,
                })
            }
            Some(url) => Self::create_postgres(url).await,
        }
    }

    async fn create_postgres(admin_url: &str) -> anyhow::Result<Self> {
        let mut admin = PgConnection::connect(admin_url)
            .await
            .context("connecting to the Postgres server named by --database")?;
        let mut suffix = [0u8; 6];
        aws_lc_rs::rand::fill(&mut suffix).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("alipay_notify_bench_{hex}");
        sqlx::query(&format!("create database {name}"))
            .execute(&mut admin)
            .await?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&name);
        Ok(Self {
            url: url.into(),
            kind: "postgres".into(),
            postgres: Some((admin_url.to_owned(), name)),
            _dir: None,
        })
    }

    /// The folder of the SQLite file, where its commits are made durable.
    pub fn sqlite_dir(&self) -> Option<PathBuf> {
        let options: SqliteConnectOptions = self.url.parse().ok()?;
        let dir = options.get_filename().parent()?;
        Some(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_owned()
        })
    }

    /// Drops the Postgres database (the SQLite temp dir goes when `self` does).
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some((admin_url, name)) = &self.postgres {
            let mut admin = PgConnection::connect(admin_url).await?;
            sqlx::query(&format!("drop database if exists {name} with (force)"))
                .execute(&mut admin)
                .await?;
        }
        Ok(())
    }
}

/// Which rows belong to this run: `out_trade_no like` patterns.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The orders notified.
    pub sent: String,
    /// Orders seeded but never notified: they must stay pending.
    pub controls: String,
    /// Everything of this run, or `%` when the database is fresh (nothing else may be there).
    pub all: String,
}

/// Read-only access for the checks; plain SQL valid on both backends.
enum Reader {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Reader {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(if url.starts_with("sqlite:") {
            let options: SqliteConnectOptions = url.parse()?;
            Self::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.read_only(true))
                    .await?,
            )
        } else {
            Self::Postgres(PgPoolOptions::new().max_connections(1).connect(url).await?)
        })
    }

    async fn count(&self, sql: &str, pattern: &str) -> anyhow::Result<i64> {
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(pattern)
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(sql)
                    .bind(pattern)
                    .fetch_one(pool)
                    .await?
            }
        })
    }

    async fn strings(&self, sql: &str, pattern: &str) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(sql)
                    .bind(pattern)
                    .fetch_all(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_scalar(sql)
                    .bind(pattern)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    async fn close(self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}
