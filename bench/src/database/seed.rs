//! The seed peer's database (seed-flask's `schema.sql`: `orders` with `numeric(12,2)` yuan, and a
//! trigger that records in `order_paid_events` every UPDATE leaving an order paid): seeding the
//! plan's orders straight into it, and checking it afterwards as [`super::check`] checks ours.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use sqlx::{Connection, PgConnection};

use super::{Check, Scope};
use crate::notifications;
use crate::plan::Plan;
use alipay_notify::money::Amount;

/// An amount as the seed's `numeric(12,2)` column takes it: yuan with exactly two decimals, made
/// from the integer fen and sent as text, never through a float (the seed compares it with the
/// notification's `total_amount` as a `Decimal`, so a cent off would refuse the payment).
pub fn yuan(amount: Amount) -> String {
    amount.to_string()
}

/// Loads `schema` into the fresh database at `url` and inserts every order of the plan (sent and
/// controls) as pending, in one statement.
pub async fn prepare(url: &str, schema: &Path, plan: &Plan) -> anyhow::Result<()> {
    let sql = std::fs::read_to_string(schema)
        .with_context(|| format!("reading the seed's schema {}", schema.display()))?;
    let mut db = PgConnection::connect(url)
        .await
        .context("connecting to the seed's database")?;
    sqlx::raw_sql(&sql)
        .execute(&mut db)
        .await
        .with_context(|| format!("loading {}", schema.display()))?;
    let orders = plan.all_orders();
    let (numbers, amounts): (Vec<String>, Vec<String>) = orders
        .iter()
        .map(|o| (o.out_trade_no.clone(), yuan(o.amount)))
        .unzip();
    let inserted = sqlx::query(
        "insert into orders (out_trade_no, amount) \
         select * from unnest($1::text[], $2::text[]::numeric[])",
    )
    .bind(&numbers)
    .bind(&amounts)
    .execute(&mut db)
    .await
    .context("inserting the plan's orders into the seed's database")?
    .rows_affected();
    anyhow::ensure!(
        inserted == orders.len() as u64,
        "inserted {inserted} of {} orders",
        orders.len()
    );
    db.close().await?;
    Ok(())
}

const PAID: &str = "select count(*) from orders where out_trade_no like $1 and status = 'paid'";

/// What the seed's database must hold when every request was answered `success`: every sent order
/// paid once (one paid event each, by the trigger) by its own notification, nothing else paid,
/// every amount still the planned one.
pub async fn check(url: &str, scope: &Scope, plan: &Plan) -> anyhow::Result<Vec<Check>> {
    let mut db = PgConnection::connect(url)
        .await
        .context("connecting to the seed's database to check it")?;
    let sent = plan.sent.len() as i64;
    let paid: Vec<(String, Option<String>)> = sqlx::query_as(
        "select out_trade_no, trade_no from orders where out_trade_no like $1 and status = 'paid'",
    )
    .bind(&scope.sent)
    .fetch_all(&mut db)
    .await?;
    let by_own_notification = paid
        .iter()
        .filter(|(no, trade_no)| trade_no.as_deref() == Some(&notifications::trade_no(no)))
        .count() as i64;
    let amounts: Vec<(String, i64)> = sqlx::query_as(
        "select out_trade_no, (amount * 100)::int8 from orders where out_trade_no like $1",
    )
    .bind(&scope.all)
    .fetch_all(&mut db)
    .await?;
    let planned: HashMap<String, i64> = plan
        .all_orders()
        .into_iter()
        .map(|o| (o.out_trade_no, o.amount.fen()))
        .collect();
    let as_planned = amounts
        .iter()
        .filter(|(no, fen)| planned.get(no) == Some(fen))
        .count() as i64;
    let paid_twice = "select count(*) from (select out_trade_no from order_paid_events \
         where out_trade_no like $1 group by out_trade_no having count(*) > 1) twice";
    let checks = vec![
        Check::exactly("sent orders paid", sent, paid.len() as i64),
        Check::exactly(
            "other orders paid",
            0,
            count(&mut db, PAID, &scope.controls).await?,
        ),
        Check::exactly(
            "paid orders in scope",
            sent,
            count(&mut db, PAID, &scope.all).await?,
        ),
        Check::exactly("paid by their notification", sent, by_own_notification),
        Check::exactly(
            "orders at their planned amount",
            planned.len() as i64,
            as_planned,
        ),
        Check::exactly(
            "paid events (one per order)",
            sent,
            count(
                &mut db,
                "select count(*) from order_paid_events where out_trade_no like $1",
                &scope.all,
            )
            .await?,
        ),
        Check::exactly(
            "orders paid more than once",
            0,
            count(&mut db, paid_twice, &scope.all).await?,
        ),
    ];
    db.close().await?;
    Ok(checks)
}

