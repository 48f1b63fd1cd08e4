//! Two instances on one Postgres, a flood with duplicates and bursts of identical copies spread
//! across both: every copy is answered `success` and each order is applied exactly once.

use std::sync::Arc;

use crate::ledger::{self, assert_all_paid_once, assert_whole, tally};
use crate::postgres::SharedDatabase;
use crate::service::{client, Service};
use crate::traffic::{create_orders, flood, notification, order_numbers, shuffle, Delivery, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_apply_each_order_once() {
    let database = SharedDatabase::create().await;
    let client = client();
    // Started together: both apply migrations at once.
    let (a, b) = tokio::join!(Service::start(&database.url), Service::start(&database.url));
    let bases = vec![a.base(), b.base()];
    let numbers = order_numbers("TWIN", 200);
    create_orders(&client, &bases[1], &numbers).await;

    // 200 notifications, 60 duplicates (30 %), and 10 bursts of 8 identical copies sent at once.
    let single = |no: &String| vec![notification(no)];
    let mut jobs: Vec<Vec<Delivery>> = numbers.iter().map(single).collect();
    jobs.extend(
        numbers
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 10 < 3)
            .map(|(_, no)| single(no)),
    );
    jobs.extend(
        numbers
            .iter()
            .skip(5)
            .step_by(20)
            .map(|no| vec![notification(no); 8]),
    );
    shuffle(&mut jobs, 0x7a1_7a1);
    let sent = flood(&client, &bases, jobs, 8, Arc::default()).await;

    assert_eq!(sent.len(), 200 + 60 + 80);
    let wrong: Vec<_> = sent
        .iter()
        .filter(|s| s.reply != Reply::Success)
        .map(|s| (&s.delivery.no, &s.reply))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} replies were not `success`: {wrong:?}",
        wrong.len()
    );
    let stored = ledger::read(&database.url, &numbers).await;
    let told = tally(&sent);
    assert_whole(&stored, &told);
    assert_all_paid_once(&stored);
    let unaccounted: Vec<_> = stored
        .iter()
        .filter(|(no, s)| s.rows != told[*no].sent)
        .collect();
    assert!(
        unaccounted.is_empty(),
        "each request answered `success` must leave exactly one audit row: {unaccounted:?}"
    );
}
