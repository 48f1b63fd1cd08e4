//! Hostile requests to every route, from one table: none panics, each gets its documented
//! status, and the database holds nothing new but the audit rows the notify policy keeps.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::helpers::*;
use crate::on_both_databases;

on_both_databases!(hostile_requests_get_clear_errors_and_write_nothing);

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    content_type: &'static str,
    token: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// For a refused notification: the reason `/metrics` must count it under, when the status
    /// alone would not show why it was refused.
    reason: Option<&'static str>,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
) -> Case {
    let content_type = if path.starts_with("/api") {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    };
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type,
        token: Some(API_TOKEN),
        body: body.into(),
        status,
        reason: None,
    }
}

fn notify(name: &'static str, body: impl Into<Vec<u8>>, status: u16) -> Case {
    case(name, "POST", "/alipay/notify", body, status)
}

fn api(name: &'static str, body: serde_json::Value, status: u16) -> Case {
    case(name, "POST", "/api/orders", body.to_string(), status)
}

fn cases() -> Vec<Case> {
    let order = trade_success("H1", "10.00");
    let valid = genuine(&order);
    let unsigned = valid.split("&sign=").next().unwrap().to_owned();
    let huge_no = "9".repeat(10_000);
    let many_params: String = (0..5000).map(|i| format!("p{i}=v&")).collect();
    let metachars = "'; drop table payment_order; -- <script>alert(1)</script>";
    vec![
        notify(
            "oversized body",
            format!("{valid}&pad={}", "x".repeat(70_000)),
            413,
        ),
        Case {
            content_type: "application/json",
            ..notify("wrong content type", valid.clone(), 415)
        },
        Case {
            method: "GET",
            ..notify("GET instead of POST", "", 405)
        },
        Case {
            method: "PUT",
            ..notify("PUT instead of POST", valid.clone(), 405)
        },
        Case {
            content_type: "",
            ..notify("no content type", valid.clone(), 415)
        },
        notify(
            "invalid percent-encoding",
            format!("{unsigned}&body=%G1&sign=x"),
            400,
        ),
        // Signed correctly over their raw bytes: the decoding after the signature refuses them.
        Case {
            reason: Some("malformed"),
            ..notify(
                "invalid UTF-8, genuinely signed",
                genuine_undecodable(&order, "utf-8", b"\xFF\xFE"),
                400,
            )
        },
        Case {
            reason: Some("malformed"),
            ..notify(
                "invalid GBK, genuinely signed",
                genuine_undecodable(&order, "GBK", b"\x81\x20"),
                400,
            )
        },
        notify("duplicate keys", format!("{valid}&total_amount=0.01"), 400),
        notify(
            "thousands of parameters",
            format!("{many_params}{valid}"),
            400,
        ),
        notify("missing sign", unsigned.clone(), 400),
        notify("empty sign", format!("{unsigned}&sign="), 400),
        notify("short signature", format!("{unsigned}&sign=AAAA"), 400),
        notify(
            "signature not base64",
            format!("{unsigned}&sign=%21%21%21%21"),
            400,
        ),
        Case {
            reason: Some("sign_type"),
            ..notify(
                "sign_type RSA, genuinely signed with SHA-1",
                downgraded_to_sha1(&order),
                400,
            )
        },
        notify(
            "unknown sign_type",
            valid.replace("sign_type=RSA2", "sign_type=SM2"),
            400,
        ),
        notify(
            "amount 1e3, genuinely signed",
            genuine(&with(order.clone(), "total_amount", "1e3")),
            422,
        ),
        notify(
            "amount -0.01, genuinely signed",
            genuine(&with(order.clone(), "total_amount", "-0.01")),
            422,
        ),
        notify(
            "amount 0.001, genuinely signed",
            genuine(&with(order.clone(), "total_amount", "0.001")),
            422,
        ),
        notify(
            "huge out_trade_no, genuinely signed",
            genuine(&with(order.clone(), "out_trade_no", &huge_no)),
            422,
        ),
        notify(
            "metacharacters, genuinely signed",
            genuine(&with(order.clone(), "out_trade_no", metachars)),
            422,
        ),
        api(
            "amount 1e3",
            serde_json::json!({"subject": "t", "total_amount": "1e3"}),
            422,
        ),
        api(
            "amount -0.01",
            serde_json::json!({"subject": "t", "total_amount": "-0.01"}),
            422,
        ),
        api(
            "amount 0.001",
            serde_json::json!({"subject": "t", "total_amount": "0.001"}),
            422,
        ),
        api(
            "amount 100000000.01",
            serde_json::json!({"subject": "t", "total_amount": "100000000.01"}),
            422,
        ),
        api(
            "huge out_trade_no",
            serde_json::json!({"out_trade_no": huge_no, "subject": "t", "total_amount": "1"}),
            422,
        ),
        api(
            "SQL metacharacters",
            serde_json::json!({"out_trade_no": metachars, "subject": "t", "total_amount": "1"}),
            422,
        ),
        api(
            "HTML in subject",
            serde_json::json!({"subject": "<script>", "total_amount": "1"}),
            201,
        ),
        case("not JSON", "POST", "/api/orders", "{subject:", 422),
        Case {
            token: None,
            ..api(
                "no token",
                serde_json::json!({"subject": "t", "total_amount": "1"}),
                401,
            )
        },
        case("unknown order", "GET", "/api/orders/NOPE", "", 404),
        case(
            "order lookup with metacharacters",
            "GET",
            "/api/orders/%27%3B--",
            "",
            404,
        ),
        case(
            "refund of a pending order",
            "POST",
            "/api/orders/H1/refunds",
            r#"{"amount":"1.00"}"#,
            409,
        ),
        case(
            "refund amount -1",
            "POST",
            "/api/orders/H1/refunds",
            r#"{"amount":"-1"}"#,
            422,
        ),
        case(
            "form: new order, checkout closed",
            "POST",
            "/alipay/create",
            "subject=x&total_amount=0.01",
            403,
        ),
        case(
            "form: existing order, other amount",
            "POST",
            "/alipay/create",
            "out_trade_no=H1&total_amount=0.01",
            409,
        ),
        case(
            "form: invalid percent-encoding",
            "POST",
            "/alipay/create",
            "out_trade_no=%G1",
            400,
        ),
        case(
            "return: unsigned",
            "GET",
            "/payment/success?out_trade_no=H1",
            "",
            400,
        ),
        case(
            "return: invalid percent-encoding",
            "GET",
            "/payment/success?out_trade_no=%",
            "",
            400,
        ),
        case(
            "return: forged",
            "GET",
            &format!("/payment/success?{}", signed_body(&order, &keys().forger)),
            "",
            400,
        ),
    ]
}