async fn count(db: &mut PgConnection, sql: &str, pattern: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).bind(pattern).fetch_one(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::FreshDatabase;
    use alipay_notify::money::MAX_FEN;

    #[test]
    fn yuan_is_exact_with_two_decimals() {
        for (fen, text) in [
            (1, "0.01"),
            (10, "0.10"),
            (100, "1.00"),
            (137, "1.37"),
            (99_999, "999.99"),
            (MAX_FEN, "100000000.00"),
        ] {
            assert_eq!(yuan(Amount::from_fen(fen).unwrap()), text);
        }
    }

    #[test]
    fn every_amount_fits_numeric_12_2() {
        // numeric(12,2): at most 10 digits before the point.
        let largest = yuan(Amount::from_fen(MAX_FEN).unwrap());
        let (whole, fraction) = largest.split_once('.').unwrap();
        assert!(whole.len() <= 10 && fraction.len() == 2, "{largest}");
    }

    /// The seed's own statement (its db.py), for one order.
    async fn pay_as_the_seed(db: &mut PgConnection, no: &str, fen: i64) {
        sqlx::query(
            "update orders set status = 'paid', trade_no = $1, paid_at = now() \
             where out_trade_no = $2 and status = 'pending' and amount = $3::numeric",
        )
        .bind(notifications::trade_no(no))
        .bind(no)
        .bind(yuan(Amount::from_fen(fen).unwrap()))
        .execute(db)
        .await
        .unwrap();
    }

    /// Seeds a plan on the tests' Postgres with the seed's schema, pays the sent orders with the
    /// seed's statement (amounts compared as numeric, so the conversion must be exact), checks;
    /// then a paid order re-updated must fail the check.
    /// Needs the seed's folder beside the checkout; fails loudly without it.
    #[tokio::test]
    async fn orders_paid_by_the_seeds_statement_pass_and_a_second_payment_fails() {
        let schema = crate::peer::seed_dir_for_tests()
            .map(|d| d.join("schema.sql"))
            .expect("no seed-flask folder (set SEED_FLASK_DIR)");
        let admin = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let database = FreshDatabase::create(Some(&admin)).await.unwrap();
        let plan = Plan::new(20, 0.0).unwrap();
        prepare(&database.url, &schema, &plan).await.unwrap();
        let mut db = PgConnection::connect(&database.url).await.unwrap();
        for order in &plan.sent {
            pay_as_the_seed(&mut db, &order.out_trade_no, order.amount.fen()).await;
        }

        let clean = check(&database.url, &plan.scope(true), &plan)
            .await
            .unwrap();

        sqlx::query("update orders set status = 'paid' where out_trade_no = $1")
            .bind(&plan.sent[0].out_trade_no)
            .execute(&mut db)
            .await
            .unwrap();
        db.close().await.unwrap();
        let checks = check(&database.url, &plan.scope(true), &plan)
            .await
            .unwrap();
        database.remove().await.unwrap();
        assert_eq!(Check::failed(&clean), Vec::<&str>::new(), "{clean:#?}");
        assert_eq!(
            Check::failed(&checks),
            vec!["paid events (one per order)", "orders paid more than once"]
        );
    }
}
