//! A million orders of realistic shape, written in bulk: SQLite through multi-row inserts in big
//! transactions, Postgres through `unnest` arrays. The same seed gives the same orders.

use std::time::Instant;

use indicatif::ProgressBar;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, QueryBuilder, Sqlite, SqliteConnection};
use time::{Duration, OffsetDateTime};

/// Orders are spread over this many days before the seed's `now`.
pub const DAYS: i64 = 180;
/// Notifications are seeded for the paid orders of the last days only: enough for the
/// overview's 24-hour chart and anomaly count to read a table of realistic shape.
const NOTIFIED_DAYS: i64 = 30;
/// Rows per SQLite statement (15 binds each, under SQLite's 32,766) and per Postgres statement.
const SQLITE_ROWS: usize = 2_000;
const POSTGRES_ROWS: usize = 10_000;
/// Rows per transaction.
const TX_ROWS: usize = 100_000;
/// Distinct buyers: a buyer_id finds a handful of orders, as a returning customer's does.
const BUYERS: u64 = 200_000;
const SUBJECTS: [&str; 6] = [
    "会员月卡",
    "Coffee beans 1 kg",
    "年度订阅 Pro",
    "T-shirt (M)",
    "充值 100 元",
    "Gift card",
];

/// One order as the service would have stored it.
pub struct SeedOrder {
    pub out_trade_no: String,
    pub subject: &'static str,
    pub total_fen: i64,
    pub product: &'static str,
    pub status: &'static str,
    pub trade_no: Option<String>,
    pub buyer_id: Option<String>,
    pub alipay_trade_status: Option<&'static str>,
    pub refunded_fen: i64,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub paid_at: Option<OffsetDateTime>,
    pub closed_at: Option<OffsetDateTime>,
}

impl SeedOrder {
    fn updated_at(&self) -> OffsetDateTime {
        self.closed_at.or(self.paid_at).unwrap_or(self.created_at)
    }
}

/// The orders, oldest first: created_at spread over [`DAYS`] up to `now`; statuses 70% paid,
/// 20% closed, 8% pending, 2% refunded; products page 40%, wap 30%, qr 15%, app 15%; amounts
/// 0.01–5,000.00 yuan, log-uniform (half under 7 yuan, 1.7% over 4,000).
pub struct Generator {
    rng: fastrand::Rng,
    now: OffsetDateTime,
    rows: usize,
    next: usize,
}

impl Generator {
    pub fn new(rows: usize, now: OffsetDateTime) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(16),
            now,
            rows,
            next: 0,
        }
    }

    fn order(&mut self, i: usize) -> SeedOrder {
        let rng = &mut self.rng;
        let span = Duration::days(DAYS).whole_microseconds() as i64;
        let step = span / self.rows as i64;
        let micros = span - (i as i64 * step) - rng.i64(0..step.max(1));
        let created_at = self.now - Duration::microseconds(micros);
        let stamp = created_at
            .format(time::macros::format_description!(
                "[year][month][day][hour][minute][second]"
            ))
            .expect("a valid date formats");
        // An odd multiplier not divisible by 5 is a bijection modulo 10^12: unique numbers.
        let suffix = (i as u64).wrapping_mul(7_919_000_003) % 1_000_000_000_000;
        let status = match rng.u32(0..100) {
            0..70 => "paid",
            70..90 => "closed",
            90..98 => "pending",
            _ => "refunded",
        };
        let product = match rng.u32(0..100) {
            0..40 => "page",
            40..70 => "wap",
            70..85 => "qr",
            _ => "app",
        };
        let total_fen = (rng.f64() * 500_000f64.ln()).exp().round() as i64;
        let expires_at = created_at + Duration::minutes(30);
        let paid = matches!(status, "paid" | "refunded");
        let paid_at = paid.then(|| created_at + Duration::seconds(rng.i64(5..600)));
        let trade_no = paid_at.map(|at| {
            let day = at
                .format(time::macros::format_description!("[year][month][day]"))
                .expect("a valid date formats");
            format!("{day}2200{i:016}")
        });
        let buyer_id = paid.then(|| format!("2088{:012}", 102_000_000_000 + rng.u64(0..BUYERS)));
        SeedOrder {
            out_trade_no: format!("{stamp}{suffix:012}"),
            subject: SUBJECTS[rng.usize(0..SUBJECTS.len())],
            total_fen: total_fen.clamp(1, 500_000),
            product,
            status,
            trade_no,
            buyer_id,
            alipay_trade_status: match status {
                "paid" => Some("TRADE_SUCCESS"),
                "refunded" => Some("TRADE_CLOSED"),
                _ => None,
            },
            refunded_fen: if status == "refunded" { total_fen } else { 0 },
            created_at,
            expires_at,
            paid_at,
            closed_at: match status {
                "closed" => Some(expires_at + Duration::seconds(rng.i64(0..120))),
                "refunded" => paid_at.map(|at| at + Duration::days(rng.i64(1..14))),
                _ => None,
            },
        }
    }

    /// The next batch of up to `n` orders, oldest first.
    fn batch(&mut self, n: usize) -> Vec<SeedOrder> {
        let end = (self.next + n).min(self.rows);
        let orders = (self.next..end).map(|i| self.order(i)).collect();
        self.next = end;
        orders
    }
}