async fn hostile_requests_get_clear_errors_and_write_nothing(db: Db) {
    // Generous: a busy two-core machine may take seconds over a request, and no case here is
    // about timing (the slow body below is).
    let app = spawn_with(db, |s| s.http.request_timeout_seconds = 30).await;
    app.pending_order("H1", "10.00").await;
    // A fresh connection per case: the service may close one after refusing a request whose
    // body it did not read, and a pooled connection reused at that moment fails to send.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    for case in cases() {
        let counted_before = match case.reason {
            Some(reason) => app.counted("rejected", reason).await,
            None => 0,
        };
        let mut request = client
            .request(case.method.parse().unwrap(), app.url(&case.path))
            .body(case.body);
        if !case.content_type.is_empty() {
            request = request.header("content-type", case.content_type);
        }
        if let Some(token) = case.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(response.status().as_u16(), case.status, "{}", case.name);
        if case.path == "/alipay/notify" {
            let content_type = response.headers()[reqwest::header::CONTENT_TYPE].clone();
            assert_eq!(content_type, "text/plain; charset=utf-8", "{}", case.name);
            assert_eq!(response.text().await.unwrap(), "fail", "{}", case.name);
        }
        if let Some(reason) = case.reason {
            let counted = app.counted("rejected", reason).await;
            assert_eq!(
                counted,
                counted_before + 1,
                "{}: not counted as {reason}",
                case.name
            );
        }
    }
    // Every refusal of a notification is counted with its reason, the edge's included.
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for reason in [
        "too_large",
        "content_type",
        "method",
        "malformed",
        "bad_signature",
    ] {
        let series = format!("verdict=\"rejected\",reason=\"{reason}\"");
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }

    // Only the order created with an HTML subject (escaped wherever shown) is new.
    let orders = app.store.orders(None, 100).await.unwrap();
    assert_eq!(orders.len(), 2, "{orders:?}");
    assert_eq!(
        app.order("H1").await.status,
        alipay_notify::orders::OrderStatus::Pending
    );
    assert!(app.store.refunds("H1").await.unwrap().is_empty());
    // Genuinely signed but unusable notifications are kept as anomalies; nothing else is.
    let log = app.store.audit_log("H1").await.unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.iter().all(|entry| entry.verdict.as_str() == "anomaly"));
    assert!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success(),
        "still serving"
    );
}

#[tokio::test]
async fn a_client_too_slow_to_send_its_body_gets_408() {
    let app = spawn_with(Db::Sqlite, |s| s.http.request_timeout_seconds = 1).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = "POST /alipay/notify HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nnotify_id=1";
    stream.write_all(head.as_bytes()).await.unwrap();

    let reply = read_reply(&mut stream, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nfail"), "{reply}");
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_without_being_read() {
    let app = spawn_app(Db::Sqlite).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = "POST /alipay/notify HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 10000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();

    let reply = read_reply(&mut stream, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nfail"), "{reply}");
}

/// One whole reply (its head and a `fail` or `success` body), read within `within`.
async fn read_reply(stream: &mut tokio::net::TcpStream, within: Duration) -> String {
    let mut reply = Vec::new();
    let reading = async {
        let mut chunk = [0u8; 1024];
        loop {
            let read = tokio::io::AsyncReadExt::read(stream, &mut chunk)
                .await
                .unwrap();
            reply.extend_from_slice(&chunk[..read]);
            if read == 0 || reply.ends_with(b"fail") || reply.ends_with(b"success") {
                break;
            }
        }
    };
    tokio::time::timeout(within, reading)
        .await
        .expect("a reply in time");
    String::from_utf8_lossy(&reply).into_owned()
}
