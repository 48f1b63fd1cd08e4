//! The service is SIGKILLed in the middle of a flood: what it answered `success` survives the
//! crash, and resending the rest pays every order exactly once.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::ledger::{self, assert_all_paid_once, assert_whole, reply_counts, tally};
use crate::postgres::SharedDatabase;
use crate::service::{client, Service};
use crate::traffic::{
    create_orders, flood, notification, order_numbers, reached, resend_until_success, shuffle,
    Delivery,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crash_mid_flood_loses_no_acknowledged_notification() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    crash_mid_flood("sqlite", &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_mid_flood_loses_no_acknowledged_notification() {
    let database = SharedDatabase::create().await;
    crash_mid_flood("postgres", &database.url).await;
}

async fn crash_mid_flood(label: &str, database_url: &str) {
    const ORDERS: usize = 300;
    const KILL_AFTER: usize = 100;
    let client = client();
    let mut service = Service::start(database_url).await;
    let numbers = order_numbers("CRASH", ORDERS);
    create_orders(&client, &service.base(), &numbers).await;

    // Every order once, every tenth twice, shuffled; 8 connections at a time.
    let mut deliveries: Vec<Delivery> = numbers.iter().map(|no| notification(no)).collect();
    deliveries.extend(numbers.iter().step_by(10).map(|no| notification(no)));
    shuffle(&mut deliveries, 0x5eed_f00d);
    let jobs = deliveries.into_iter().map(|d| vec![d]).collect();
    let successes = Arc::new(AtomicUsize::new(0));
    let flooding = tokio::spawn({
        let (client, bases, successes) = (client.clone(), vec![service.base()], successes.clone());
        async move { flood(&client, &bases, jobs, 8, successes).await }
    });
    let mid_flood = reached(&successes, KILL_AFTER, Duration::from_secs(30)).await;
    service.kill();
    assert!(
        mid_flood,
        "fewer than {KILL_AFTER} successes before the kill"
    );
    let sent = flooding.await.expect("the flood");
    let (ok, fail, none) = reply_counts(&sent);
    eprintln!(
        "crash ({label}): {} sent, {ok} success, {fail} fail, {none} no answer",
        sent.len()
    );
    assert!(none > 0, "the kill landed after the flood had ended");

    // Restarted on the same database, before any resend: every `success` is durable.
    let service = Service::start(database_url).await;
    let stored = ledger::read(database_url, &numbers).await;
    let paid = stored.values().filter(|s| s.applied == 1).count();
    eprintln!("crash ({label}): {paid} orders paid after the restart, before resends");
    assert_whole(&stored, &tally(&sent));

    let resent = resend_until_success(&client, &[service.base()], &sent).await;
    eprintln!(
        "crash ({label}): {} resends ({:?} success/fail/no answer)",
        resent.len(),
        reply_counts(&resent)
    );
    let stored = ledger::read(database_url, &numbers).await;
    assert_whole(&stored, &tally(sent.iter().chain(&resent)));
    assert_all_paid_once(&stored);
}
