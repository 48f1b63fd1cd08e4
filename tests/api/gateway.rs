//! The gateway client against a misbehaving gateway: network errors and 5xx are retried with
//! backoff a bounded number of times; business errors are not retried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alipay_notify::alipay::gateway::{GatewayClient, GatewayError, RetryPolicy};
use axum::http::StatusCode;
use axum::routing::post;

use crate::helpers::*;

/// A gateway that answers each call with the next of `replies` (the last one repeats).
async fn gateway(replies: Vec<(StatusCode, String)>) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let app = axum::Router::new().route(
        "/gateway.do",
        post(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let reply = replies[n.min(replies.len() - 1)].clone();
            async move { reply }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/gateway.do", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn signed_query_response() -> String {
    let node = r#"{"code":"10000","msg":"Success","trade_no":"2026","out_trade_no":"T1","trade_status":"TRADE_SUCCESS","total_amount":"1.00"}"#;
    let sign = keys().alipay.sign(node.as_bytes());
    format!(r#"{{"alipay_trade_query_response":{node},"sign":"{sign}"}}"#)
}

fn client() -> GatewayClient {
    GatewayClient::new(RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(2),
    })
}

fn alipay_at(gateway: &str) -> alipay_notify::alipay::Alipay {
    let mut settings = settings("sqlite::memory:");
    settings.alipay.gateway = gateway.to_owned();
    settings.alipay().unwrap()
}

#[tokio::test]
async fn server_errors_are_retried_until_a_verified_answer() {
    let unavailable = (StatusCode::SERVICE_UNAVAILABLE, "busy".to_owned());
    let (url, calls) = gateway(vec![
        unavailable.clone(),
        unavailable,
        (StatusCode::OK, signed_query_response()),
    ])
    .await;

    let query = client()
        .query(&alipay_at(&url), "T1")
        .await
        .expect("third attempt answers");

    assert_eq!(query.value.trade_status, "TRADE_SUCCESS");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let (url, calls) = gateway(vec![(StatusCode::BAD_GATEWAY, String::new())]).await;

    let error = client().query(&alipay_at(&url), "T1").await.unwrap_err();

    assert!(matches!(error, GatewayError::Status(502)), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn business_errors_are_not_retried_and_unverified_answers_are_not_data() {
    let not_exist = r#"{"alipay_trade_query_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}}"#;
    let (url, calls) = gateway(vec![(StatusCode::OK, not_exist.to_owned())]).await;
    let error = client().query(&alipay_at(&url), "T1").await.unwrap_err();
    assert_eq!(error.sub_code(), Some("ACQ.TRADE_NOT_EXIST"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let forged = signed_query_response().replace("1.00", "9.99");
    let (url, calls) = gateway(vec![(StatusCode::OK, forged)]).await;
    let error = client().query(&alipay_at(&url), "T1").await.unwrap_err();
    assert!(error.to_string().contains("signature"), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unreachable_gateways_are_retried_then_reported() {
    // A port just released: connecting is refused. It cannot be a bound listener, whose
    // backlog would accept the connection.
    let closed = alipay_test_support::net::free_address();
    let url = format!("http://{closed}/gateway.do");

    let error = client().query(&alipay_at(&url), "T1").await.unwrap_err();

    assert!(matches!(error, GatewayError::Network(_)), "{error:?}");
}

#[tokio::test]
async fn reconciliation_refuses_a_verified_answer_about_another_order() {
    use alipay_notify::reconcile::{ReconcileError, Reconciler};

    let app = spawn_app(Db::Sqlite).await;
    let order = app.pending_order("OTHER", "1.00").await;
    let (url, _) = gateway(vec![(StatusCode::OK, signed_query_response())]).await;
    let reconciler = Reconciler {
        alipay: Arc::new(alipay_at(&url)),
        store: app.store.clone(),
        gateway: Arc::new(client()),
        metrics: Default::default(),
    };

    let error = reconciler.reconcile(&order).await.unwrap_err();

    assert!(
        matches!(error, ReconcileError::OtherOrder(ref no) if no == "T1"),
        "{error:?}"
    );
    assert_eq!(
        app.order("OTHER").await.status,
        alipay_notify::orders::OrderStatus::Pending
    );
}
