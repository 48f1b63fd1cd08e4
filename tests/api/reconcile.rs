//! Never miss a payment: pending orders are queried at Alipay, expired ones closed, and several
//! instances share the work without doubling it.

use std::time::Duration;

use alipay_notify::orders::OrderStatus;
use alipay_sim::Faults;
use time::OffsetDateTime;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    an_undelivered_payment_is_found_by_reconciliation_exactly_once,
    an_expired_order_nobody_paid_is_closed_at_alipay_and_here,
    orders_reconcile_reports_what_it_did,
    concurrent_claims_never_share_an_order,
);

/// Reconcile every second, with no grace period.
fn eager(settings: &mut alipay_notify::config::Settings) {
    settings.reconcile.interval_seconds = 1;
    settings.reconcile.grace_seconds = 0;
}

async fn an_undelivered_payment_is_found_by_reconciliation_exactly_once(db: Db) {
    let flow = spawn_paying(
        db,
        Faults {
            never_deliver: true,
            ..Faults::default()
        },
        eager,
    )
    .await;
    let pay_url = flow.create_order("R1001", "66.60").await;

    flow.click(&pay_url, "pay").await;

    let order = flow.wait_for_status("R1001", OrderStatus::Paid).await;
    assert!(
        flow.sim.attempts("R1001").is_empty(),
        "nothing was delivered"
    );
    assert_eq!(order.trade_no, flow.sim.trade("R1001").unwrap().trade_no);
    assert!(order.paid_at.is_some());
    // Later runs find it paid and leave it alone: one applied row, sourced from the query.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let log = flow.app.store.audit_log("R1001").await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].source.as_str(), log[0].verdict.as_str()),
        ("query", "applied")
    );
}

async fn an_expired_order_nobody_paid_is_closed_at_alipay_and_here(db: Db) {
    let flow = spawn_paying(db, Faults::default(), eager).await;
    flow.app.expired_order("R1002", "9.00").await;

    let order = flow.wait_for_status("R1002", OrderStatus::Closed).await;

    assert!(order.closed_at.is_some());
    let log = flow.app.store.audit_log("R1002").await.unwrap();
    assert_eq!(
        (log[0].source.as_str(), log[0].trade_status.as_deref()),
        ("query", Some("TRADE_CLOSED"))
    );
}

async fn orders_reconcile_reports_what_it_did(db: Db) {
    let flow = spawn_paying(
        db,
        Faults {
            never_deliver: true,
            ..Faults::default()
        },
        |s| {
            s.reconcile.interval_seconds = 0;
        },
    )
    .await;
    let pay_url = flow.create_order("R1003", "1.23").await;
    flow.click(&pay_url, "pay").await;
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_alipay-notify"))
            .args(args)
            .env("DATABASE_URL", &flow.app.database_url)
            .env("ALIPAY_APP_ID", APP_ID)
            .env("ALIPAY_APP_PRIVATE_KEY", keys().app.to_pkcs8_pem())
            .env("ALIPAY_PUBLIC_KEY", flow.sim.alipay_public_key_base64())
            .env("ALIPAY_GATEWAY", flow.sim.gateway_url())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    assert_eq!(flow.app.order("R1003").await.status, OrderStatus::Pending);

    let first = cli(&["orders", "reconcile", "R1003"]);
    let again = cli(&["orders", "reconcile", "R1003"]);

    let first = String::from_utf8(first.stdout).unwrap();
    assert_eq!(first.trim(), "R1003: applied; order is paid");
    let again = String::from_utf8(again.stdout).unwrap();
    assert_eq!(again.trim(), "R1003: duplicate; order is paid");
    assert_eq!(flow.app.order("R1003").await.status, OrderStatus::Paid);
}

async fn concurrent_claims_never_share_an_order(db: Db) {
    let first = spawn_with(db, |s| s.reconcile.interval_seconds = 0).await;
    let second = spawn_sibling(&first).await;
    for n in 0..30 {
        first.pending_order(&format!("R2{n:03}"), "1.00").await;
    }
    let now = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let lease = now + time::Duration::minutes(1);

    let (a, b) = tokio::join!(
        first.store.claim_for_reconciliation(now, now, lease, 20),
        second.store.claim_for_reconciliation(now, now, lease, 20),
    );

    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.len() + b.len(),
        30,
        "every order claimed once: {} + {}",
        a.len(),
        b.len()
    );
    assert!(a
        .iter()
        .all(|x| b.iter().all(|y| x.out_trade_no != y.out_trade_no)));
    let again = first
        .store
        .claim_for_reconciliation(now, now, lease, 20)
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "leased orders wait for their lease to run out"
    );
}
