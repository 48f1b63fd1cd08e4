//! The harness: keys, a simulator with a receiver and a merchant client, and readers of what the
//! gateway answers.

use std::sync::Arc;
use std::time::Duration;

use alipay_notify::alipay::callback::{self, Verified};
use alipay_notify::alipay::clock::format_beijing;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_notify::alipay::pay::PayOrder;
use alipay_notify::alipay::sign::REQUEST_EXCLUDED;
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use alipay_sim::{Faults, RegisteredApp, SimConfig, SimHandle, Simulator};
use alipay_test_support::form::signed_form;
pub use alipay_test_support::html::form_action;
use alipay_test_support::keys::{copy_of, keys, public_of};
use axum::http::header;
use serde_json::Value;
use time::OffsetDateTime;

use crate::receiver::{spawn_receiver, Receiver};

pub const APP_ID: &str = "2021000000000001";
pub const SELLER_ID: &str = "2088000000000001";
pub const RETURN_URL: &str = "http://shop.example/payment/success";
pub const WAIT: Duration = Duration::from_secs(10);
/// How long no further attempt may arrive: longer than the retry that would come next in these
/// tests (10 min scaled by 0.0001 is 60 ms).
pub const QUIET: Duration = Duration::from_millis(300);

pub fn app_key() -> PrivateKey {
    copy_of(&keys().app)
}

pub struct TestEnv {
    pub sim: SimHandle,
    pub merchant: Alipay,
    /// Where `receiver` listens; requests built with `request_form` name it.
    pub notify_url: String,
    pub receiver: Arc<Receiver>,
    pub browser: reqwest::Client,
}

pub struct Options {
    pub faults: Faults,
    pub time_scale: f64,
    pub replies: &'static [&'static str],
    pub receiver_delay: Duration,
    pub app_id: &'static str,
    /// Registers the app in public-key certificate mode.
    pub cert_mode: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            faults: Faults::default(),
            time_scale: 0.0001,
            replies: &[],
            receiver_delay: Duration::ZERO,
            app_id: APP_ID,
            cert_mode: false,
        }
    }
}

pub async fn spawn_with(options: Options) -> TestEnv {
    let mut app = RegisteredApp::new(APP_ID, public_of(&keys().app), SELLER_ID);
    if options.cert_mode {
        app = app.in_cert_mode(keys().app.public_key_spki_der());
    }
    let mut config = SimConfig::new(copy_of(&keys().alipay)).with_app(app);
    config.time_scale = options.time_scale;
    config.faults = options.faults;
    let sim = Simulator::start(config).await.unwrap();
    let (notify_url, receiver) = spawn_receiver(options.replies, options.receiver_delay).await;
    let merchant = Alipay::new(
        AlipayConfig {
            app_id: options.app_id.into(),
            seller_id: Some(SELLER_ID.into()),
            gateway: sim.gateway_url(),
            notify_url: notify_url.clone(),
            return_url: RETURN_URL.into(),
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
        notify_url,
        receiver,
        browser,
    }
}

pub async fn spawn() -> TestEnv {
    spawn_with(Options::default()).await
}

pub fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap()
}

impl TestEnv {
    pub fn pay_url_at(&self, out_trade_no: &str, total: &str, now: OffsetDateTime) -> String {
        let order = PayOrder {
            out_trade_no,
            total_amount: amount(total),
            subject: "Oolong tea, 250 g",
            body: None,
            time_expire: now + time::Duration::minutes(30),
        };
        self.merchant.page_pay_url(&order, now)
    }

    pub fn pay_url(&self, out_trade_no: &str, total: &str) -> String {
        self.pay_url_at(out_trade_no, total, OffsetDateTime::now_utc())
    }

