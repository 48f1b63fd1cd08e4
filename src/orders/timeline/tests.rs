use time::{Duration, OffsetDateTime};

use super::*;
use crate::alipay::product::Product;
use crate::orders::events::{Delivery, DeliveryStatus, StoredEvent};
use crate::orders::model::{OrderStatus, Source};
use crate::orders::outbox::AttemptRecord;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_764_800_000).unwrap()
}

fn at(seconds: i64) -> OffsetDateTime {
    t0() + Duration::seconds(seconds)
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap()
}

fn order() -> Order {
    Order {
        out_trade_no: "T1".into(),
        subject: "Oolong tea".into(),
        body: None,
        total_amount: amount("10.00"),
        product: Product::Page,
        status: OrderStatus::Paid,
        trade_no: Some("2026T1".into()),
        buyer_id: None,
        alipay_trade_status: Some(TradeStatus::TradeSuccess),
        refunded_fen: 200,
        created_at: t0(),
        expires_at: at(1800),
        paid_at: Some(at(10)),
        closed_at: None,
    }
}

/// A notification body as the audit log keeps it (its signature was checked on arrival).
fn notification(status: &str, total: &str, extra: &str) -> Vec<u8> {
    format!(
        "notify_id=n&app_id=app&out_trade_no=T1&trade_no=2026T1&trade_status={status}\
         &total_amount={total}{extra}&sign_type=RSA2&sign=x"
    )
    .into_bytes()
}

fn row(
    id: i64,
    seconds: i64,
    source: Source,
    verdict: Verdict,
    reason: Option<AnomalyReason>,
    status: &str,
    raw: Vec<u8>,
) -> AuditRecord {
    AuditRecord {
        id,
        source,
        notify_id: None,
        out_trade_no: Some("T1".into()),
        trade_status: Some(status.into()),
        verdict,
        reason,
        received_at: at(seconds),
        raw,
    }
}

fn texts(timeline: &Timeline) -> Vec<(EntryKind, &str)> {
    timeline
        .entries()
        .iter()
        .map(|e| (e.kind, e.text.as_str()))
        .collect()
}

#[test]
fn a_paid_partly_refunded_order_tells_each_message_apart() {
    let paid = notification("TRADE_SUCCESS", "10.00", "");
    let refund_answer =
        br#"{"code":"10000","msg":"Success","trade_no":"2026T1","out_trade_no":"T1","refund_fee":"2.00","fund_change":"Y"}"#;
    let refund_notice = notification(
        "TRADE_SUCCESS",
        "10.00",
        "&refund_fee=2.00&gmt_refund=2026-12-04+10:00:00&out_biz_no=R1",
    );
    let audit = [
        row(
            1,
            10,
            Source::Notify,
            Verdict::Applied,
            None,
            "TRADE_SUCCESS",
            paid.clone(),
        ),
        row(
            2,
            20,
            Source::Notify,
            Verdict::Duplicate,
            None,
            "TRADE_SUCCESS",
            paid,
        ),
        row(
            3,
            40,
            Source::Refund,
            Verdict::Applied,
            None,
            "TRADE_SUCCESS",
            refund_answer.to_vec(),
        ),
        row(
            4,
            50,
            Source::Notify,
            Verdict::Duplicate,
            None,
            "TRADE_SUCCESS",
            refund_notice,
        ),
        row(
            5,
            60,
            Source::Notify,
            Verdict::Anomaly,
            Some(AnomalyReason::AmountMismatch),
            "TRADE_SUCCESS",
            notification("TRADE_SUCCESS", "9.00", ""),
        ),
    ];
    let refunds = [Refund {
        out_request_no: "R1".into(),
        amount: amount("2.00"),
        reason: Some("broken lid".into()),
        status: RefundStatus::Succeeded,
        created_at: at(30),
        updated_at: at(40),
    }];

    let timeline = Timeline::build(&order(), &audit, &refunds, &[]);

    assert_eq!(
        texts(&timeline),
        [
            (EntryKind::Created, "Order created for 10.00"),
            (EntryKind::Paid, "Payment of 10.00 applied (notification)"),
            (
                EntryKind::Duplicate,
                "Duplicate notification (TRADE_SUCCESS), nothing changed"
            ),
            (
                EntryKind::RefundRequested,
                "Refund R1 of 2.00 requested: broken lid"
            ),
            (
                EntryKind::Refunded,
                "Refund of 2.00 applied (refund answer)"
            ),
            (
                EntryKind::Duplicate,
                "Duplicate refund notification (2.00 refunded in all), nothing changed"
            ),
            (
                EntryKind::Anomaly,
                "Anomaly: amount 9.00 differs from the order's 10.00 — order untouched \
                 (notification)"
            ),
        ]
    );
    let entries = timeline.entries();
    assert_eq!(entries[4].amount, Some(amount("2.00")));
    assert_eq!(entries[6].amount, Some(amount("9.00")));
    assert_eq!(entries[6].reason, Some(AnomalyReason::AmountMismatch));
    let kinds: Vec<_> = entries
        .iter()
        .filter_map(|e| e.message.as_ref().map(|m| (m.id, m.kind)))
        .collect();
    assert_eq!(
        kinds,
        [
            (1, MessageKind::PaymentNotification),
            (2, MessageKind::PaymentNotification),
            (3, MessageKind::RefundAnswer),
            (4, MessageKind::RefundNotification),
            (5, MessageKind::PaymentNotification),
        ]
    );
}

