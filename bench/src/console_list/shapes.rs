//! The calls timed: one `order_page` per kind of filter the console offers (with values taken
//! from the seeded data), and the overview's reads; and the table they are reported in.

use anyhow::Context;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use alipay_notify::alipay::product::Product;
use alipay_notify::orders::query::{Cursor, OrderFilter};
use alipay_notify::orders::{OrderStatus, OrderStore};

use super::{time, DatabaseRun};

/// The console's page size.
const PAGE: i64 = 50;
const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("a valid offset"),
};

/// Times of one shape, in milliseconds, sorted.
pub struct Measured {
    pub rows: usize,
    times: Vec<f64>,
}

impl Measured {
    pub fn new(rows: usize, mut times: Vec<f64>) -> Self {
        times.sort_by(f64::total_cmp);
        Self { rows, times }
    }

    /// Nearest rank.
    fn percentile(&self, p: f64) -> f64 {
        let rank = ((p * self.times.len() as f64).ceil() as usize).max(1);
        self.times[rank - 1]
    }

    pub fn median(&self) -> f64 {
        self.percentile(0.5)
    }

    pub fn p95(&self) -> f64 {
        self.percentile(0.95)
    }
}

/// A list the console may ask for: a filter and where the page starts.
struct Shape {
    name: String,
    filter: OrderFilter,
    after: Option<Cursor>,
}

fn shape(name: &str, filter: OrderFilter, after: Option<&Cursor>) -> Shape {
    Shape {
        name: name.to_owned(),
        filter,
        after: after.cloned(),
    }
}

/// Midnight in Beijing of the day `at` falls on there, as the console's date filter reads it.
fn beijing_midnight(at: OffsetDateTime) -> OffsetDateTime {
    PrimitiveDateTime::new(at.to_offset(BEIJING).date(), Time::MIDNIGHT).assume_offset(BEIJING)
}

/// The shapes, with a cursor in the middle of the data and numbers of an order that exists.
async fn shapes(store: &dyn OrderStore) -> anyhow::Result<(OffsetDateTime, Vec<Shape>)> {
    let all = OrderFilter::default();
    let newest = store.order_page(&all, None, 1).await?;
    let newest = newest
        .orders
        .first()
        .context("no orders seeded")?
        .created_at;
    // Orders are spread evenly over the seeded days: the one just before half of them is
    // the order after which the 500,000th row of a million comes.
    let half = Duration::days(super::seed::DAYS) / 2;
    let probe = Cursor {
        created_at: newest - half,
        out_trade_no: String::new(),
    };
    let middle = store.order_page(&all, Some(&probe), 1).await?;
    let middle = middle.next.context("no order in the middle")?;
    let paid = OrderFilter {
        status: Some(OrderStatus::Paid),
        ..all.clone()
    };
    let sample = store.order_page(&paid, Some(&middle), 1).await?;
    let sample = sample.orders.first().context("no paid order")?.clone();
    let search = |text: &str| OrderFilter {
        search: Some(text.to_owned()),
        ..all.clone()
    };
    let from = beijing_midnight(middle.created_at) - Duration::days(3);
    let with_status = |status| OrderFilter {
        status: Some(status),
        ..all.clone()
    };
    let shapes = vec![
        shape("first page, no filter", all.clone(), None),
        shape("deep: after half the rows", all.clone(), Some(&middle)),
        shape("status paid", with_status(OrderStatus::Paid), None),
        shape(
            "status paid, deep",
            with_status(OrderStatus::Paid),
            Some(&middle),
        ),
        shape(
            "status pending (8%)",
            with_status(OrderStatus::Pending),
            None,
        ),
        shape(
            "product app (15%)",
            OrderFilter {
                product: Some(Product::App),
                ..all.clone()
            },
            None,
        ),
        shape(
            "amount 100–200 yuan (5%)",
            OrderFilter {
                min_fen: Some(10_000),
                max_fen: Some(20_000),
                ..all.clone()
            },
            None,
        ),
        shape(
            "created in 7 days mid-range",
            OrderFilter {
                created_from: Some(from),
                created_to: Some(from + Duration::days(7)),
                ..all.clone()
            },
            None,
        ),
        shape(
            "search trade_no",
            search(sample.trade_no.as_deref().unwrap_or_default()),
            None,
        ),
        shape(
            "search buyer_id",
            search(sample.buyer_id.as_deref().unwrap_or_default()),
            None,
        ),
        shape("search out_trade_no", search(&sample.out_trade_no), None),
        shape(
            "search, no such number",
            search("2026000000000000000000000000"),
            None,
        ),
        shape(
            "paid + app + 100–200 yuan",
            OrderFilter {
                status: Some(OrderStatus::Paid),
                product: Some(Product::App),
                min_fen: Some(10_000),
                max_fen: Some(20_000),
                ..all.clone()
            },
            None,
        ),
        shape(
            "amount over 4,990 yuan (0.02%)",
            OrderFilter {
                min_fen: Some(499_000),
                ..all.clone()
            },
            None,
        ),
        shape(
            "amount over 5,000 yuan (none)",
            OrderFilter {
                min_fen: Some(500_001),
                ..all.clone()
            },
            None,
        ),
        shape(
            "app + over 4,000 yuan (0.25%)",
            OrderFilter {
                product: Some(Product::App),
                min_fen: Some(400_000),
                ..all.clone()
            },
            None,
        ),
        shape(
            "refunded + app + over 4,000 yuan",
            OrderFilter {
                status: Some(OrderStatus::Refunded),
                product: Some(Product::App),
                min_fen: Some(400_000),
                ..all.clone()
            },
            None,
        ),
        shape(
            "refunded + app + over 4,999 yuan (none)",
            OrderFilter {
                status: Some(OrderStatus::Refunded),
                product: Some(Product::App),
                min_fen: Some(499_900),
                ..all.clone()
            },
            None,
        ),
    ];
    Ok((newest, shapes))
}

