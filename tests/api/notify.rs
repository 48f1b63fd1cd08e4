//! The notify path, step by step: parse, verify, check, apply, reply.

use crate::helpers::*;
use crate::on_both_databases;
use alipay_notify::orders::OrderStatus;

on_both_databases!(
    genuine_notify_marks_pending_order_paid,
    duplicate_notify_is_acknowledged_and_applied_once,
    concurrent_duplicates_apply_exactly_once,
    forged_or_tampered_notify_changes_nothing,
    malformed_bodies_are_refused_with_4xx_fail,
    genuine_but_inconsistent_notify_is_an_anomaly,
    wait_buyer_pay_changes_nothing,
    statuses_never_move_backwards,
    trade_closed_closes_pending_and_refunds_paid,
    gbk_notification_verifies_over_gbk_bytes,
    database_failure_answers_fail_and_writes_nothing,
    audit_keeps_each_body_byte_for_byte_when_batched,
    past_the_in_flight_limit_a_notification_is_answered_fail_at_once,
);

async fn genuine_notify_marks_pending_order_paid(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1001", "88.00").await;

    let (status, reply) = app.notify(genuine(&trade_success("T1001", "88.00"))).await;

    assert_eq!((status, reply.as_str()), (200, "success"));
    let order = app.order("T1001").await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(order.trade_no.as_deref(), Some("2026112822001T1001"));
    assert_eq!(order.buyer_id.as_deref(), Some("2088102177846880"));
    assert_eq!(
        order.alipay_trade_status.map(|s| s.as_str()),
        Some("TRADE_SUCCESS")
    );
    // gmt_payment is Beijing time: 23:10:04 +08:00 is 15:10:04 UTC.
    assert_eq!(
        order.paid_at,
        Some(time::macros::datetime!(2026-11-28 15:10:04 UTC))
    );
    assert_eq!(app.verdicts("T1001").await, ["applied"]);
}

async fn duplicate_notify_is_acknowledged_and_applied_once(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1002", "1.00").await;
    let body = genuine(&trade_success("T1002", "1.00"));

    let first = app.notify(body.clone()).await;
    let paid_at = app.order("T1002").await.paid_at;
    let second = app.notify(body).await;

    assert_eq!(first, (200, "success".into()));
    assert_eq!(second, (200, "success".into()));
    assert_eq!(app.order("T1002").await.paid_at, paid_at);
    assert_eq!(app.verdicts("T1002").await, ["applied", "duplicate"]);
}

async fn concurrent_duplicates_apply_exactly_once(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1003", "12.34").await;
    let body = genuine(&trade_success("T1003", "12.34"));

    let replies = futures::future::join_all((0..40).map(|_| app.notify(body.clone()))).await;

    assert!(
        replies.iter().all(|r| *r == (200, "success".to_owned())),
        "{replies:?}"
    );
    let verdicts = app.verdicts("T1003").await;
    assert_eq!(verdicts.len(), 40);
    assert_eq!(
        verdicts.iter().filter(|v| *v == "applied").count(),
        1,
        "{verdicts:?}"
    );
    assert_eq!(app.order("T1003").await.status, OrderStatus::Paid);
}

async fn forged_or_tampered_notify_changes_nothing(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1004", "100.00").await;
    let params = trade_success("T1004", "100.00");
    let tampered = genuine(&params).replace("total_amount=100%2E00", "total_amount=1%2E00");
    assert!(tampered.contains("total_amount=1%2E00"));
    let unsigned = genuine(&params).split("&sign=").next().unwrap().to_owned();

    for body in [
        signed_body(&params, &keys().forger),
        signed_body(&params, &keys().app),
        tampered,
        unsigned.clone(),
        format!("{unsigned}&sign="),
        format!("{unsigned}&sign=bm90IGEgc2lnbmF0dXJl"),
        format!("{unsigned}&sign=%%%"),
    ] {
        let (status, reply) = app.notify(body.clone()).await;
        assert_eq!((status, reply.as_str()), (400, "fail"), "{body}");
    }
    // Valid RSA-SHA1 under sign_type=RSA: refused for its sign_type, never verified as SHA-1.
    let downgraded = downgraded_to_sha1(&params);
    assert_eq!(app.notify(downgraded).await, (400, "fail".into()));
    assert_eq!(app.counted("rejected", "sign_type").await, 1);
    assert_eq!(app.order("T1004").await.status, OrderStatus::Pending);
    assert!(
        app.verdicts("T1004").await.is_empty(),
        "unverified bodies are not stored"
    );
}