#[test]
fn refunds_are_told_by_how_much_the_cumulative_refund_grew() {
    let refund = |fee: &str| {
        notification(
            "TRADE_SUCCESS",
            "10.00",
            &format!("&refund_fee={fee}&out_biz_no=R"),
        )
    };
    let closed = notification("TRADE_CLOSED", "10.00", "&refund_fee=10.00&out_biz_no=R3");
    let audit = [
        row(
            1,
            1,
            Source::Notify,
            Verdict::Applied,
            None,
            "TRADE_SUCCESS",
            refund("2.00"),
        ),
        row(
            2,
            2,
            Source::Notify,
            Verdict::Applied,
            None,
            "TRADE_SUCCESS",
            refund("5.00"),
        ),
        row(
            3,
            3,
            Source::Notify,
            Verdict::Applied,
            None,
            "TRADE_CLOSED",
            closed,
        ),
    ];

    let elsewhere = Refund {
        out_request_no: "R".into(),
        amount: amount("2.00"),
        reason: None,
        status: RefundStatus::Succeeded,
        created_at: at(1),
        updated_at: at(1),
    };

    let timeline = Timeline::build(&order(), &audit, &[elsewhere], &[]);

    assert_eq!(
        texts(&timeline)[1..],
        [
            (
                EntryKind::Refunded,
                "Payment of 10.00 and refund of 2.00 applied (notification)"
            ),
            (
                EntryKind::RefundRecorded,
                "Refund R of 2.00 recorded as Alipay reported it (not requested through this \
                 service)"
            ),
            (EntryKind::Refunded, "Refund of 3.00 applied (notification)"),
            (
                EntryKind::Refunded,
                "Refund of 5.00 applied (notification): the order is fully refunded"
            ),
        ]
    );
    assert_eq!(
        timeline.entries()[3].message.as_ref().map(|m| m.kind),
        Some(MessageKind::RefundNotification)
    );
}