/// Every shape and the overview's reads, timed on `store`.
pub async fn measure(
    store: &dyn OrderStore,
    repetitions: usize,
) -> anyhow::Result<Vec<(String, Measured)>> {
    let (newest, shapes) = shapes(store).await?;
    let mut results = Vec::new();
    for shape in &shapes {
        let measured = time(repetitions, || async {
            let page = store
                .order_page(&shape.filter, shape.after.as_ref(), PAGE)
                .await?;
            Ok(page.orders.len())
        })
        .await?;
        eprintln!("{:<36} {:>9.2} ms", shape.name, measured.median());
        results.push((shape.name.clone(), measured));
    }
    // The overview as if read a minute after the newest order.
    let now = newest + Duration::minutes(1);
    let midnight = beijing_midnight(now);
    let overview: [(&str, Overview); 5] = [
        ("overview: status counts today", Overview::Counts(midnight)),
        (
            "overview: status counts 7 days",
            Overview::Counts(midnight - Duration::days(6)),
        ),
        (
            "overview: verdicts by hour, 24 h",
            Overview::Verdicts(now - Duration::hours(24)),
        ),
        ("overview: unreviewed anomalies", Overview::Anomalies),
        ("overview: oldest overdue pending", Overview::Overdue(now)),
    ];
    for (name, read) in overview {
        let measured = time(repetitions, || read.run(store)).await?;
        eprintln!("{name:<36} {:>9.2} ms", measured.median());
        results.push((name.to_owned(), measured));
    }
    Ok(results)
}

#[derive(Clone, Copy)]
enum Overview {
    Counts(OffsetDateTime),
    Verdicts(OffsetDateTime),
    Anomalies,
    Overdue(OffsetDateTime),
}

impl Overview {
    /// The rows (or the count) read.
    async fn run(self, store: &dyn OrderStore) -> anyhow::Result<usize> {
        Ok(match self {
            Self::Counts(since) => store.status_counts(since).await?.total() as usize,
            Self::Verdicts(since) => store.verdict_counts(since).await?.len(),
            Self::Anomalies => store.unreviewed_anomalies().await? as usize,
            Self::Overdue(now) => usize::from(store.oldest_overdue(now).await?.is_some()),
        })
    }
}

/// A Markdown table, one column pair per database, rows found from the first.
pub fn table(rows: usize, runs: &[DatabaseRun]) -> String {
    let mut out = format!("{rows} orders; median / p95 of each call in ms\n\n| call | found |");
    for run in runs {
        out.push_str(&format!(" {} median | p95 |", run.name));
    }
    out.push_str("\n|---|---:|");
    out.push_str(&"---:|---:|".repeat(runs.len()));
    let Some(first) = runs.first() else {
        return out;
    };
    for (i, (name, measured)) in first.results.iter().enumerate() {
        out.push_str(&format!("\n| {name} | {} |", measured.rows));
        for run in runs {
            let m = &run.results[i].1;
            out.push_str(&format!(" {:.2} | {:.2} |", m.median(), m.p95()));
        }
    }
    for run in runs {
        match run.seed_seconds {
            Some(s) => out.push_str(&format!("\n\n{}: seeded in {s:.0} s", run.name)),
            None => out.push_str(&format!("\n\n{}: seeded data reused", run.name)),
        }
    }
    out
}