async fn malformed_bodies_are_refused_with_4xx_fail(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1005", "5.00").await;
    let genuine_body = genuine(&trade_success("T1005", "5.00"));

    let repeated = format!("{genuine_body}&total_amount=0.01");
    assert_eq!(
        app.notify(repeated).await,
        (400, "fail".into()),
        "parameter pollution"
    );
    assert_eq!(app.notify("a=%zz").await, (400, "fail".into()));
    let invalid_utf8 = genuine_undecodable(&trade_success("T1005", "5.00"), "utf-8", b"\xFF\xFE");
    assert_eq!(app.notify(invalid_utf8).await, (400, "fail".into()));
    assert_eq!(app.counted("rejected", "bad_signature").await, 0);

    let json = app
        .client
        .post(app.url("/alipay/notify"))
        .header("content-type", "application/json")
        .body(genuine_body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);
    let huge = format!("{genuine_body}&pad={}", "a".repeat(70 * 1024));
    assert_eq!(app.notify(huge).await.0, 413);

    assert_eq!(app.order("T1005").await.status, OrderStatus::Pending);
    assert!(app.verdicts("T1005").await.is_empty());
}

async fn genuine_but_inconsistent_notify_is_an_anomaly(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1006", "20.00").await;
    let base = trade_success("T1006", "20.00");
    let cases = [
        (
            with(base.clone(), "total_amount", "0.01"),
            "amount_mismatch",
        ),
        (
            with(base.clone(), "app_id", "2021999999999999"),
            "app_id_mismatch",
        ),
        (
            with(base.clone(), "seller_id", "2088999999999999"),
            "seller_id_mismatch",
        ),
        (
            with(base.clone(), "trade_status", "TRADE_PAID_MAYBE"),
            "incomplete_notification",
        ),
    ];

    for (params, _) in &cases {
        assert_eq!(app.notify(genuine(params)).await, (422, "fail".into()));
    }

    assert_eq!(app.order("T1006").await.status, OrderStatus::Pending);
    let log = app.store.audit_log("T1006").await.unwrap();
    let reasons: Vec<_> = log
        .iter()
        .map(|e| (e.verdict.as_str(), e.reason.unwrap().as_str()))
        .collect();
    let expected: Vec<_> = cases.iter().map(|(_, r)| ("anomaly", *r)).collect();
    assert_eq!(reasons, expected);

    let unknown = trade_success("T404", "20.00");
    assert_eq!(app.notify(genuine(&unknown)).await, (422, "fail".into()));
    assert_eq!(
        app.store.audit_log("T404").await.unwrap()[0]
            .reason
            .map(|r| r.as_str()),
        Some("unknown_order")
    );
}

async fn wait_buyer_pay_changes_nothing(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1007", "3.00").await;
    let waiting = with(
        trade_success("T1007", "3.00"),
        "trade_status",
        "WAIT_BUYER_PAY",
    );

    assert_eq!(app.notify(genuine(&waiting)).await, (200, "success".into()));

    assert_eq!(app.order("T1007").await.status, OrderStatus::Pending);
    assert_eq!(app.verdicts("T1007").await, ["ignored"]);
}

async fn statuses_never_move_backwards(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1008", "9.99").await;
    let success = trade_success("T1008", "9.99");
    let finished = with(
        with(success.clone(), "trade_status", "TRADE_FINISHED"),
        "notify_id",
        "n2",
    );

    // Out of order: TRADE_FINISHED first, then the late TRADE_SUCCESS.
    assert_eq!(
        app.notify(genuine(&finished)).await,
        (200, "success".into())
    );
    assert_eq!(app.notify(genuine(&success)).await, (200, "success".into()));

    let order = app.order("T1008").await;
    assert_eq!(order.status, OrderStatus::Paid);
    assert_eq!(
        order.alipay_trade_status.map(|s| s.as_str()),
        Some("TRADE_FINISHED")
    );
    assert_eq!(app.verdicts("T1008").await, ["applied", "duplicate"]);
}

