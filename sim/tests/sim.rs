//! The simulated Alipay gateway, spoken to over HTTP the way a merchant's server, a buyer's browser
//! and Alipay's notify client would. Each test starts its own simulator on port 0 and, where it
//! needs one, a tiny notify_url receiver on port 0.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alipay_notify::alipay::callback::{self, Verified};
use alipay_notify::alipay::clock::format_beijing;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_notify::alipay::notification::{Notification, TradeStatus};
use alipay_notify::alipay::pagepay::PagePay;
use alipay_notify::alipay::sign::{sign_content, REQUEST_EXCLUDED};
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use alipay_sim::{
    AttemptOutcome, DeliveryState, Faults, RegisteredApp, SimConfig, SimHandle, Simulator,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use serde_json::{json, Value};
use time::OffsetDateTime;
use url::form_urlencoded::byte_serialize;

const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000001";
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Harness

/// RSA key generation is slow in debug builds: one app key and one Alipay key per test binary.
fn key_pems() -> &'static (String, String) {
    static PEMS: OnceLock<(String, String)> = OnceLock::new();
    PEMS.get_or_init(|| {
        (
            PrivateKey::generate().to_pkcs8_pem(),
            PrivateKey::generate().to_pkcs8_pem(),
        )
    })
}

fn app_key() -> PrivateKey {
    PrivateKey::parse(&key_pems().0).unwrap()
}

/// One request the notify receiver got.
#[derive(Debug, Clone)]
struct Received {
    content_type: String,
    body: Vec<u8>,
    at: Instant,
}

/// Stands in for the merchant's notify_url: answers from a script, then `success`.
#[derive(Default)]
struct Receiver {
    replies: Mutex<VecDeque<&'static str>>,
    received: Mutex<Vec<Received>>,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        while self.received().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.received()
    }
}

async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> String {
    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    receiver.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    receiver.received.lock().unwrap().push(Received {
        content_type,
        body: body.to_vec(),
        at: Instant::now(),
    });
    tokio::time::sleep(receiver.delay).await;
    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
    let reply = receiver.replies.lock().unwrap().pop_front();
    reply.unwrap_or("success").to_owned()
}

async fn spawn_receiver(replies: &[&'static str], delay: Duration) -> (String, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        replies: Mutex::new(replies.iter().copied().collect()),
        delay,
        ..Receiver::default()
    });
    let app = axum::Router::new()
        .route("/notify", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

struct TestEnv {
    sim: SimHandle,
    merchant: Alipay,
    receiver: Arc<Receiver>,
    browser: reqwest::Client,
}

struct Options {
    faults: Faults,
    time_scale: f64,
    replies: &'static [&'static str],
    receiver_delay: Duration,
    app_id: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            faults: Faults::default(),
            time_scale: 0.0001,
            replies: &[],
            receiver_delay: Duration::ZERO,
            app_id: APP_ID,
        }
    }
}