/// The notifications of the last [`NOTIFIED_DAYS`]: one `applied` per paid order, a duplicate
/// for one in five, and an anomaly for one in 500 (every other one reviewed).
fn notifications(
    orders: &[SeedOrder],
    now: OffsetDateTime,
) -> Vec<(String, &'static str, Vec<u8>, OffsetDateTime)> {
    let since = now - Duration::days(NOTIFIED_DAYS);
    let mut rows = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let Some(paid_at) = order.paid_at.filter(|_| order.created_at >= since) else {
            continue;
        };
        let raw = format!(
            "notify_id={i:032x}&out_trade_no={}&trade_no={}&trade_status=TRADE_SUCCESS&total_amount={}",
            order.out_trade_no,
            order.trade_no.as_deref().unwrap_or_default(),
            order.total_fen
        )
        .into_bytes();
        rows.push((order.out_trade_no.clone(), "applied", raw.clone(), paid_at));
        if i % 5 == 0 {
            rows.push((
                order.out_trade_no.clone(),
                "duplicate",
                raw.clone(),
                paid_at + Duration::minutes(4),
            ));
        }
        if i % 500 == 0 {
            rows.push((
                order.out_trade_no.clone(),
                "anomaly",
                raw,
                paid_at + Duration::minutes(9),
            ));
        }
    }
    rows
}