async fn trade_closed_closes_pending_and_refunds_paid(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1009", "1.00").await;
    app.pending_order("T1010", "1.00").await;
    let closed = |no| {
        let params = with(trade_success(no, "1.00"), "trade_status", "TRADE_CLOSED");
        with(with(params, "gmt_payment", ""), "notify_id", "closed")
    };

    assert_eq!(
        app.notify(genuine(&closed("T1009"))).await,
        (200, "success".into())
    );
    app.notify(genuine(&trade_success("T1010", "1.00"))).await;
    let refunded = with(
        with(closed("T1010"), "refund_fee", "1.00"),
        "gmt_refund",
        "2026-11-29 10:00:00",
    );
    assert_eq!(
        app.notify(genuine(&refunded)).await,
        (200, "success".into())
    );
    // A late duplicate of the payment cannot undo the refund.
    assert_eq!(
        app.notify(genuine(&trade_success("T1010", "1.00"))).await,
        (200, "success".into())
    );

    assert_eq!(app.order("T1009").await.status, OrderStatus::Closed);
    assert!(app.order("T1009").await.closed_at.is_some());
    assert_eq!(app.order("T1010").await.status, OrderStatus::Refunded);
    assert_eq!(
        app.verdicts("T1010").await,
        ["applied", "applied", "duplicate"]
    );
}

async fn gbk_notification_verifies_over_gbk_bytes(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1011", "66.00").await;
    let params: Vec<(String, Vec<u8>)> = with(trade_success("T1011", "66.00"), "charset", "GBK")
        .into_iter()
        .map(|(k, v)| {
            let value = if k == "subject" {
                "乌龙茶 250克".to_owned()
            } else {
                v
            };
            let (bytes, _, unmappable) = encoding_rs::GBK.encode(&value);
            assert!(!unmappable);
            (k, bytes.into_owned())
        })
        .collect();

    let body = signed_body_bytes(&params, &keys().alipay);
    assert!(
        String::from_utf8_lossy(&body).contains("%CE%DA"),
        "subject travels as GBK bytes"
    );

    assert_eq!(app.notify(body).await, (200, "success".into()));
    assert_eq!(app.order("T1011").await.status, OrderStatus::Paid);
}

async fn database_failure_answers_fail_and_writes_nothing(db: Db) {
    let app = spawn_app(db).await;
    app.pending_order("T1012", "7.00").await;
    // Break the audit table so the transaction fails after the order update.
    break_audit_table(&app).await;

    let (status, reply) = app.notify(genuine(&trade_success("T1012", "7.00"))).await;

    assert_eq!((status, reply.as_str()), (503, "fail"));
    assert_eq!(
        app.order("T1012").await.status,
        OrderStatus::Pending,
        "rolled back"
    );
}

/// Concurrent notifications share a commit (group commit writes a batch's audit rows in one
/// statement); each row still holds its own body's exact bytes.
async fn audit_keeps_each_body_byte_for_byte_when_batched(db: Db) {
    let app = spawn_app(db).await;
    let numbers: Vec<String> = (0..24).map(|i| format!("T20{i:02}")).collect();
    for no in &numbers {
        app.pending_order(no, "3.21").await;
    }
    let bodies: Vec<String> = numbers
        .iter()
        .map(|no| genuine(&trade_success(no, "3.21")))
        .collect();

    let replies = futures::future::join_all(bodies.iter().map(|b| app.notify(b.clone()))).await;

    assert!(replies.iter().all(|r| r.0 == 200), "{replies:?}");
    let sql = "select out_trade_no, raw_body from notification order by id";
    let rows: Vec<(String, Vec<u8>)> = if app.database_url.starts_with("sqlite:") {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
    };
    assert_eq!(rows.len(), numbers.len());
    for (no, raw) in &rows {
        let at = numbers
            .iter()
            .position(|n| n == no)
            .expect("a notified order");
        assert_eq!(raw, bodies[at].as_bytes(), "raw body of {no}");
        assert_eq!(app.order(no).await.status, OrderStatus::Paid);
    }
}

