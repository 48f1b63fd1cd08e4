//! Checking the database after a run: what it must hold, strictly when every request was
//! answered `success`, and the looser promise when some were not.

use std::collections::HashSet;

use serde::Serialize;

use super::{Reader, Scope};
use crate::load::LoadResult;
use crate::plan::Plan;

/// One expectation about the database after the run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: &'static str,
    pub expected: i64,
    pub actual: i64,
    /// How `actual` must compare with `expected`.
    pub bound: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    Exactly,
    AtLeast,
    AtMost,
}

impl Check {
    pub(super) fn exactly(what: &'static str, expected: i64, actual: i64) -> Self {
        Self {
            what,
            expected,
            actual,
            bound: Bound::Exactly,
        }
    }

    fn at_least(what: &'static str, expected: i64, actual: i64) -> Self {
        Self {
            bound: Bound::AtLeast,
            ..Self::exactly(what, expected, actual)
        }
    }

    fn at_most(what: &'static str, expected: i64, actual: i64) -> Self {
        Self {
            bound: Bound::AtMost,
            ..Self::exactly(what, expected, actual)
        }
    }

    /// What each failed check was about, for tests to compare.
    #[cfg(test)]
    pub fn failed(checks: &[Check]) -> Vec<&'static str> {
        checks
            .iter()
            .filter(|c| !c.passed())
            .map(|c| c.what)
            .collect()
    }

    pub fn passed(&self) -> bool {
        match self.bound {
            Bound::Exactly => self.actual == self.expected,
            Bound::AtLeast => self.actual >= self.expected,
            Bound::AtMost => self.actual <= self.expected,
        }
    }

    /// `expected`, with its bound in words unless exact.
    pub fn expectation(&self) -> String {
        match self.bound {
            Bound::Exactly => self.expected.to_string(),
            Bound::AtLeast => format!("at least {}", self.expected),
            Bound::AtMost => format!("at most {}", self.expected),
        }
    }
}

const PAID: &str =
    "select count(*) from payment_order where out_trade_no like $1 and status = 'paid'";
const ROWS: &str = "select count(*) from notification where out_trade_no like $1";
const ANOMALIES: &str =
    "select count(*) from notification where out_trade_no like $1 and verdict = 'anomaly'";
const APPLIED: &str =
    "select count(*) from notification where out_trade_no like $1 and verdict = 'applied'";

/// The strict check when every request was answered `success`; otherwise, given the orders
/// answered `success` (open loop), what those replies promised. A closed loop that did not get
/// `success` everywhere keeps the strict check, and fails it.
pub async fn check_run(
    url: &str,
    scope: &Scope,
    plan: &Plan,
    load: &LoadResult,
    answered: Option<HashSet<String>>,
) -> anyhow::Result<Vec<Check>> {
    let (requests, success) = (load.requests() as i64, load.success as i64);
    match answered {
        Some(answered) if success < requests => {
            check_answered(url, scope, &answered, requests, success).await
        }
        _ => check(url, scope, plan.sent.len() as i64, requests).await,
    }
}

/// What the database must hold when every request was answered `success`: every sent order paid
/// exactly once (one `applied` audit row each), nothing else paid, one audit row per request,
/// every repeat a `duplicate`, no anomaly.
pub async fn check(
    url: &str,
    scope: &Scope,
    sent_orders: i64,
    requests: i64,
) -> anyhow::Result<Vec<Check>> {
    let db = Reader::connect(url).await?;
    let distinct_applied = "select count(distinct out_trade_no) from notification \
         where out_trade_no like $1 and verdict = 'applied'";
    let duplicates =
        "select count(*) from notification where out_trade_no like $1 and verdict = 'duplicate'";
    let checks = vec![
        Check::exactly(
            "sent orders paid",
            sent_orders,
            db.count(PAID, &scope.sent).await?,
        ),
        Check::exactly(
            "other orders paid",
            0,
            db.count(PAID, &scope.controls).await?,
        ),
        Check::exactly(
            "paid orders in scope",
            sent_orders,
            db.count(PAID, &scope.all).await?,
        ),
        Check::exactly(
            "audit rows (one per request)",
            requests,
            db.count(ROWS, &scope.all).await?,
        ),
        Check::exactly(
            "applied rows",
            sent_orders,
            db.count(APPLIED, &scope.all).await?,
        ),
        Check::exactly(
            "orders with an applied row",
            sent_orders,
            db.count(distinct_applied, &scope.sent).await?,
        ),
        Check::exactly(
            "duplicate rows",
            requests - sent_orders,
            db.count(duplicates, &scope.all).await?,
        ),
        Check::exactly("anomaly rows", 0, db.count(ANOMALIES, &scope.all).await?),
    ];
    db.close().await;
    Ok(checks)
}