#[test]
fn closes_finishes_waits_and_query_answers_say_what_they_did() {
    let query = br#"{"code":"10000","msg":"Success","trade_no":"2026T1","out_trade_no":"T1","trade_status":"TRADE_SUCCESS","total_amount":"10.00"}"#;
    let audit = [
        row(
            1,
            1,
            Source::Notify,
            Verdict::Ignored,
            None,
            "WAIT_BUYER_PAY",
            notification("WAIT_BUYER_PAY", "10.00", ""),
        ),
        row(
            2,
            2,
            Source::Query,
            Verdict::Applied,
            None,
            "TRADE_SUCCESS",
            query.to_vec(),
        ),
        row(
            3,
            3,
            Source::Query,
            Verdict::Duplicate,
            None,
            "TRADE_SUCCESS",
            query.to_vec(),
        ),
        row(
            4,
            4,
            Source::Notify,
            Verdict::Applied,
            None,
            "TRADE_FINISHED",
            notification("TRADE_FINISHED", "10.00", ""),
        ),
    ];
    let unpaid = [row(
        1,
        1,
        Source::Query,
        Verdict::Applied,
        None,
        "TRADE_CLOSED",
        b"ACQ.TRADE_NOT_EXIST".to_vec(),
    )];

    let paid = Timeline::build(&order(), &audit, &[], &[]);
    let closed = Timeline::build(&order(), &unpaid, &[], &[]);

    assert_eq!(
        texts(&paid)[1..],
        [
            (
                EntryKind::Ignored,
                "The buyer has not paid yet (WAIT_BUYER_PAY), nothing changed (notification)"
            ),
            (EntryKind::Paid, "Payment of 10.00 applied (query answer)"),
            (
                EntryKind::Duplicate,
                "Query answer (TRADE_SUCCESS) agrees with the order, nothing changed"
            ),
            (
                EntryKind::Finished,
                "Alipay finished the trade (TRADE_FINISHED): it can no longer be refunded \
                 (notification)"
            ),
        ]
    );
    assert_eq!(
        texts(&closed)[1..],
        [(
            EntryKind::Closed,
            "Alipay has no trade for the order: nobody paid, order closed (query answer)"
        )]
    );
}

#[test]
fn an_unreadable_anomaly_is_explained_in_words() {
    let audit = [row(
        1,
        1,
        Source::Notify,
        Verdict::Anomaly,
        Some(AnomalyReason::IncompleteNotification),
        "TRADE_SUCCESS",
        b"trade_status=TRADE_SUCCESS&out_trade_no=T1".to_vec(),
    )];

    let timeline = Timeline::build(&order(), &audit, &[], &[]);

    assert_eq!(
        timeline.entries()[1].text,
        format!(
            "Anomaly: {} — order untouched (notification)",
            AnomalyReason::IncompleteNotification.explain()
        )
    );
}

#[test]
fn refused_refunds_and_webhook_attempts_join_in_time_order() {
    let refunds = [Refund {
        out_request_no: "R9".into(),
        amount: amount("4.00"),
        reason: None,
        status: RefundStatus::Failed,
        created_at: at(5),
        updated_at: at(6),
    }];
    let events = [EventDetail {
        event: StoredEvent {
            id: "evt_1".into(),
            event_type: "refund.failed".into(),
            out_trade_no: Some("T1".into()),
            payload: "{}".into(),
            created_at: at(6),
        },
        deliveries: vec![Delivery {
            endpoint: "default".into(),
            status: DeliveryStatus::Delivered,
            attempts: 2,
            next_attempt_at: None,
        }],
        attempts: vec![
            AttemptRecord {
                endpoint: "default".into(),
                attempted_at: at(8),
                latency_ms: 3,
                status_code: Some(200),
                error: None,
                response_body: None,
            },
            AttemptRecord {
                endpoint: "default".into(),
                attempted_at: at(7),
                latency_ms: 1,
                status_code: None,
                error: Some("connection refused".into()),
                response_body: None,
            },
        ],
    }];

    let timeline = Timeline::build(&order(), &[], &refunds, &events);

    assert_eq!(
        texts(&timeline)[1..],
        [
            (EntryKind::RefundRequested, "Refund R9 of 4.00 requested"),
            (
                EntryKind::RefundFailed,
                "Refund R9 of 4.00 refused by Alipay"
            ),
            (
                EntryKind::WebhookEvent,
                "Event refund.failed evt_1 written: delivered default"
            ),
            (
                EntryKind::WebhookAttempt,
                "Webhook refund.failed to default: connection refused in 1 ms"
            ),
            (
                EntryKind::WebhookAttempt,
                "Webhook refund.failed to default: HTTP 200 in 3 ms"
            ),
        ]
    );
    assert!(timeline.entries()[3..]
        .iter()
        .all(|e| e.event_id.as_deref() == Some("evt_1")));
}
