//! The fault knobs: dropped, duplicated, concurrent, reordered, delayed and suppressed deliveries.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alipay_notify::alipay::notification::TradeStatus;
use alipay_sim::{AttemptOutcome, DeliveryState, Faults};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn drop_first_loses_attempts_as_recorded_network_errors() {
    let env = spawn_with(Options {
        faults: Faults {
            drop_first: 2,
            ..Faults::default()
        },
        ..Options::default()
    })
    .await;

    env.pay("T_dropped", "3.00").await;
    let attempts = env.sim.settled_attempts("T_dropped", 3, WAIT, QUIET).await;

    assert!(matches!(
        attempts[0].outcome,
        AttemptOutcome::NetworkError { .. }
    ));
    assert!(matches!(
        attempts[1].outcome,
        AttemptOutcome::NetworkError { .. }
    ));
    assert!(attempts[2].acknowledged);
    assert_eq!(
        env.receiver.received().len(),
        1,
        "dropped attempts never reach the receiver"
    );
}

#[tokio::test]
async fn the_duplicate_fault_set_over_http_sends_two_identical_posts() {
    let env = spawn().await;
    let set = env
        .browser
        .post(format!("{}/sim/trades/T_twice/faults", env.sim.base_url()))
        .json(&json!({"duplicate": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);

    env.pay("T_twice", "4.00").await;
    let received = env.receiver.wait_for(2).await;

    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body, received[1].body);
}

#[tokio::test]
async fn the_concurrent_fault_sends_identical_copies_at_once() {
    let env = spawn_with(Options {
        receiver_delay: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    env.sim.set_faults(
        "T_burst",
        Faults {
            concurrent: 4,
            ..Faults::default()
        },
    );

    env.pay("T_burst", "4.00").await;
    let received = env.receiver.wait_for(4).await;

    assert_eq!(received.len(), 4);
    assert!(received.iter().all(|r| r.body == received[0].body));
    assert!(
        env.receiver.max_in_flight.load(Ordering::SeqCst) >= 2,
        "copies overlapped"
    );
}

#[tokio::test]
async fn the_out_of_order_fault_sends_trade_finished_before_trade_success() {
    let env = spawn().await;
    env.sim.set_faults(
        "T_reordered",
        Faults {
            out_of_order: true,
            ..Faults::default()
        },
    );

    env.pay("T_reordered", "6.00").await;
    let received = env.receiver.wait_for(2).await;

    let key = env.sim.alipay_public_key();
    assert_eq!(status_of(&received[0].body, &key), "TRADE_FINISHED");
    assert_eq!(status_of(&received[1].body, &key), "TRADE_SUCCESS");
    let notify_id = |body: &[u8]| verified(body, &key).get("notify_id").unwrap().to_owned();
    assert_ne!(notify_id(&received[0].body), notify_id(&received[1].body));
    let trade = env.sim.trade("T_reordered").unwrap();
    assert_eq!(trade.status, Some(TradeStatus::TradeFinished));
}

#[tokio::test]
async fn the_delay_fault_holds_the_first_attempt_back() {
    let env = spawn().await;
    env.sim.set_faults(
        "T_late",
        Faults {
            delay_ms: 400,
            ..Faults::default()
        },
    );

    let paid_at = Instant::now();
    env.pay("T_late", "1.00").await;
    let received = env.receiver.wait_for(1).await;

    assert!(received[0].at - paid_at >= Duration::from_millis(400));
}

#[tokio::test]
async fn the_never_deliver_fault_sends_nothing() {
    let env = spawn().await;
    env.sim.set_faults(
        "T_silent",
        Faults {
            never_deliver: true,
            ..Faults::default()
        },
    );

    env.pay("T_silent", "1.00").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert!(env.receiver.received().is_empty());
    let trade = env.sim.trade("T_silent").unwrap();
    assert_eq!(trade.notifications[0].state, DeliveryState::Suppressed);
    assert_eq!(
        trade.status,
        Some(TradeStatus::TradeSuccess),
        "paid all the same"
    );
}