/// What the database must hold when some requests were not answered `success` (refused under
/// overload, or timed out; the bench never retries): every order answered `success` by any of
/// its copies paid, nothing paid twice, nothing paid that was not sent, controls pending, no
/// anomaly. An order never answered `success` may be paid or pending: a request can commit and
/// its reply still be lost to a timeout. A `success` whose order is not paid is a lost payment,
/// and fails the first check (its numbers are printed to stderr).
pub async fn check_answered(
    url: &str,
    scope: &Scope,
    answered: &HashSet<String>,
    requests: i64,
    successes: i64,
) -> anyhow::Result<Vec<Check>> {
    let db = Reader::connect(url).await?;
    let paid_sent: HashSet<String> = db
        .strings(
            "select out_trade_no from payment_order where out_trade_no like $1 and status = 'paid'",
            &scope.sent,
        )
        .await?
        .into_iter()
        .collect();
    let mut lost: Vec<&String> = answered.difference(&paid_sent).collect();
    if !lost.is_empty() {
        lost.sort();
        eprintln!(
            "answered `success` but not paid ({}): {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
    }
    let paid_all = db.count(PAID, &scope.all).await?;
    let applied_twice = "select count(*) from (select out_trade_no from notification \
         where out_trade_no like $1 and verdict = 'applied' \
         group by out_trade_no having count(*) > 1) twice";
    let rows = db.count(ROWS, &scope.all).await?;
    let answered_count = answered.len() as i64;
    let checks = vec![
        Check::exactly(
            "orders answered success, paid",
            answered_count,
            answered_count - lost.len() as i64,
        ),
        Check::at_least("sent orders paid", answered_count, paid_sent.len() as i64),
        Check::exactly(
            "other orders paid",
            0,
            db.count(PAID, &scope.controls).await?,
        ),
        Check::exactly("paid orders not sent", 0, paid_all - paid_sent.len() as i64),
        Check::exactly(
            "applied rows (one per paid)",
            paid_all,
            db.count(APPLIED, &scope.all).await?,
        ),
        Check::exactly(
            "orders applied twice",
            0,
            db.count(applied_twice, &scope.all).await?,
        ),
        Check::at_least("audit rows (one per success)", successes, rows),
        Check::at_most("audit rows (one per request)", requests, rows),
        Check::exactly("anomaly rows", 0, db.count(ANOMALIES, &scope.all).await?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, SqliteConnection};

    /// A SQLite file with the two tables the checks read, holding `orders` (`out_trade_no`,
    /// status) and one audit row per `rows` (`out_trade_no`, verdict).
    async fn database(
        orders: &[(&str, &str)],
        rows: &[(&str, &str)],
    ) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}?mode=rwc", dir.path().join("check.db").display());
        let mut db = SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "create table payment_order (out_trade_no text primary key, status text not null);
             create table notification (id integer primary key, out_trade_no text, verdict text);",
        )
        .execute(&mut db)
        .await
        .unwrap();
        for (no, status) in orders {
            sqlx::query("insert into payment_order values ($1, $2)")
                .bind(no)
                .bind(status)
                .execute(&mut db)
                .await
                .unwrap();
        }
        for (no, verdict) in rows {
            sqlx::query("insert into notification (out_trade_no, verdict) values ($1, $2)")
                .bind(no)
                .bind(verdict)
                .execute(&mut db)
                .await
                .unwrap();
        }
        db.close().await.unwrap();
        (dir, url)
    }

    fn scope() -> Scope {
        Scope {
            sent: "BENCHxN%".into(),
            controls: "BENCHxC%".into(),
            all: "%".into(),
        }
    }

    fn answered(orders: &[&str]) -> HashSet<String> {
        orders.iter().map(|o| o.to_string()).collect()
    }

    /// N0 answered `success` twice (a repeat); N1 committed but its reply timed out; N2 refused.
    const ORDERS: [(&str, &str); 4] = [
        ("BENCHxN0", "paid"),
        ("BENCHxN1", "paid"),
        ("BENCHxN2", "pending"),
        ("BENCHxC0", "pending"),
    ];
    const ROWS: [(&str, &str); 3] = [
        ("BENCHxN0", "applied"),
        ("BENCHxN0", "duplicate"),
        ("BENCHxN1", "applied"),
    ];

    #[tokio::test]
    async fn an_order_paid_without_a_success_reply_passes() {
        let (_dir, url) = database(&ORDERS, &ROWS).await;

        let checks = check_answered(&url, &scope(), &answered(&["BENCHxN0"]), 4, 2)
            .await
            .unwrap();

        assert_eq!(Check::failed(&checks), Vec::<&str>::new(), "{checks:#?}");
    }

    #[tokio::test]
    async fn a_success_reply_for_an_order_left_pending_fails() {
        let (_dir, url) = database(&ORDERS, &ROWS).await;

        let lost = answered(&["BENCHxN0", "BENCHxN2"]);
        let checks = check_answered(&url, &scope(), &lost, 4, 2).await.unwrap();

        assert_eq!(
            Check::failed(&checks),
            vec!["orders answered success, paid"]
        );
    }

    #[tokio::test]
    async fn an_order_applied_twice_fails() {
        let rows = [ROWS.as_slice(), &[("BENCHxN0", "applied")]].concat();
        let (_dir, url) = database(&ORDERS, &rows).await;

        let checks = check_answered(&url, &scope(), &answered(&["BENCHxN0"]), 4, 2)
            .await
            .unwrap();

        assert!(
            Check::failed(&checks).contains(&"orders applied twice"),
            "{checks:#?}"
        );
    }

    #[tokio::test]
    async fn a_control_order_paid_fails() {
        let orders = [&ORDERS[..3], &[("BENCHxC0", "paid")]].concat();
        let (_dir, url) = database(&orders, &ROWS).await;

        let checks = check_answered(&url, &scope(), &answered(&["BENCHxN0"]), 4, 2)
            .await
            .unwrap();

        assert!(
            Check::failed(&checks).contains(&"other orders paid"),
            "{checks:#?}"
        );
    }

    #[tokio::test]
    async fn the_strict_check_fails_an_order_paid_without_a_success_reply() {
        let (_dir, url) = database(&ORDERS, &ROWS).await;

        let checks = check(&url, &scope(), 3, 4).await.unwrap();

        assert!(
            Check::failed(&checks).contains(&"sent orders paid"),
            "{checks:#?}"
        );
    }
}
