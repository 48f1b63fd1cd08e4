//! Public-key certificate mode against the simulated Alipay, which issues its own hierarchy:
//! paying, reconciling, closing and refunding; Alipay rotating its certificate, to one that
//! chains to the roots and to one that does not; and the files a merchant can get wrong.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alipay_notify::alipay::trust::CertFile;
use alipay_notify::config::Settings;
use alipay_notify::orders::OrderStatus;
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
    flow.app.expired_order("C1003", "9.00").await;
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

/// Starts another service beside `flow`'s with good certificate files but `file` replaced by
/// `path`, and returns its start-up error.
async fn start_error(flow: &PayFlow, file: CertFile, path: PathBuf) -> String {
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
    let replaced = match file {
        CertFile::App => &mut settings.alipay.app_cert_file,
        CertFile::Alipay => &mut settings.alipay.cert_file,
        CertFile::Root => &mut settings.alipay.root_cert_file,
    };
    *replaced = Some(path);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match Application::build_on(&settings, listener).await {
        Ok(_) => panic!("the service started"),
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_certificate_file_stops_start_up_naming_it() {
    let flow = &spawn_paying_in_cert_mode(Db::Sqlite, Faults::default(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let vector = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors/certs")
            .join(name)
    };
    let now = OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - time::Duration::days(400),
        not_after: now - time::Duration::days(1),
    };
    let app_cert = |spki: &[u8], validity| {
        let cert = flow.sim.pki().issue_app_cert(APP_ID, spki, validity);
        cert.unwrap().pem.into_bytes()
    };
    let app_spki = keys().app.public_key_spki_der();
    let other_spki = keys().alipay.public_key_spki_der();

    let cases: [(CertFile, PathBuf, &[&str]); 5] = [
        // Not PEM: a certificate saved as DER.
        (
            CertFile::Alipay,
            write("alipayCertPublicKey_RSA2.der", &[0x30, 0x82, 0x03, 0x00]),
            &["ALIPAY_CERT_FILE", "RSA2.der", "no PEM certificate"],
        ),
        (
            CertFile::App,
            write("expired.crt", &app_cert(&app_spki, expired)),
            &["ALIPAY_APP_CERT_FILE", "expired.crt", "expired at"],
        ),
        (
            CertFile::App,
            write("other.crt", &app_cert(&other_spki, Validity::leaf())),
            &["ALIPAY_APP_CERT_FILE", "other.crt", "another key"],
        ),
        (
            CertFile::Root,
            vector("root_bundle_ec_only.crt"),
            &["ALIPAY_ROOT_CERT_FILE", "ec_only.crt", "no RSA-signed root"],
        ),
        // Roots that did not issue Alipay's certificate: its file is the one that fails.
        (
            CertFile::Root,
            vector("root_bundle.crt"),
            &[
                "ALIPAY_CERT_FILE",
                "alipayCertPublicKey_RSA2.crt",
                "does not chain",
            ],
        ),
    ];
    for (file, path, expected) in cases {
        let message = start_error(flow, file, path).await;
        for part in expected {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }
}