/// Seeds `rows` orders into the migrated SQLite database at `url`; seconds taken.
pub async fn sqlite(
    url: &str,
    rows: usize,
    now: OffsetDateTime,
    bar: &ProgressBar,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let options: SqliteConnectOptions = url.parse()?;
    // A benchmark file: losing it to a crash mid-seed only means seeding again.
    let mut conn = SqliteConnection::connect_with(&options.pragma("synchronous", "off")).await?;
    let mut generator = Generator::new(rows, now);
    while generator.next < rows {
        let mut tx = conn.begin().await?;
        let orders = generator.batch(TX_ROWS);
        for chunk in orders.chunks(SQLITE_ROWS) {
            let mut sql = QueryBuilder::<Sqlite>::new(INSERT_ORDER);
            sql.push_values(chunk, |mut row, o| {
                row.push_bind(&o.out_trade_no)
                    .push_bind(o.subject)
                    .push_bind(o.total_fen)
                    .push_bind(o.product)
                    .push_bind(o.status)
                    .push_bind(&o.trade_no)
                    .push_bind(&o.buyer_id)
                    .push_bind(o.alipay_trade_status)
                    .push_bind(o.refunded_fen)
                    .push_bind(o.created_at)
                    .push_bind(o.updated_at())
                    .push_bind(o.expires_at)
                    .push_bind(o.paid_at)
                    .push_bind(o.closed_at);
            });
            sql.build().execute(&mut *tx).await?;
            bar.inc(chunk.len() as u64);
        }
        for chunk in notifications(&orders, now).chunks(SQLITE_ROWS * 2) {
            let mut sql = QueryBuilder::<Sqlite>::new(INSERT_NOTIFICATION);
            sql.push_values(chunk, |mut row, (no, verdict, raw, at)| {
                row.push_bind("notify")
                    .push_bind(no)
                    .push_bind(*verdict)
                    .push_bind(raw)
                    .push_bind(*at);
            });
            sql.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    sqlx::query(REVIEW_HALF)
        .bind(now)
        .execute(&mut conn)
        .await?;
    sqlx::query("pragma wal_checkpoint(truncate)")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Seeds `rows` orders into the migrated Postgres database at `url`, then analyzes and vacuums
/// it as autovacuum would soon after a bulk load; seconds taken.
pub async fn postgres(
    url: &str,
    rows: usize,
    now: OffsetDateTime,
    bar: &ProgressBar,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut conn = PgConnection::connect(url).await?;
    let mut generator = Generator::new(rows, now);
    while generator.next < rows {
        let mut tx = conn.begin().await?;
        let orders = generator.batch(TX_ROWS);
        for chunk in orders.chunks(POSTGRES_ROWS) {
            insert_postgres(&mut tx, chunk).await?;
            bar.inc(chunk.len() as u64);
        }
        let notes = notifications(&orders, now);
        sqlx::query(
            "insert into notification (source, out_trade_no, verdict, raw_body, received_at) \
             select 'notify', * from unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[])",
        )
        .bind(notes.iter().map(|n| n.0.clone()).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.1).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.2.clone()).collect::<Vec<_>>())
        .bind(notes.iter().map(|n| n.3).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    sqlx::query(REVIEW_HALF)
        .bind(now)
        .execute(&mut conn)
        .await?;
    sqlx::query("vacuum analyze").execute(&mut conn).await?;
    conn.close().await?;
    Ok(started.elapsed().as_secs_f64())
}

async fn insert_postgres(conn: &mut PgConnection, chunk: &[SeedOrder]) -> anyhow::Result<()> {
    let text = |f: fn(&SeedOrder) -> Option<String>| chunk.iter().map(f).collect::<Vec<_>>();
    let time =
        |f: fn(&SeedOrder) -> Option<OffsetDateTime>| chunk.iter().map(f).collect::<Vec<_>>();
    let fen = |f: fn(&SeedOrder) -> i64| chunk.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into payment_order (out_trade_no, subject, total_fen, product, status, trade_no, \
         buyer_id, alipay_trade_status, refunded_fen, created_at, updated_at, expires_at, paid_at, \
         closed_at) select * from unnest($1::text[], $2::text[], $3::int8[], $4::text[], \
         $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[], $10::timestamptz[], \
         $11::timestamptz[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[])",
    )
    .bind(text(|o| Some(o.out_trade_no.clone())))
    .bind(text(|o| Some(o.subject.to_owned())))
    .bind(fen(|o| o.total_fen))
    .bind(text(|o| Some(o.product.to_owned())))
    .bind(text(|o| Some(o.status.to_owned())))
    .bind(text(|o| o.trade_no.clone()))
    .bind(text(|o| o.buyer_id.clone()))
    .bind(text(|o| o.alipay_trade_status.map(str::to_owned)))
    .bind(fen(|o| o.refunded_fen))
    .bind(time(|o| Some(o.created_at)))
    .bind(time(|o| Some(o.updated_at())))
    .bind(time(|o| Some(o.expires_at)))
    .bind(time(|o| o.paid_at))
    .bind(time(|o| o.closed_at))
    .execute(conn)
    .await?;
    Ok(())
}

const INSERT_ORDER: &str = "insert into payment_order (out_trade_no, subject, total_fen, product, \
     status, trade_no, buyer_id, alipay_trade_status, refunded_fen, created_at, updated_at, \
     expires_at, paid_at, closed_at) ";
const INSERT_NOTIFICATION: &str =
    "insert into notification (source, out_trade_no, verdict, raw_body, received_at) ";

/// Every other anomaly gets a review, as if operators had looked at half of them.
const REVIEW_HALF: &str = "insert into anomaly_review (notification_id, operator, note, at) \
     select id, 'alice', 'looked at it', $1 from notification \
     where verdict = 'anomaly' and id % 2 = 0";
