//! Public-key certificate mode against the simulated Alipay, which issues its own hierarchy:
//! paying, reconciling, closing and refunding; Alipay rotating its certificate, to one that
//! chains to the roots and to one that does not; and the files a merchant can get wrong.

use std::time::Duration;

use alipay_notify::config::Settings;
use alipay_notify::orders::{NewOrder, OrderStatus};
use alipay_notify::startup::Application;
use alipay_sim::{Faults, Rotation, Validity};
use serde_json::json;
use time::OffsetDateTime;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(
    pay_reconcile_close_and_refund_work_in_certificate_mode,
    a_rotated_certificate_that_chains_is_fetched_and_used,
    a_rotated_certificate_that_does_not_chain_is_refused_and_changes_nothing,
    a_notification_after_an_unseen_rotation_verifies_on_alipays_resend,
);

/// Reconcile every second, with no grace period.
fn eager(settings: &mut Settings) {
    settings.reconcile.interval_seconds = 1;
    settings.reconcile.grace_seconds = 0;
}

impl TestApp {
    async fn metrics(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// The value of one series of `/metrics`, if present.
    async fn metric(&self, series: &str) -> Option<f64> {
        let prefix = format!("{series} ");
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
    }
}

async fn pay_reconcile_close_and_refund_work_in_certificate_mode(db: Db) {
    let flow = spawn_paying_in_cert_mode(db, Faults::default(), eager).await;

    // Pay at the cashier: the request names both SNs (the gateway refuses it otherwise) and the
    // notification verifies with the key of Alipay's certificate.
    let pay_url = flow.create_order("C1001", "10.00").await;
    let query = url::Url::parse(&pay_url).unwrap();
    let param = |name: &str| {
        query
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("app_cert_sn"), flow.sim.app_cert_sn(APP_ID));
    assert_eq!(param("alipay_root_cert_sn"), Some(flow.sim.root_cert_sn()));
    flow.click(&pay_url, "pay").await;
    flow.wait_for_status("C1001", OrderStatus::Paid).await;
    flow.sim
        .settled_attempts(
            "C1001",
            1,
            Duration::from_secs(5),
            Duration::from_millis(500),
        )
        .await;
    // Verified: recorded (applied, or a duplicate of reconciliation's query), never rejected.
    let log = flow.app.store.audit_log("C1001").await.unwrap();
    assert!(
        log.iter().any(|row| row.source.as_str() == "notify"),
        "{log:?}"
    );
    assert_eq!(flow.app.counted("rejected", "bad_signature").await, 0);

    // A payment whose notification never comes is found by a query.
    flow.sim.set_faults(
        "C1002",
        Faults {
            never_deliver: true,
            ..Faults::default()
        },
    );
    let pay_url = flow.create_order("C1002", "2.00").await;
    flow.click(&pay_url, "pay").await;
    flow.wait_for_status("C1002", OrderStatus::Paid).await;
    let log = flow.app.store.audit_log("C1002").await.unwrap();
    assert_eq!(log[0].source.as_str(), "query", "{log:?}");

    // An expired order nobody paid is closed at Alipay and here.
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(31);
    let new = NewOrder {
        out_trade_no: "C1003".into(),
        subject: "Tea".into(),
        body: None,
        total_amount: "9.00".parse().unwrap(),
        product: alipay_notify::alipay::product::Product::Page,
        created_at: past,
        expires_at: past + time::Duration::minutes(30),
    };
    flow.app.store.create_order(&new).await.unwrap();
    flow.wait_for_status("C1003", OrderStatus::Closed).await;

    // A refund's answer verifies too.
    let (status, refund) = flow.refund("C1001", json!({"amount": "3.00"})).await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["refund"]["status"], "succeeded");
    assert_eq!(refund["order"]["refunded_amount"], "3.00");

