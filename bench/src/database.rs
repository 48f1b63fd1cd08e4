//! The benchmark's database: a fresh one to run on (a temp SQLite file, a new file, or a uniquely
//! named Postgres database dropped afterwards), and checking it afterwards.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
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

/// One expectation about the database after the run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: &'static str,
    pub expected: i64,
    pub actual: i64,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.expected == self.actual
    }
}

/// What the database must hold: every sent order paid exactly once (one `applied` audit row each),
/// nothing else paid, one audit row per request, every repeat a `duplicate`, no anomaly.
pub async fn check(
    url: &str,
    scope: &Scope,
    sent_orders: i64,
    requests: i64,
) -> anyhow::Result<Vec<Check>> {
    let db = Reader::connect(url).await?;
    let paid = "select count(*) from payment_order where out_trade_no like $1 and status = 'paid'";
    let rows = "select count(*) from notification where out_trade_no like $1";
    let verdict = |v| {
        format!("select count(*) from notification where out_trade_no like $1 and verdict = '{v}'")
    };
    let distinct_applied = "select count(distinct out_trade_no) from notification \
         where out_trade_no like $1 and verdict = 'applied'";
    let checks = vec![
        Check {
            what: "sent orders paid",
            expected: sent_orders,
            actual: db.count(paid, &scope.sent).await?,
        },
        Check {
            what: "other orders paid",
            expected: 0,
            actual: db.count(paid, &scope.controls).await?,
        },
        Check {
            what: "paid orders in scope",
            expected: sent_orders,
            actual: db.count(paid, &scope.all).await?,
        },
        Check {
            what: "audit rows (one per request)",
            expected: requests,
            actual: db.count(rows, &scope.all).await?,
        },
        Check {
            what: "applied rows",
            expected: sent_orders,
            actual: db.count(&verdict("applied"), &scope.all).await?,
        },
        Check {
            what: "orders with an applied row",
            expected: sent_orders,
            actual: db.count(distinct_applied, &scope.sent).await?,
        },
        Check {
            what: "duplicate rows",
            expected: requests - sent_orders,
            actual: db.count(&verdict("duplicate"), &scope.all).await?,
        },
        Check {
            what: "anomaly rows",
            expected: 0,
            actual: db.count(&verdict("anomaly"), &scope.all).await?,
        },
    ];
    db.close().await;
    Ok(checks)
}

/// Audit rows per transaction that wrote them: how much group commit happened. Postgres only,
/// where rows inserted by one transaction share its `xmin`.
pub async fn rows_per_commit(url: &str, scope: &Scope) -> anyhow::Result<Option<f64>> {
    let Reader::Postgres(pool) = Reader::connect(url).await? else {
        return Ok(None);
    };
    let ratio: Option<f64> = sqlx::query_scalar(
        "select count(*)::float8 / nullif(count(distinct xmin::text), 0) from notification \
         where out_trade_no like $1",
    )
    .bind(&scope.all)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(ratio)
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

    async fn close(self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}
