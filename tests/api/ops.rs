//! What ops see: Prometheus metrics, request ids, and logs that never carry a secret.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use alipay_test_support::net::{address_was_taken, free_port};

use crate::helpers::*;

#[tokio::test]
async fn metrics_count_verdicts_reasons_and_transitions() {
    let app = spawn_app(Db::Sqlite).await;
    app.pending_order("M1", "1.00").await;
    let params = trade_success("M1", "1.00");
    app.notify(genuine(&params)).await;
    app.notify(genuine(&params)).await;
    app.notify(signed_body(&params, &keys().forger)).await;
    app.notify(genuine(&with(params, "total_amount", "2.00")))
        .await;

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for line in [
        r#"alipay_notify_notifications_total{verdict="applied",reason=""} 1"#,
        r#"alipay_notify_notifications_total{verdict="duplicate",reason=""} 1"#,
        r#"alipay_notify_notifications_total{verdict="rejected",reason="bad_signature"} 1"#,
        r#"alipay_notify_notifications_total{verdict="anomaly",reason="amount_mismatch"} 1"#,
        r#"alipay_notify_order_transitions_total{source="notify",to="paid"} 1"#,
        "alipay_notify_notify_duration_seconds_count 4",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

/// Runs a whole flow against `serve` as a separate process with debug JSON logs, then searches
/// everything it wrote for the private key and the API token.
#[tokio::test]
async fn no_secret_reaches_the_logs_of_a_full_flow() {
    let database = TestDatabase::create(Db::Sqlite).await;
    let private_pem = keys().app.to_pkcs8_pem();
    // A file, not a pipe: trace logs would fill a pipe and block the service.
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("service.log");
    let (mut child, base) = serve_logging_to(&database.url, &log_path).await;
    let client = reqwest::Client::new();

    let created = client
        .post(format!("{base}/api/orders"))
        .bearer_auth(API_TOKEN)
        .json(&serde_json::json!({"out_trade_no": "L1", "subject": "Tea", "total_amount": "1.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let wrong_token = client
        .get(format!("{base}/api/orders/L1"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), 401);
    let notify = |body: String| {
        client
            .post(format!("{base}/alipay/notify"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert_eq!(
        notify(genuine(&trade_success("L1", "1.00")))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "success"
    );
    notify(signed_body(&trade_success("L1", "1.00"), &keys().forger))
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = std::fs::read_to_string(&log_path).unwrap();

    let acknowledged = logs
        .lines()
        .find(|line| line.contains("notify acknowledged"))
        .unwrap_or_else(|| panic!("the notification was not logged:\n{logs}"));
    for field in [
        r#""out_trade_no":"L1""#,
        r#""verdict":"applied""#,
        r#""status":"paid""#,
        r#""notify_id":""#,
    ] {
        assert!(
            acknowledged.contains(field),
            "the notify line names the order, the notification and the verdict ({field}): {acknowledged}"
        );
    }
    assert!(
        logs.contains(r#""id":""#),
        "request lines carry a request id:\n{logs}"
    );
    assert!(
        !logs.contains(API_TOKEN),
        "the API token leaked into the logs"
    );
    let key_body: String = private_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for window in key_body.as_bytes().chunks(24) {
        let window = std::str::from_utf8(window).unwrap();
        assert!(
            !logs.contains(window),
            "private key material leaked into the logs: {window}"
        );
    }
}

/// `serve` on a free port with trace JSON logs to `log_path`; its base URL. It must be told a
/// port, which may be taken before it binds it: then it is started again on another.
async fn serve_logging_to(database_url: &str, log_path: &Path) -> (Child, String) {
    for _ in 0..5 {
        let port = free_port();
        let log_file = std::fs::File::create(log_path).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_alipay-notify"))
            .arg("serve")
            .env_clear()
            .env("DATABASE_URL", database_url)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("ALIPAY_APP_ID", APP_ID)
            .env("ALIPAY_SELLER_ID", SELLER_ID)
            .env("ALIPAY_APP_PRIVATE_KEY", keys().app.to_pkcs8_pem())
            .env("ALIPAY_PUBLIC_KEY", keys().alipay.public_key_base64())
            .env("API_TOKEN", API_TOKEN)
            .env("RECONCILE_INTERVAL_SECONDS", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "trace")
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        if wait_until_up(&mut child, &base, log_path).await {
            return (child, base);
        }
        let log = std::fs::read_to_string(log_path).unwrap_or_default();
        assert!(address_was_taken(&log), "the service did not start:\n{log}");
    }
    panic!("five ports in a row were taken before the service could bind them");
}

/// True once `/healthz` at `base` answers and the log says this child is listening (another
/// process might hold the port); false if the child exits first.
async fn wait_until_up(child: &mut Child, base: &str, log_path: &Path) -> bool {
    // Bounded: whatever took the port may accept connections and never answer.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let listening = || std::fs::read_to_string(log_path).is_ok_and(|l| l.contains("listening"));
        if client.get(format!("{base}/healthz")).send().await.is_ok() && listening() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not start at {base}");
}
