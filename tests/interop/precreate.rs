//! Precreate as `GatewayClient::precreate` sends it, caught by a fake gateway on a loopback port
//! that answers with the response the SDK's vectors were made with (signed with the "alipay" key
//! by python, and accepted by the SDK itself), then held against the SDK's request and checked by
//! python and openssl.
//!
//! The client signs at the wall clock, so its request cannot be compared with the SDK's frozen
//! one down to the signature: that needs a seam that builds precreate's signed parameters at a
//! given time. Everything but `timestamp` and `sign` is compared exactly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alipay_notify::alipay::gateway::{GatewayClient, RetryPolicy};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, Uri};
use axum::routing::any;

use crate::sdk::*;
use crate::vectors::*;

/// What reached the fake gateway.
struct Captured {
    method: Method,
    query: String,
    content_type: String,
    body: String,
}

/// A gateway that records the one request it is sent and answers `response`.
async fn fake_gateway(response: String) -> (String, Arc<Mutex<Vec<Captured>>>) {
    let captured = Arc::new(Mutex::new(Vec::new()));
    let record = captured.clone();
    let app = axum::Router::new().route(
        "/gateway.do",
        any(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                record.lock().unwrap().push(Captured {
                    method,
                    query: uri.query().unwrap_or_default().to_owned(),
                    content_type,
                    body: String::from_utf8(body.to_vec()).expect("a UTF-8 form body"),
                });
                let reply = response.clone();
                async move { ([(header::CONTENT_TYPE, "text/html;charset=utf-8")], reply) }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, captured)
}

/// Our precreate for the SDK's order, as the fake gateway caught it.
async fn captured_precreate(vectors: &SdkVectors) -> Captured {
    let response = vectors.named("qr").response.clone().expect("a response");
    let (url, captured) = fake_gateway(response).await;
    let client = GatewayClient::new(RetryPolicy {
        attempts: 1,
        first_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
    });

    let precreate = client
        .precreate(&vectors.alipay(&url), &vectors.order())
        .await
        .expect("the SDK's response verifies");

    assert_eq!(precreate.value.out_trade_no, vectors.input("out_trade_no"));
    assert!(precreate
        .value
        .qr_code
        .starts_with("https://qr.alipay.com/"));
    let mut requests = captured.lock().unwrap();
    assert_eq!(requests.len(), 1, "one attempt, one request");
    requests.pop().unwrap()
}

#[tokio::test]
async fn precreate_carries_the_sdks_parameters_and_biz_content() {
    let vectors = SdkVectors::load();

    let request = captured_precreate(&vectors).await;

    // As the official SDKs send it (the fzlee SDK sends a GET with everything in the query).
    assert_eq!(request.method, Method::POST);
    assert!(
        request
            .content_type
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        request.content_type
    );
    let body = form_decode(&[&request.body]);
    assert_eq!(body.keys().collect::<Vec<_>>(), ["biz_content"]);
    let ours = form_decode(&[&request.query, &request.body]);

    assert_same_parameters_as_sdks(&ours, vectors.named("qr"), &["timestamp"]);
    // Against the SDK signing our layout: every byte but the clock's, biz_content's text too.
    let layout = vectors.layout("qr");
    let live = ["timestamp", "sign"];
    let unsigned = |params: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        params
            .iter()
            .filter(|(k, _)| !live.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    assert_eq!(unsigned(&ours), unsigned(&layout.params));
    assert_eq!(ours["biz_content"], layout.biz_content);
}

#[tokio::test]
async fn precreate_verifies_as_python_and_openssl_rebuild_it() {
    let vectors = SdkVectors::load();

    let request = captured_precreate(&vectors).await;

    let decoded = verified_by_python_and_openssl(&[&request.query, &request.body]);
    let raw_sign = raw_value(request.query.as_bytes(), "sign");
    assert_product_request(&decoded, &vectors, "qr", raw_sign);
    let skew = decoded["timestamp_skew_seconds"].as_f64().unwrap();
    assert!(
        skew < 60.0,
        "timestamp {} is {skew}s away from Shanghai time",
        decoded["params"]["timestamp"]
    );
    assert_eq!(decoded["biz_content"]["time_expire"], "2026-11-29 01:00:05");
}