/// Load shedding: with writes held up, the notifications in flight wait for their commit, and one
/// more is answered `fail` straight away and leaves no trace; Alipay's resend is then applied.
async fn past_the_in_flight_limit_a_notification_is_answered_fail_at_once(db: Db) {
    let app = std::sync::Arc::new(spawn_with(db, |s| s.notify.max_in_flight = 2).await);
    for no in ["T3001", "T3002", "T3003"] {
        app.pending_order(no, "5.00").await;
    }
    let held = WritesHeld::hold(&app).await;
    let waiting: Vec<_> = ["T3001", "T3002"]
        .into_iter()
        .map(|no| {
            let app = app.clone();
            tokio::spawn(async move { app.notify(genuine(&trade_success(no, "5.00"))).await })
        })
        .collect();
    app.wait_for_metric("alipay_notify_notifications_in_flight 2")
        .await;

    let started = std::time::Instant::now();
    let (status, reply) = app.notify(genuine(&trade_success("T3003", "5.00"))).await;

    assert_eq!((status, reply.as_str()), (503, "fail"));
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(app.counted("shed", "overloaded").await, 1);
    assert!(
        app.verdicts("T3003").await.is_empty(),
        "a shed notification leaves no trace"
    );
    held.release().await;
    for reply in futures::future::join_all(waiting).await {
        assert_eq!(reply.unwrap(), (200, "success".to_owned()));
    }
    // Alipay's resend.
    let (status, reply) = app.notify(genuine(&trade_success("T3003", "5.00"))).await;
    assert_eq!((status, reply.as_str()), (200, "success"));
    for no in ["T3001", "T3002", "T3003"] {
        assert_eq!(app.order(no).await.status, OrderStatus::Paid, "{no}");
    }
    app.wait_for_metric("alipay_notify_notifications_in_flight 0")
        .await;
}

/// Another connection holding the database's write lock (SQLite) or an exclusive lock on the
/// orders (Postgres), so that the service's writes wait.
enum WritesHeld {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WritesHeld {
    async fn hold(app: &TestApp) -> Self {
        use sqlx::Connection;
        if app.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query("begin immediate")
                .execute(&mut conn)
                .await
                .unwrap();
            Self::Sqlite(conn)
        } else {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query("begin").execute(&mut conn).await.unwrap();
            sqlx::query("lock table payment_order in exclusive mode")
                .execute(&mut conn)
                .await
                .unwrap();
            Self::Postgres(conn)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut conn) => {
                sqlx::query("rollback").execute(&mut conn).await.unwrap();
            }
            Self::Postgres(mut conn) => {
                sqlx::query("rollback").execute(&mut conn).await.unwrap();
            }
        }
    }
}

async fn break_audit_table(app: &TestApp) {
    let sql = "alter table notification rename to notification_gone";
    if app.database_url.starts_with("sqlite:") {
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    } else {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url)
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}

/// Several instances share one Postgres: concurrent copies of one notification, spread over two
/// instances, still apply exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_apply_exactly_once() {
    let first = spawn_app(Db::Postgres).await;
    let second = spawn_sibling(&first).await;
    for n in 0..5 {
        first.pending_order(&format!("T5{n:03}"), "12.00").await;
    }

    let requests = (0..5).flat_map(|n| {
        let body = genuine(&trade_success(&format!("T5{n:03}"), "12.00"));
        let (first, second) = (&first, &second);
        (0..10).map(move |i| {
            let body = body.clone();
            async move {
                if i % 2 == 0 {
                    first.notify(body).await
                } else {
                    second.notify(body).await
                }
            }
        })
    });
    let replies = futures::future::join_all(requests).await;

    assert!(
        replies.iter().all(|r| *r == (200, "success".to_owned())),
        "{replies:?}"
    );
    for n in 0..5 {
        let verdicts = first.verdicts(&format!("T5{n:03}")).await;
        assert_eq!(verdicts.len(), 10);
        assert_eq!(
            verdicts.iter().filter(|v| *v == "applied").count(),
            1,
            "{verdicts:?}"
        );
    }
}
