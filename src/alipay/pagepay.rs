//! Signed `alipay.trade.page.pay` requests: the URL the buyer's browser is sent to.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;
use time::OffsetDateTime;

use super::clock::format_beijing;
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

/// What a page-pay request asks Alipay to collect.
#[derive(Debug, Clone)]
pub struct PagePay<'a> {
    pub out_trade_no: &'a str,
    pub total_amount: Amount,
    pub subject: &'a str,
    pub body: Option<&'a str>,
    pub time_expire: OffsetDateTime,
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
}

impl Alipay {
    /// Signs a page-pay request at `now` and returns the gateway URL carrying it.
    pub fn page_pay_url(&self, order: &PagePay<'_>, now: OffsetDateTime) -> String {
        let biz_content = serde_json::to_string(&BizContent {
            out_trade_no: order.out_trade_no,
            total_amount: order.total_amount.to_string(),
            subject: order.subject,
            product_code: "FAST_INSTANT_TRADE_PAY",
            body: order.body,
            time_expire: format_beijing(order.time_expire),
        })
        .expect("biz_content serialises");
        let params = self.signed_request("alipay.trade.page.pay", biz_content, now, true);
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, COMPONENT)))
            .collect();
        format!("{}?{}", self.config.gateway, query.join("&"))
    }

    /// The common parameters of a gateway request plus its `sign`, in a fixed order.
    pub(crate) fn signed_request(
        &self,
        method: &str,
        biz_content: String,
        now: OffsetDateTime,
        with_urls: bool,
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
        if with_urls {
            params.push(("notify_url", config.notify_url.clone()));
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
