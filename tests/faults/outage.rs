//! The database goes away while notifications arrive: nothing is answered `success` until it is
//! back, and Alipay's resends then pay each order exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alipay_notify::orders::OrderStatus;

use crate::ledger::{self, assert_all_paid_once, assert_whole, reply_counts, tally};
use crate::postgres::OwnPostgres;
use crate::service::{client, Service};
use crate::traffic::{
    api_status, create_orders, deliver, notification, order_numbers, reached, resend_until_success,
    Delivery, Reply, Sent,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_fail_and_resends_pay_each_order_once() {
    let mut postgres = OwnPostgres::start();
    let service = Service::start(&postgres.url()).await;
    let client = client();
    let base = service.base();
    let numbers = order_numbers("OUTAGE", 45);
    create_orders(&client, &base, &numbers).await;
    let (notified, untouched) = numbers.split_at(40);

    // 40 notifications, one every 30 ms; Postgres stops once a few have been applied, so the
    // rest arrive during the outage, together with resends of 10 that were acknowledged before.
    let deliveries: Vec<Delivery> = notified.iter().map(|no| notification(no)).collect();
    let successes = Arc::new(AtomicUsize::new(0));
    let stream = tokio::spawn(paced(
        client.clone(),
        base.clone(),
        deliveries,
        Duration::from_millis(30),
        successes.clone(),
    ));
    assert!(
        reached(&successes, 8, Duration::from_secs(15)).await,
        "no notification was applied before the outage"
    );
    tokio::task::block_in_place(|| postgres.stop());
    let stopped = Instant::now();

    let readiness = async {
        let asked = Instant::now();
        let ready = client.get(service.url("/readyz")).send().await;
        eprintln!("outage: /readyz answered after {:?}", asked.elapsed());
        let health = client.get(service.url("/healthz")).send().await;
        (
            ready
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string()),
            health
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string()),
        )
    };
    let acknowledged: Vec<Delivery> = notified[..10].iter().map(|no| notification(no)).collect();
    let resends =
        futures::future::join_all(acknowledged.iter().map(|d| deliver(&client, &base, d)));
    let (sent, resent_during, (ready, health)) = tokio::join!(stream, resends, readiness);
    let outage_lasted = stopped.elapsed();
    let mut sent = sent.expect("the paced notifications");
    sent.extend(resent_during);
    let during: Vec<&Sent> = sent.iter().filter(|s| s.sent_at >= stopped).collect();
    let (ok, fail, none) = reply_counts(during.iter().copied());
    eprintln!(
        "outage ({outage_lasted:?}): {} sent before the stop finished ({:?} success/fail/no \
         answer); during the outage {ok} success, {fail} fail, {none} no answer",
        sent.len() - during.len(),
        reply_counts(sent.iter().filter(|s| s.sent_at < stopped)),
    );
    assert!(
        during.len() >= 10,
        "only {} notifications arrived during the outage",
        during.len()
    );
    let wrong: Vec<_> = during
        .iter()
        .filter(|s| !matches!(&s.reply, Reply::Refused { status, body } if *status >= 500 && body == "fail"))
        .map(|s| (&s.delivery.no, &s.reply))
        .collect();
    assert!(
        wrong.is_empty(),
        "during the outage every reply must be a 5xx `fail`; got {wrong:?}"
    );
    assert_eq!(ready, Ok(503), "/readyz during the outage");
    assert_eq!(health, Ok(200), "/healthz during the outage");

    tokio::task::block_in_place(|| postgres.start_again());
    let resent = resend_until_success(&client, std::slice::from_ref(&base), &sent).await;
    eprintln!(
        "outage: after Postgres came back, {} resends ({:?} success/fail/no answer)",
        resent.len(),
        reply_counts(&resent)
    );

    let stored = ledger::read(&postgres.url(), &numbers).await;
    assert_whole(&stored, &tally(sent.iter().chain(&resent)));
    let paid: std::collections::BTreeMap<_, _> = stored
        .iter()
        .filter(|(no, _)| notified.contains(no))
        .map(|(no, s)| (no.clone(), s.clone()))
        .collect();
    assert_all_paid_once(&paid);
    for no in untouched {
        let s = &stored[no];
        assert!(
            s.status == Some(OrderStatus::Pending) && s.rows == 0,
            "{no}: {s:?}"
        );
        assert_eq!(api_status(&client, &base, no).await, "pending");
    }
    for no in notified {
        assert_eq!(api_status(&client, &base, no).await, "paid", "{no}");
    }
    let ready = client.get(service.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200, "/readyz after the outage");
}

/// Sends one delivery every `interval`, each on its own task, whatever the earlier ones await.
async fn paced(
    client: reqwest::Client,
    base: String,
    deliveries: Vec<Delivery>,
    interval: Duration,
    successes: Arc<AtomicUsize>,
) -> Vec<Sent> {
    let mut tasks = Vec::new();
    for delivery in deliveries {
        let (client, base, successes) = (client.clone(), base.clone(), successes.clone());
        tasks.push(tokio::spawn(async move {
            let sent = deliver(&client, &base, &delivery).await;
            if sent.reply == Reply::Success {
                successes.fetch_add(1, Ordering::SeqCst);
            }
            sent
        }));
        tokio::time::sleep(interval).await;
    }
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(task.await.expect("delivery task"));
    }
    sent
}