    pub async fn get(&self, url: &str) -> String {
        let response = self.browser.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Opens the cashier for an order and clicks `button` ("pay" or "cancel").
    pub async fn click(&self, out_trade_no: &str, total: &str, button: &str) -> reqwest::Response {
        let page = self.get(&self.pay_url(out_trade_no, total)).await;
        let action = form_action(&page, button);
        let url = format!("{}{action}", self.sim.base_url());
        self.browser.post(url).send().await.unwrap()
    }

    pub async fn pay(&self, out_trade_no: &str, total: &str) -> reqwest::Response {
        let response = self.click(out_trade_no, total, "pay").await;
        assert_eq!(response.status(), 303, "Pay redirects to return_url");
        response
    }

    /// An API call the way Alipay's SDKs make it: a form POST signed by the app key.
    pub async fn api(&self, method: &str, biz: Value) -> String {
        self.api_with(method, biz, &[]).await
    }

    /// An API call with more common parameters (`notify_url` for precreate, say).
    pub async fn api_with(&self, method: &str, biz: Value, extra: &[(&str, &str)]) -> String {
        self.browser
            .post(self.sim.gateway_url())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(request_form(method, &biz, extra))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// POSTs a form action found on `page` (the button with this id) and reads the answer.
    pub async fn press(&self, page: &str, button: &str) -> reqwest::Response {
        let url = format!("{}{}", self.sim.base_url(), form_action(page, button));
        self.browser.post(url).send().await.unwrap()
    }

    /// The response object of a signed API answer, after checking its signature over the raw text.
    pub async fn api_verified(&self, method: &str, biz: Value) -> Value {
        self.api_verified_with(method, biz, &[]).await
    }

    pub async fn api_verified_with(
        &self,
        method: &str,
        biz: Value,
        extra: &[(&str, &str)],
    ) -> Value {
        let body = self.api_with(method, biz, extra).await;
        let (object, sign) = split_signed(&body);
        let sign = sign.unwrap_or_else(|| panic!("unsigned answer: {body}"));
        let key = self.sim.alipay_public_key();
        key.verify(object.as_bytes(), sign)
            .unwrap_or_else(|_| panic!("signature does not verify over {object}"));
        serde_json::from_str(object).unwrap()
    }
}

/// Any product's request, built here rather than by the service: the common parameters, `extra`
/// ones (notify_url, return_url…) and biz_content, signed with the app key and form-encoded. For
/// app pay this is the order string itself.
pub fn request_form(method: &str, biz: &Value, extra: &[(&str, &str)]) -> String {
    request_form_for(APP_ID, method, biz, extra)
}

/// [`request_form`] for another app (signed with the same app key).
pub fn request_form_for(app_id: &str, method: &str, biz: &Value, extra: &[(&str, &str)]) -> String {
    let now = format_beijing(OffsetDateTime::now_utc());
    let biz = biz.to_string();
    let common = [
        ("app_id", app_id),
        ("method", method),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", &now),
        ("version", "1.0"),
        ("biz_content", &biz),
    ];
    let params: Vec<(&str, Vec<u8>)> = common
        .iter()
        .chain(extra)
        .map(|(k, v)| (*k, v.as_bytes().to_vec()))
        .collect();
    signed_request(&params)
}

/// The text of the element with this id (up to its first tag), entities undone.
pub fn text_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {page}"));
    let start = at + page[at..].find('>').expect("a tag's end") + 1;
    let end = start + page[start..].find('<').expect("a next tag");
    page[start..end].replace("&amp;", "&")
}

/// Signs parameters (as bytes, in whatever charset) the request way and form-encodes them.
pub fn signed_request(params: &[(&str, Vec<u8>)]) -> String {
    let form = signed_form(params, &keys().app, REQUEST_EXCLUDED);
    String::from_utf8(form).expect("an escaped form is ASCII")
}

/// `{"<key>":OBJECT,"sign":"SIGN"}` into the raw OBJECT text and the sign.
pub fn split_signed(body: &str) -> (&str, Option<&str>) {
    let start = body.find(":{").expect("a response object") + 1;
    match body.rfind(",\"sign\":\"") {
        Some(at) => (&body[start..at], Some(&body[at + 9..body.len() - 2])),
        None => (&body[start..body.len() - 1], None),
    }
}

pub fn verified(body: &[u8], key: &PublicKey) -> Verified {
    let raw = RawParams::parse(body).unwrap();
    callback::verify(&raw, key).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

pub fn status_of(body: &[u8], key: &PublicKey) -> String {
    verified(body, key).get("trade_status").unwrap().to_owned()
}
