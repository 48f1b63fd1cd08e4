//! Signed requests that start a payment, one per product: the gateway URL a browser is sent to
//! (page and wap), and the order string a merchant's app hands to Alipay's app SDK (app). The QR
//! product's precreate is an API call ([`super::gateway::GatewayClient::precreate`]) with the same
//! biz_content.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use time::OffsetDateTime;

use super::clock::format_beijing;
use super::product::Product;
use super::sign::{sign_content, REQUEST_EXCLUDED};
use super::Alipay;
use crate::money::Amount;

/// Everything but RFC 3986 unreserved characters is escaped, so `+` travels as `%2B` and a space as
/// `%20`: any decoder, form or not, reads back exactly the signed values.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a payment request asks Alipay to collect.
#[derive(Debug, Clone)]
pub struct PayOrder<'a> {
    pub out_trade_no: &'a str,
    pub total_amount: Amount,
    pub subject: &'a str,
    pub body: Option<&'a str>,
    pub time_expire: OffsetDateTime,
}

/// Which of our URLs a request tells Alipay about: notify_url wherever a notification follows,
/// return_url only where a browser comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Callbacks {
    None,
    Notify,
    NotifyAndReturn,
}

impl Callbacks {
    pub(crate) fn of(product: Product) -> Self {
        if product.redirects() {
            Self::NotifyAndReturn
        } else {
            Self::Notify
        }
    }
}

#[derive(Serialize)]
struct BizContent<'a> {
    out_trade_no: &'a str,
    total_amount: String,
    subject: &'a str,
    product_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    time_expire: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    quit_url: Option<&'a str>,
}

/// The biz_content of `product`'s request for `order`. `quit_url` is the wap cashier's way back.
pub(crate) fn biz_content(
    product: Product,
    order: &PayOrder<'_>,
    quit_url: Option<&str>,
) -> String {
    serde_json::to_string(&BizContent {
        out_trade_no: order.out_trade_no,
        total_amount: order.total_amount.to_string(),
        subject: order.subject,
        product_code: product.product_code(),
        body: order.body,
        time_expire: format_beijing(order.time_expire),
        quit_url: quit_url.filter(|_| product == Product::Wap),
    })
    .expect("biz_content serialises")
}

/// `k=v&…` with every value percent-encoded, in the order given.
pub(crate) fn encode(params: &[(&str, String)]) -> String {
    let pairs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, COMPONENT)))
        .collect();
    pairs.join("&")
}

impl Alipay {
    /// Signs a desktop-cashier request at `now` and returns the gateway URL carrying it.
    pub fn page_pay_url(&self, order: &PayOrder<'_>, now: OffsetDateTime) -> String {
        self.redirect_url(Product::Page, order, None, now)
    }

    /// Signs a phone-cashier request at `now`; the cashier's "back" goes to `quit_url`.
    pub fn wap_pay_url(&self, order: &PayOrder<'_>, quit_url: &str, now: OffsetDateTime) -> String {
        self.redirect_url(Product::Wap, order, Some(quit_url), now)
    }

    fn redirect_url(
        &self,
        product: Product,
        order: &PayOrder<'_>,
        quit_url: Option<&str>,
        now: OffsetDateTime,
    ) -> String {
        let biz = biz_content(product, order, quit_url);
        let params = self.signed_request(product.method(), biz, now, Callbacks::of(product));
        format!("{}?{}", self.config.gateway, encode(&params))
    }

    /// The signed `alipay.trade.app.pay` order string: every parameter, `sign` included, as
    /// `k=percent-encoded v` joined by `&`, which the app passes to Alipay's SDK untouched.
    pub fn app_order_string(&self, order: &PayOrder<'_>, now: OffsetDateTime) -> String {
        let biz = biz_content(Product::App, order, None);
        let method = Product::App.method();
        encode(&self.signed_request(method, biz, now, Callbacks::Notify))
    }

    /// The common parameters of a gateway request plus its `sign`, in a fixed order.
    pub(crate) fn signed_request(
        &self,
        method: &str,
        biz_content: String,
        now: OffsetDateTime,
        callbacks: Callbacks,
    ) -> Vec<(&'static str, String)> {
        let config = &self.config;
        let mut params = vec![
            ("app_id", config.app_id.clone()),
            ("method", method.to_owned()),
            ("format", "JSON".to_owned()),
            ("charset", "utf-8".to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("timestamp", format_beijing(now)),
            ("version", "1.0".to_owned()),
        ];
        if let Some(certs) = self.certificates() {
            // Certificate mode: which app certificate and which roots; signed like the rest.
            params.push(("app_cert_sn", certs.app_cert_sn().to_owned()));
            params.push(("alipay_root_cert_sn", certs.root_cert_sn().to_owned()));
        }
        if callbacks != Callbacks::None {
            params.push(("notify_url", config.notify_url.clone()));
        }
        if callbacks == Callbacks::NotifyAndReturn {
            params.push(("return_url", config.return_url.clone()));
        }
        params.push(("biz_content", biz_content));
        let content = sign_content(
            params.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            REQUEST_EXCLUDED,
        );
        params.push(("sign", self.app_key.sign(&content)));
        params
    }
}