    // Each certificate's time left is exposed, named by its SN.
    let alipay_sn = flow.sim.alipay_cert_sn();
    let series = format!(
        "alipay_notify_alipay_certificate_expiry_seconds{{file=\"alipay\",sn=\"{alipay_sn}\"}}"
    );
    let left = flow.app.metric(&series).await.expect("the expiry gauge");
    assert!(left > 86_400.0 * 365.0, "{left}");
    let app_sn = flow.sim.app_cert_sn(APP_ID).unwrap();
    let series =
        format!("alipay_notify_alipay_certificate_expiry_seconds{{file=\"app\",sn=\"{app_sn}\"}}");
    assert!(flow.app.metric(&series).await.is_some());
}

async fn a_rotated_certificate_that_chains_is_fetched_and_used(db: Db) {
    let flow = spawn_paying_in_cert_mode(db, Faults::default(), |_| {}).await;
    flow.paid_order("C2001", "10.00").await;
    let before = flow.sim.alipay_cert_sn();

    let after = flow.sim.rotate_alipay_cert(Rotation::Trusted);

    assert_ne!(before, after);
    // The refund's answer is signed with a certificate the service has never seen: it
    // downloads it, checks it against the roots, and believes the answer.
    let (status, refund) = flow.refund("C2001", json!({"amount": "4.00"})).await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["order"]["refunded_amount"], "4.00");
    let installed = "alipay_notify_alipay_certificate_rotations_total{outcome=\"installed\"}";
    assert_eq!(flow.app.metric(installed).await, Some(1.0));
    let series = format!(
        "alipay_notify_alipay_certificate_expiry_seconds{{file=\"alipay\",sn=\"{after}\"}}"
    );
    assert!(flow.app.metric(&series).await.is_some());
    // Notifications signed with the new certificate verify.
    flow.paid_order("C2002", "1.00").await;
    assert_eq!(flow.app.verdicts("C2002").await, ["applied"]);
}

async fn a_rotated_certificate_that_does_not_chain_is_refused_and_changes_nothing(db: Db) {
    let flow = spawn_paying_in_cert_mode(db, Faults::default(), |s| {
        s.reconcile.interval_seconds = 0;
    })
    .await;
    flow.paid_order("C3001", "10.00").await;

    flow.sim.rotate_alipay_cert(Rotation::Untrusted);

    // Alipay's answer (it did refund) is signed by a certificate that does not chain to the
    // roots: not believed, so the refund stays pending and the order as it was.
    let (status, refund) = flow.refund("C3001", json!({"amount": "4.00"})).await;
    assert_eq!(status, 502, "{refund}");
    let message = refund["error"].as_str().unwrap_or_default();
    assert!(message.contains("not trusted"), "{message}");
    let order = flow.app.order("C3001").await;
    assert_eq!(order.status, OrderStatus::Paid);
    let refunds = flow.app.store.refunds("C3001").await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status.as_str(), "pending");
    let refused = "alipay_notify_alipay_certificate_rotations_total{outcome=\"refused\"}";
    assert!(flow.app.metric(refused).await >= Some(1.0));

    // Nor is a payment notification signed with it: the order stays pending.
    let pay_url = flow.create_order("C3002", "1.00").await;
    flow.click(&pay_url, "pay").await;
    flow.sim
        .wait_for_attempts("C3002", 2, Duration::from_secs(10))
        .await;
    assert_eq!(flow.app.order("C3002").await.status, OrderStatus::Pending);
    assert!(flow.app.counted("rejected", "bad_signature").await >= 2);
}

async fn a_notification_after_an_unseen_rotation_verifies_on_alipays_resend(db: Db) {
    // No reconciliation and no API call: the notification is the first the service hears of the
    // new certificate.
    let flow = spawn_paying_in_cert_mode(db, Faults::default(), |s| {
        s.reconcile.interval_seconds = 0;
    })
    .await;
    flow.sim.rotate_alipay_cert(Rotation::Trusted);

    let pay_url = flow.create_order("C4001", "5.00").await;
    flow.click(&pay_url, "pay").await;

    flow.wait_for_status("C4001", OrderStatus::Paid).await;
    let attempts = flow.sim.attempts("C4001");
    assert!(
        attempts.len() >= 2,
        "the first delivery was refused: {attempts:?}"
    );
    assert!(flow.app.counted("rejected", "bad_signature").await >= 1);
    let installed = "alipay_notify_alipay_certificate_rotations_total{outcome=\"installed\"}";
    assert_eq!(flow.app.metric(installed).await, Some(1.0));
}