async fn spawn_with(options: Options) -> TestEnv {
    let app_public = PublicKey::parse(&app_key().public_key_base64()).unwrap();
    let mut config = SimConfig::new(PrivateKey::parse(&key_pems().1).unwrap())
        .with_app(RegisteredApp::new(APP_ID, app_public, SELLER_ID));
    config.time_scale = options.time_scale;
    config.faults = options.faults;
    let sim = Simulator::start(config).await.unwrap();
    let (notify_url, receiver) = spawn_receiver(options.replies, options.receiver_delay).await;
    let merchant = Alipay::new(
        AlipayConfig {
            app_id: options.app_id.into(),
            seller_id: Some(SELLER_ID.into()),
            gateway: sim.gateway_url(),
            notify_url,
            return_url: "http://shop.example/payment/success".into(),
        },
        app_key(),
        sim.alipay_public_key(),
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestEnv {
        sim,
        merchant,
        receiver,
        browser,
    }
}

async fn spawn() -> TestEnv {
    spawn_with(Options::default()).await
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap()
}

impl TestEnv {
    fn pay_url_at(&self, out_trade_no: &str, total: &str, now: OffsetDateTime) -> String {
        let order = PagePay {
            out_trade_no,
            total_amount: amount(total),
            subject: "Oolong tea, 250 g",
            body: None,
            time_expire: now + time::Duration::minutes(30),
        };
        self.merchant.page_pay_url(&order, now)
    }

    fn pay_url(&self, out_trade_no: &str, total: &str) -> String {
        self.pay_url_at(out_trade_no, total, OffsetDateTime::now_utc())
    }

    async fn get(&self, url: &str) -> String {
        let response = self.browser.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Opens the cashier for an order and clicks `button` ("pay" or "cancel").
    async fn click(&self, out_trade_no: &str, total: &str, button: &str) -> reqwest::Response {
        let page = self.get(&self.pay_url(out_trade_no, total)).await;
        let action = form_action(&page, button);
        let url = format!("{}{action}", self.sim.base_url());
        self.browser.post(url).send().await.unwrap()
    }

    async fn pay(&self, out_trade_no: &str, total: &str) -> reqwest::Response {
        let response = self.click(out_trade_no, total, "pay").await;
        assert_eq!(response.status(), 303, "Pay redirects to return_url");
        response
    }

    /// An API call the way Alipay's SDKs make it: a form POST signed by the app key.
    async fn api(&self, method: &str, biz: Value) -> String {
        let now = format_beijing(OffsetDateTime::now_utc());
        let params = [
            ("app_id", APP_ID),
            ("method", method),
            ("format", "JSON"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("timestamp", &now),
            ("version", "1.0"),
            ("biz_content", &biz.to_string()),
        ]
        .map(|(k, v)| (k, v.as_bytes().to_vec()));
        let body = signed_form(&params);
        self.browser
            .post(self.sim.gateway_url())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The response object of a signed API answer, after checking its signature over the raw text.
    async fn api_verified(&self, method: &str, biz: Value) -> Value {
        let body = self.api(method, biz).await;
        let (object, sign) = split_signed(&body);
        let sign = sign.unwrap_or_else(|| panic!("unsigned answer: {body}"));
        let key = self.sim.alipay_public_key();
        key.verify(object.as_bytes(), sign)
            .unwrap_or_else(|_| panic!("signature does not verify over {object}"));
        serde_json::from_str(object).unwrap()
    }
}

/// Signs parameters (as bytes, in whatever charset) the request way and form-encodes them.
fn signed_form(params: &[(&str, Vec<u8>)]) -> String {
    let content = sign_content(
        params.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        REQUEST_EXCLUDED,
    );
    let sign = app_key().sign(&content);
    params
        .iter()
        .map(|(k, v)| (*k, v.as_slice()))
        .chain([("sign", sign.as_bytes())])
        .map(|(k, v)| format!("{k}={}", byte_serialize(v).collect::<String>()))
        .collect::<Vec<_>>()
        .join("&")
}

/// `{"<key>":OBJECT,"sign":"SIGN"}` into the raw OBJECT text and the sign.
fn split_signed(body: &str) -> (&str, Option<&str>) {
    let start = body.find(":{").expect("a response object") + 1;
    match body.rfind(",\"sign\":\"") {
        Some(at) => (&body[start..at], Some(&body[at + 9..body.len() - 2])),
        None => (&body[start..body.len() - 1], None),
    }
}

/// The action of the cashier form whose button has this id.
fn form_action(page: &str, button: &str) -> String {
    let button_at = page
        .find(&format!("id=\"{button}\""))
        .unwrap_or_else(|| panic!("no #{button} in {page}"));
    let form_at = page[..button_at].rfind("action=\"").unwrap() + 8;
    let end = page[form_at..].find('"').unwrap();
    page[form_at..form_at + end].to_owned()
}

fn verified(body: &[u8], key: &PublicKey) -> Verified {
    let raw = RawParams::parse(body).unwrap();
    callback::verify(&raw, key).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

fn status_of(body: &[u8], key: &PublicKey) -> String {
    verified(body, key).get("trade_status").unwrap().to_owned()
}

// ---------------------------------------------------------------------------------------------
// The gateway's checks

#[tokio::test]
async fn a_signed_page_pay_request_shows_the_cashier() {
    let env = spawn().await;

    let page = env.get(&env.pay_url("T_cashier_1", "88.00")).await;

    assert!(
        page.contains("id=\"pay\"") && page.contains("id=\"cancel\""),
        "{page}"
    );
    assert!(page.contains("88.00") && page.contains("T_cashier_1"));
    assert!(page.contains("Oolong tea, 250 g") && page.contains(APP_ID));
    let trade = env.sim.trade("T_cashier_1").unwrap();
    assert_eq!(
        trade.status, None,
        "no trade at Alipay before the buyer acts"
    );
}

#[tokio::test]
async fn a_page_pay_posted_as_a_form_is_accepted_too() {
    let env = spawn().await;
    let url = env.pay_url("T_form_1", "1.00");
    let (_, query) = url.split_once('?').unwrap();

    let response = env
        .browser
        .post(format!("{}?charset=utf-8", env.sim.gateway_url()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(query.to_owned())
        .send()
        .await
        .unwrap();

    assert!(response.text().await.unwrap().contains("id=\"pay\""));
}

#[tokio::test]
async fn a_tampered_amount_gets_the_invalid_signature_page_with_the_sign_string() {
    let env = spawn().await;
    let url = env.pay_url("T_tampered", "88.00");
    let tampered = url.replace("%2288.00%22", "%220.01%22");
    assert_ne!(url, tampered);

    let page = env.get(&tampered).await;

    assert!(page.contains("isv.invalid-signature"), "{page}");
    // The sign string the gateway verified, with sign_type in it and the tampered amount.
    let shown = page.split("id=\"sign-content\">").nth(1).unwrap();
    assert!(
        shown.starts_with("app_id=2021000000000001&amp;biz_content="),
        "{shown}"
    );
    assert!(shown.contains("&quot;total_amount&quot;:&quot;0.01&quot;"));
    assert!(shown.contains("sign_type=RSA2&amp;timestamp="));
    assert!(env.sim.trade("T_tampered").is_none());
}

#[tokio::test]
async fn an_unknown_app_is_refused() {
    let env = spawn_with(Options {
        app_id: "2021999999999999",
        ..Options::default()
    })
    .await;

    let page = env.get(&env.pay_url("T_unknown_app", "1.00")).await;

    assert!(page.contains("isv.invalid-app-id"), "{page}");
    assert!(!page.contains("id=\"pay\""));
}

#[tokio::test]
async fn a_timestamp_more_than_ten_minutes_off_is_refused() {
    let env = spawn().await;
    let now = OffsetDateTime::now_utc();

    for skew in [-11, 11] {
        let at = now + time::Duration::minutes(skew);
        let page = env.get(&env.pay_url_at("T_stale", "1.00", at)).await;
        assert!(page.contains("isv.invalid-timestamp"), "{skew}: {page}");
    }
    let fine = env
        .get(&env.pay_url_at("T_stale", "1.00", now - time::Duration::minutes(9)))
        .await;
    assert!(fine.contains("id=\"pay\""));
}

#[tokio::test]
async fn api_calls_with_gateway_errors_get_unsigned_json_errors() {
    let env = spawn().await;

    let unknown = env
        .api("alipay.trade.pay", json!({"out_trade_no": "x"}))
        .await;
    let missing = env
        .browser
        .get(format!(
            "{}?method=alipay.trade.query&charset=utf-8",
            env.sim.gateway_url()
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let unknown: Value = serde_json::from_str(&unknown).unwrap();
    assert_eq!(unknown["error_response"]["sub_code"], "isv.invalid-method");
    let missing: Value = serde_json::from_str(&missing).unwrap();
    assert_eq!(missing["alipay_trade_query_response"]["code"], "40001");
    assert_eq!(
        missing["alipay_trade_query_response"]["sub_code"],
        "isv.missing-app-id"
    );
    assert!(missing.get("sign").is_none());
}

#[tokio::test]
async fn the_same_out_trade_no_reuses_the_unpaid_trade_at_the_same_amount_only() {
    let env = spawn().await;
    let first = env.get(&env.pay_url("T_again", "10.00")).await;
    let again = env.get(&env.pay_url("T_again", "10.00")).await;
    assert_eq!(form_action(&first, "pay"), form_action(&again, "pay"));

    let other_amount = env.get(&env.pay_url("T_again", "12.00")).await;
    assert!(
        other_amount.contains("ACQ.CONTEXT_INCONSISTENT"),
        "{other_amount}"
    );

    env.pay("T_again", "10.00").await;
    let after_payment = env.get(&env.pay_url("T_again", "10.00")).await;
    assert!(after_payment.contains("ACQ.TRADE_HAS_SUCCESS"));
}

// ---------------------------------------------------------------------------------------------
// Pay, notifications and their delivery

#[tokio::test]
async fn pay_delivers_a_notification_that_verifies_and_matches_the_trade() {
    let env = spawn().await;

    env.pay("T_paid_1", "88.00").await;
    let received = env.receiver.wait_for(1).await;

    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].content_type,
        "application/x-www-form-urlencoded; charset=utf-8"
    );
    let params = verified(&received[0].body, &env.sim.alipay_public_key());
    let trade = env.sim.trade("T_paid_1").unwrap();
    assert_eq!(trade.status, Some(TradeStatus::TradeSuccess));
    let notification = Notification::from_verified(&params).unwrap();
    assert_eq!(notification.trade_status, TradeStatus::TradeSuccess);
    assert_eq!(notification.out_trade_no, "T_paid_1");
    assert_eq!(notification.total_amount, amount("88.00"));
    assert_eq!(notification.app_id, APP_ID);
    assert_eq!(notification.seller_id.as_deref(), Some(SELLER_ID));
    assert_eq!(Some(notification.trade_no), trade.trade_no);
    assert_eq!(notification.buyer_id, trade.buyer.map(|b| b.buyer_id));
    assert_eq!(
        notification.gmt_payment,
        trade.paid_at.map(|t| t.replace_nanosecond(0).unwrap())
    );
    for (key, value) in [
        ("notify_type", "trade_status_sync"),
        ("auth_app_id", APP_ID),
        ("receipt_amount", "88.00"),
        ("buyer_pay_amount", "88.00"),
        ("point_amount", "0.00"),
        ("subject", "Oolong tea, 250 g"),
        ("version", "1.0"),
    ] {
        assert_eq!(params.get(key), Some(value), "{key}");
    }
    assert!(params
        .get("fund_bill_list")
        .unwrap()
        .contains("ALIPAYACCOUNT"));
    let state = &env.sim.trade("T_paid_1").unwrap().notifications[0];
    assert_eq!(state.state, DeliveryState::Delivered);
}

#[tokio::test]
async fn the_notification_does_not_verify_with_the_app_s_own_key() {
    let env = spawn().await;

    env.pay("T_wrong_key", "1.00").await;
    let received = env.receiver.wait_for(1).await;

    let app_public = PublicKey::parse(&app_key().public_key_base64()).unwrap();
    let raw = RawParams::parse(&received[0].body).unwrap();
    assert!(callback::verify(&raw, &app_public).is_err());
}

#[tokio::test]
async fn pay_redirects_to_return_url_with_signed_parameters_and_no_trade_status() {
    let env = spawn().await;

    let response = env.pay("T_return", "5.00").await;

    let location = response.headers()[header::LOCATION].to_str().unwrap();
    let query = location
        .strip_prefix("http://shop.example/payment/success?")
        .unwrap_or_else(|| panic!("{location}"));
    let params = verified(query.as_bytes(), &env.sim.alipay_public_key());
    assert_eq!(params.get("method"), Some("alipay.trade.page.pay.return"));
    assert_eq!(params.get("total_amount"), Some("5.00"));
    assert_eq!(params.get("seller_id"), Some(SELLER_ID));
    assert_eq!(params.get("trade_status"), None);
}

#[tokio::test]
async fn a_receiver_answering_fail_is_retried_and_every_attempt_is_recorded() {
    let env = spawn_with(Options {
        replies: &["fail", "fail"],
        ..Options::default()
    })
    .await;

    env.pay("T_retry", "2.00").await;
    let attempts = env.sim.wait_for_attempts("T_retry", 3, WAIT).await;

    assert_eq!(attempts.len(), 3);
    assert_eq!(
        attempts.iter().map(|a| a.number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(!attempts[0].acknowledged && !attempts[1].acknowledged && attempts[2].acknowledged);
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Response {
            status: 200,
            body: "fail".into()
        }
    );
    // 4 minutes scaled by 0.0001 is 24 ms, then 10 minutes is 60 ms.
    assert!(attempts[1].at - attempts[0].at >= time::Duration::milliseconds(24));
    assert!(attempts[2].at - attempts[1].at >= time::Duration::milliseconds(60));
    let bodies: Vec<Vec<u8>> = env
        .receiver
        .received()
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert!(
        bodies.windows(2).all(|pair| pair[0] == pair[1]),
        "resends are identical"
    );
    let json: Value = env
        .browser
        .get(format!("{}/sim/trades/T_retry", env.sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        json["notifications"][0]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(json["notifications"][0]["state"], "delivered");
}

#[tokio::test]
async fn a_notification_is_given_up_after_eight_attempts() {
    let env = spawn_with(Options {
        replies: &["fail"; 8],
        time_scale: 0.00001,
        ..Options::default()
    })
    .await;

    env.pay("T_give_up", "2.00").await;
    let settled = env
        .sim
        .wait_for(Duration::from_secs(30), |trades| {
            trades.iter().any(|t| {
                t.notifications
                    .first()
                    .is_some_and(|n| n.state == DeliveryState::GaveUp)
            })
        })
        .await;

    assert!(settled);
    assert_eq!(env.sim.attempts("T_give_up").len(), 8);
}

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
    let attempts = env.sim.wait_for_attempts("T_dropped", 3, WAIT).await;

    assert_eq!(attempts.len(), 3);
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

#[tokio::test]
async fn a_gbk_request_gets_a_gbk_notification_signed_over_its_gbk_bytes() {
    let env = spawn().await;
    let (notify_url, receiver) = spawn_receiver(&[], Duration::ZERO).await;
    let gbk = |text: &str| encoding_rs::GBK.encode(text).0.into_owned();
    let now = format_beijing(OffsetDateTime::now_utc());
    let biz = r#"{"out_trade_no":"T_gbk","total_amount":"9.90","subject":"中文茶叶","product_code":"FAST_INSTANT_TRADE_PAY"}"#;
    let params = [
        ("app_id", APP_ID.as_bytes().to_vec()),
        ("method", b"alipay.trade.page.pay".to_vec()),
        ("charset", b"GBK".to_vec()),
        ("sign_type", b"RSA2".to_vec()),
        ("timestamp", now.into_bytes()),
        ("version", b"1.0".to_vec()),
        ("notify_url", notify_url.into_bytes()),
        ("biz_content", gbk(biz)),
    ];
    let url = format!("{}?{}", env.sim.gateway_url(), signed_form(&params));

    let page = env.get(&url).await;
    assert!(page.contains("中文茶叶"), "{page}");
    let pay = format!("{}{}", env.sim.base_url(), form_action(&page, "pay"));
    env.browser.post(pay).send().await.unwrap();
    let received = receiver.wait_for(1).await;

    assert_eq!(
        received[0].content_type,
        "application/x-www-form-urlencoded; charset=GBK"
    );
    let body = String::from_utf8(received[0].body.clone()).unwrap();
    assert!(body.contains("subject=%D6%D0%CE%C4%B2%E8%D2%B6"), "{body}");
    let params = verified(&received[0].body, &env.sim.alipay_public_key());
    assert_eq!(params.get("subject"), Some("中文茶叶"));
}

// ---------------------------------------------------------------------------------------------
// Cancel and expiry

#[tokio::test]
async fn cancel_closes_the_trade_and_notifies_trade_closed() {
    let env = spawn().await;

    let response = env.click("T_cancel", "7.00", "cancel").await;
    let page = response.text().await.unwrap();
    let received = env.receiver.wait_for(1).await;

    assert!(page.contains("TRADE_CLOSED"), "{page}");
    assert_eq!(
        status_of(&received[0].body, &env.sim.alipay_public_key()),
        "TRADE_CLOSED"
    );
    let query = env
        .api_verified("alipay.trade.query", json!({"out_trade_no": "T_cancel"}))
        .await;
    assert_eq!(query["trade_status"], "TRADE_CLOSED");
    let reopened = env.get(&env.pay_url("T_cancel", "7.00")).await;
    assert!(reopened.contains("ACQ.TRADE_HAS_CLOSE"));
}

#[tokio::test]
async fn an_unpaid_trade_closes_when_time_expire_passes() {
    let env = spawn().await;
    let now = OffsetDateTime::now_utc();
    let order = PagePay {
        out_trade_no: "T_expire",
        total_amount: amount("1.00"),
        subject: "Quick",
        body: None,
        time_expire: now + time::Duration::seconds(2),
    };
    let page = env.get(&env.merchant.page_pay_url(&order, now)).await;
    assert!(page.contains("id=\"pay\""));

    let received = env.receiver.wait_for(1).await;

    assert_eq!(
        status_of(&received[0].body, &env.sim.alipay_public_key()),
        "TRADE_CLOSED"
    );
    let pay = format!("{}{}", env.sim.base_url(), form_action(&page, "pay"));
    let late = env
        .browser
        .post(pay)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        late.contains("TRADE_CLOSED"),
        "a late Pay finds the trade closed"
    );
}

// ---------------------------------------------------------------------------------------------
// Query, close and refunds

#[tokio::test]
async fn query_answers_trade_not_exist_until_paid_then_trade_success() {
    let env = spawn().await;
    let biz = json!({"out_trade_no": "T_query"});

    let before = env.api_verified("alipay.trade.query", biz.clone()).await;
    env.get(&env.pay_url("T_query", "12.34")).await;
    let at_cashier = env.api_verified("alipay.trade.query", biz.clone()).await;
    env.pay("T_query", "12.34").await;
    let after = env.api_verified("alipay.trade.query", biz).await;

    for unpaid in [before, at_cashier] {
        assert_eq!(unpaid["code"], "40004");
        assert_eq!(unpaid["sub_code"], "ACQ.TRADE_NOT_EXIST");
        assert_eq!(unpaid["sub_msg"], "交易不存在");
    }
    let trade = env.sim.trade("T_query").unwrap();
    assert_eq!(after["code"], "10000");
    assert_eq!(after["trade_status"], "TRADE_SUCCESS");
    assert_eq!(after["total_amount"], "12.34");
    assert_eq!(after["trade_no"], trade.trade_no.unwrap());
    assert_eq!(after["buyer_user_id"], trade.buyer.unwrap().buyer_id);
}

#[tokio::test]
async fn close_finds_no_trade_before_login_and_refuses_a_paid_one() {
    let env = spawn().await;
    let biz = json!({"out_trade_no": "T_close"});
    env.get(&env.pay_url("T_close", "1.00")).await;

    let before = env.api_verified("alipay.trade.close", biz.clone()).await;
    env.pay("T_close", "1.00").await;
    let after = env.api_verified("alipay.trade.close", biz).await;

    assert_eq!(before["sub_code"], "ACQ.TRADE_NOT_EXIST");
    assert_eq!(after["sub_code"], "ACQ.TRADE_STATUS_ERROR");
}

#[tokio::test]
async fn refunds_partial_then_full_close_the_trade_and_are_notified() {
    let env = spawn().await;
    env.pay("T_refund", "88.00").await;
    let refund = |no: &str, amount: &str| json!({"out_trade_no": "T_refund", "refund_amount": amount, "out_request_no": no});

    let partial = env
        .api_verified("alipay.trade.refund", refund("R1", "30.00"))
        .await;
    let repeated = env
        .api_verified("alipay.trade.refund", refund("R1", "30.00"))
        .await;
    let discordant = env
        .api_verified("alipay.trade.refund", refund("R1", "31.00"))
        .await;
    let too_much = env
        .api_verified("alipay.trade.refund", refund("R2", "58.01"))
        .await;
    let rest = env
        .api_verified("alipay.trade.refund", refund("R2", "58.00"))
        .await;
    let query = env
        .api_verified("alipay.trade.query", json!({"out_trade_no": "T_refund"}))
        .await;
    let refund_query = env
        .api_verified(
            "alipay.trade.fastpay.refund.query",
            json!({"out_trade_no": "T_refund", "out_request_no": "R1"}),
        )
        .await;

    assert_eq!(
        (
            partial["refund_fee"].as_str(),
            partial["fund_change"].as_str()
        ),
        (Some("30.00"), Some("Y"))
    );
    assert_eq!(
        (
            repeated["refund_fee"].as_str(),
            repeated["fund_change"].as_str()
        ),
        (Some("30.00"), Some("N"))
    );
    assert_eq!(discordant["sub_code"], "ACQ.DISCORDANT_REPEAT_REQUEST");
    assert_eq!(too_much["sub_code"], "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL");
    assert_eq!(rest["refund_fee"], "88.00");
    assert_eq!(query["trade_status"], "TRADE_CLOSED");
    assert_eq!(refund_query["refund_amount"], "30.00");
    assert_eq!(refund_query["refund_status"], "REFUND_SUCCESS");

    let received = env.receiver.wait_for(3).await;
    let key = env.sim.alipay_public_key();
    let notes: Vec<Verified> = received.iter().map(|r| verified(&r.body, &key)).collect();
    assert_eq!(notes.len(), 3, "payment, partial refund, full refund");
    assert_eq!(notes[1].get("trade_status"), Some("TRADE_SUCCESS"));
    assert_eq!(notes[1].get("refund_fee"), Some("30.00"));
    assert_eq!(notes[1].get("out_biz_no"), Some("R1"));
    assert!(notes[1].get("gmt_refund").is_some());
    assert_eq!(notes[2].get("trade_status"), Some("TRADE_CLOSED"));
    assert_eq!(notes[2].get("refund_fee"), Some("88.00"));
}

#[tokio::test]
async fn the_public_key_route_serves_the_key_handed_to_tests() {
    let env = spawn().await;

    let served = env
        .get(&format!("{}/sim/alipay_public_key", env.sim.base_url()))
        .await;

    assert_eq!(served, env.sim.alipay_public_key_base64());
    assert!(served.starts_with("MIIBIjAN"));
    env.sim.shutdown().await;
}
