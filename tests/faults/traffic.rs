//! What Alipay and a merchant back end send: orders through the API, signed TRADE_SUCCESS
//! notifications, floods of them, and Alipay's habit of resending until it reads `success`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alipay_notify::alipay::sign::CALLBACK_EXCLUDED;
use alipay_test_support::form::signed_form;
use futures::stream::{self, StreamExt};

use crate::service::{keys, API_TOKEN, APP_ID, SELLER_ID};

/// `{prefix}0000`, `{prefix}0001`, …
pub fn order_numbers(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i:04}")).collect()
}

/// A different amount per order, so a mix-up between orders would show as an anomaly.
pub fn amount(out_trade_no: &str) -> String {
    let n: u32 = out_trade_no
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    format!("{}.{:02}", 1 + n % 500, n % 100)
}

/// Creates pending orders through `POST /api/orders` (bearer token); each must answer 201.
pub async fn create_orders(client: &reqwest::Client, base: &str, numbers: &[String]) {
    let url = format!("{base}/api/orders");
    let results: Vec<(String, Result<u16, String>)> = stream::iter(numbers)
        .map(|no| {
            let request = client
                .post(&url)
                .bearer_auth(API_TOKEN)
                .json(&serde_json::json!({
                    "out_trade_no": no,
                    "subject": "Oolong tea",
                    "total_amount": amount(no),
                }));
            async move {
                let status = request.send().await.map(|r| r.status().as_u16());
                (no.clone(), status.map_err(|e| format!("{e:#}")))
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let failed: Vec<_> = results.iter().filter(|(_, r)| *r != Ok(201)).collect();
    assert!(failed.is_empty(), "order creation failed: {failed:?}");
}

/// The order's `status` as `GET /api/orders/{no}` shows it.
pub async fn api_status(client: &reqwest::Client, base: &str, no: &str) -> String {
    let response = client
        .get(format!("{base}/api/orders/{no}"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("GET order");
    assert_eq!(response.status().as_u16(), 200, "GET /api/orders/{no}");
    let order: serde_json::Value = response.json().await.expect("order JSON");
    order["status"].as_str().unwrap_or_default().to_owned()
}

/// One notification body, as Alipay delivers it (and resends it, byte for byte).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub no: String,
    pub body: Arc<str>,
}

/// A genuine page-pay TRADE_SUCCESS notification for `no`, signed with "Alipay's" key.
pub fn notification(no: &str) -> Delivery {
    let amount = amount(no);
    let params: Vec<(&str, String)> = vec![
        ("notify_time", "2026-11-28 23:10:05".into()),
        ("notify_type", "trade_status_sync".into()),
        ("notify_id", format!("2026112800222231005{no}")),
        ("app_id", APP_ID.into()),
        ("auth_app_id", APP_ID.into()),
        ("charset", "utf-8".into()),
        ("version", "1.0".into()),
        ("sign_type", "RSA2".into()),
        ("trade_no", format!("2026112822001{no}")),
        ("out_trade_no", no.into()),
        ("buyer_id", "2088102177846880".into()),
        ("buyer_logon_id", "abc***@example.com".into()),
        ("seller_id", SELLER_ID.into()),
        ("trade_status", "TRADE_SUCCESS".into()),
        ("total_amount", amount.clone()),
        ("receipt_amount", amount.clone()),
        ("buyer_pay_amount", amount),
        ("subject", "Oolong tea".into()),
        ("gmt_create", "2026-11-28 23:09:50".into()),
        ("gmt_payment", "2026-11-28 23:10:04".into()),
    ];
    let body = signed_form(&params, &keys().alipay, CALLBACK_EXCLUDED);
    Delivery {
        no: no.to_owned(),
        body: String::from_utf8(body)
            .expect("an escaped form is ASCII")
            .into(),
    }
}

/// What came back for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The body `success`: Alipay stops resending.
    Success,
    /// An HTTP answer other than `success`.
    Refused { status: u16, body: String },
    /// No HTTP answer (connection refused or reset, timeout).
    NoAnswer(String),
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub delivery: Delivery,
    /// When the request was started.
    pub sent_at: Instant,
    pub reply: Reply,
}

pub async fn deliver(client: &reqwest::Client, base: &str, delivery: &Delivery) -> Sent {
    let sent_at = Instant::now();
    let response = client
        .post(format!("{base}/alipay/notify"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(delivery.body.to_string())
        .send()
        .await;
    let reply = match response {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) if body == "success" => Reply::Success,
                Ok(body) => Reply::Refused { status, body },
                Err(e) => Reply::NoAnswer(root_cause(&e)),
            }
        }
        Err(e) => Reply::NoAnswer(root_cause(&e)),
    };
    Sent {
        delivery: delivery.clone(),
        sent_at,
        reply,
    }
}

/// The innermost cause: "Connection refused (os error 111)" rather than reqwest's summary.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Sends `jobs` with `concurrency` jobs at a time; a job is one delivery or a burst of identical
/// copies sent at once. Job `i` (copy `j` of a burst) goes to `bases[(i + j) % bases.len()]`.
/// `successes` counts `success` replies as they arrive, for a test that acts mid-flood.
pub async fn flood(
    client: &reqwest::Client,
    bases: &[String],
    jobs: Vec<Vec<Delivery>>,
    concurrency: usize,
    successes: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let batches: Vec<Vec<Sent>> = stream::iter(jobs.into_iter().enumerate())
        .map(|(i, copies)| {
            let successes = successes.clone();
            async move {
                let sends = copies.iter().enumerate().map(|(j, delivery)| {
                    let base = &bases[(i + j) % bases.len()];
                    deliver(client, base, delivery)
                });
                let sent = futures::future::join_all(sends).await;
                let ok = sent.iter().filter(|s| s.reply == Reply::Success).count();
                successes.fetch_add(ok, Ordering::SeqCst);
                sent
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    batches.into_iter().flatten().collect()
}

/// Waits (bounded) until `counter` reaches `target`; false on timeout.
pub async fn reached(counter: &AtomicUsize, target: usize, within: Duration) -> bool {
    let started = Instant::now();
    while counter.load(Ordering::SeqCst) < target {
        if started.elapsed() > within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Resends, as Alipay would, every delivery in `sent` not answered `success`, round after round
/// (bounded in rounds and time) until each is. Returns what the resends got, in order.
pub async fn resend_until_success(
    client: &reqwest::Client,
    bases: &[String],
    sent: &[Sent],
) -> Vec<Sent> {
    const ROUNDS: usize = 40;
    const WITHIN: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut pending: Vec<Delivery> = sent
        .iter()
        .filter(|s| s.reply != Reply::Success)
        .map(|s| s.delivery.clone())
        .collect();
    let mut resent = Vec::new();
    for _ in 0..ROUNDS {
        if pending.is_empty() || started.elapsed() > WITHIN {
            break;
        }
        let jobs = pending.drain(..).map(|d| vec![d]).collect();
        let round = flood(client, bases, jobs, 8, Arc::default()).await;
        pending = round
            .iter()
            .filter(|s| s.reply != Reply::Success)
            .map(|s| s.delivery.clone())
            .collect();
        resent.extend(round);
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let last: Vec<_> = resent.iter().rev().take(5).map(|s| &s.reply).collect();
    assert!(
        pending.is_empty(),
        "{} notifications still not answered `success` after resending for {:?}; last replies: {last:?}",
        pending.len(),
        started.elapsed()
    );
    resent
}

/// A fixed-seed shuffle (xorshift), so a flood mixes orders and duplicates the same way each run.
pub fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = usize::try_from(seed % (i as u64 + 1)).expect("index fits usize");
        items.swap(i, j);
    }
}