/// Starts another service beside `flow`'s with the certificate files `prepare` picks, and
/// returns its start-up error.
async fn start_error(
    flow: &PayFlow,
    prepare: impl FnOnce(&alipay_sim::SimHandle, &std::path::Path, &mut Settings),
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let files = flow.sim.write_cert_files(APP_ID, dir.path()).unwrap();
    let database = tempfile::tempdir().unwrap();
    let mut settings = settings(&format!(
        "sqlite:{}",
        database.path().join("start.db").display()
    ));
    settings.alipay.gateway = flow.sim.gateway_url();
    settings.alipay.public_key = None;
    settings.alipay.app_cert_file = Some(files.app_cert);
    settings.alipay.cert_file = Some(files.alipay_cert);
    settings.alipay.root_cert_file = Some(files.root_cert);
    prepare(&flow.sim, dir.path(), &mut settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match Application::build_on(&settings, listener).await {
        Ok(_) => panic!("the service started"),
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_certificate_file_stops_start_up_naming_it() {
    let flow = &spawn_paying_in_cert_mode(Db::Sqlite, Faults::default(), |_| {}).await;
    // Not PEM: a certificate saved as DER.
    let message = start_error(flow, |_, dir, settings| {
        let path = dir.join("alipayCertPublicKey_RSA2.der");
        std::fs::write(&path, [0x30, 0x82, 0x03, 0x00, 0xff, 0xfe]).unwrap();
        settings.alipay.cert_file = Some(path);
    })
    .await;
    assert!(
        message.contains("ALIPAY_CERT_FILE")
            && message.contains("alipayCertPublicKey_RSA2.der")
            && message.contains("no PEM certificate"),
        "{message}"
    );

    // An app certificate that has expired.
    let message = start_error(flow, |sim, dir, settings| {
        let now = OffsetDateTime::now_utc();
        let validity = Validity {
            not_before: now - time::Duration::days(400),
            not_after: now - time::Duration::days(1),
        };
        let expired = sim
            .pki()
            .issue_app_cert(APP_ID, &keys().app.public_key_spki_der(), validity)
            .unwrap();
        let path = dir.join("expired.crt");
        std::fs::write(&path, expired.pem).unwrap();
        settings.alipay.app_cert_file = Some(path);
    })
    .await;
    assert!(
        message.contains("ALIPAY_APP_CERT_FILE")
            && message.contains("expired.crt")
            && message.contains("expired at"),
        "{message}"
    );

    // An app certificate for another key than ALIPAY_APP_PRIVATE_KEY.
    let message = start_error(flow, |sim, dir, settings| {
        let other = sim
            .pki()
            .issue_app_cert(
                APP_ID,
                &keys().alipay.public_key_spki_der(),
                Validity::leaf(),
            )
            .unwrap();
        let path = dir.join("other.crt");
        std::fs::write(&path, other.pem).unwrap();
        settings.alipay.app_cert_file = Some(path);
    })
    .await;
    assert!(
        message.contains("ALIPAY_APP_CERT_FILE")
            && message.contains("other.crt")
            && message.contains("another key"),
        "{message}"
    );

    // A root bundle without an RSA root.
    let message = start_error(flow, |_, _, settings| {
        let ec_only = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/certs/root_bundle_ec_only.crt"
        );
        settings.alipay.root_cert_file = Some(ec_only.into());
    })
    .await;
    assert!(
        message.contains("ALIPAY_ROOT_CERT_FILE")
            && message.contains("root_bundle_ec_only.crt")
            && message.contains("no RSA-signed root"),
        "{message}"
    );

    // Roots that did not issue Alipay's certificate.
    let message = start_error(flow, |_, _, settings| {
        let others = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/vectors/certs/root_bundle.crt"
        );
        settings.alipay.root_cert_file = Some(others.into());
    })
    .await;
    assert!(
        message.contains("ALIPAY_CERT_FILE") && message.contains("does not chain"),
        "{message}"
    );
}
