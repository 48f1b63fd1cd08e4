//! The client for `gateway.do` API calls (precreate, query, close, refund): signed like
//! page-pay requests and sent as the official SDKs send them (common parameters in the URL query,
//! biz_content in the form body), with a timeout, retried with backoff on network errors and 5xx
//! only, and answered with data only when the response signature verifies.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::pay::{self, biz_content, Callbacks, PayOrder};
use super::product::Product;
use super::response::{self, ResponseError, Signed};
use super::Alipay;
use crate::report::Report;

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway unreachable: {0}")]
    Network(String),
    #[error("gateway answered HTTP {0}")]
    Status(u16),
    #[error(transparent)]
    Response(#[from] ResponseError),
}

impl GatewayError {
    /// Alipay's `sub_code`, for business errors.
    pub fn sub_code(&self) -> Option<&str> {
        match self {
            Self::Response(ResponseError::Business { sub_code, .. }) => Some(sub_code),
            _ => None,
        }
    }

    fn retryable(&self) -> bool {
        matches!(self, Self::Network(_)) || matches!(self, Self::Status(s) if *s >= 500)
    }
}

/// How hard to try before giving up on one call.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_backoff: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
        }
    }
}

pub struct GatewayClient {
    http: reqwest::Client,
    policy: RetryPolicy,
}

impl GatewayClient {
    pub fn new(policy: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .user_agent(concat!("alipay-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with default TLS builds");
        Self { http, policy }
    }

    /// Calls `method` with `biz_content` and returns its verified response node.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        alipay: &Alipay,
        method: &str,
        biz_content: &B,
    ) -> Result<Signed<T>, GatewayError> {
        let biz = serde_json::to_string(biz_content).expect("biz_content serialises");
        self.call_with(alipay, method, biz, Callbacks::None).await
    }

    async fn call_with<T: DeserializeOwned>(
        &self,
        alipay: &Alipay,
        method: &str,
        biz: String,
        callbacks: Callbacks,
    ) -> Result<Signed<T>, GatewayError> {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1;
        loop {
            // Re-signed per attempt so the timestamp stays fresh.
            let params =
                alipay.signed_request(method, biz.clone(), OffsetDateTime::now_utc(), callbacks);
            match self.send(alipay, method, &params).await {
                Err(error) if error.retryable() && attempt < self.policy.attempts => {
                    tracing::warn!(method, attempt, error = %Report(&error), "gateway call failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        alipay: &Alipay,
        method: &str,
        params: &[(&'static str, String)],
    ) -> Result<Signed<T>, GatewayError> {
        let (body, common): (Vec<_>, Vec<_>) = params
            .iter()
            .cloned()
            .partition(|(key, _)| *key == "biz_content");
        let url = format!("{}?{}", alipay.config.gateway, pay::encode(&common));
        let response = self
            .http
            .post(url)
            .form(&body)
            .send()
            .await
            .map_err(|e| GatewayError::Network(e.without_url().to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GatewayError::Status(status.as_u16()));
        }
        let body = response
            .text()
            .await
            .map_err(|e| GatewayError::Network(e.without_url().to_string()))?;
        Ok(response::read(&body, method, alipay.alipay_key())?)
    }
}

/// `alipay.trade.precreate`: the code a buyer scans. The trade exists at Alipay only once scanned.
#[derive(Debug, Clone, Deserialize)]
pub struct Precreate {
    pub out_trade_no: String,
    pub qr_code: String,
}

/// `alipay.trade.query` for one order.
#[derive(Debug, Clone, Deserialize)]
pub struct TradeQuery {
    pub trade_no: String,
    pub out_trade_no: String,
    pub trade_status: String,
    pub total_amount: String,
    #[serde(default)]
    pub buyer_user_id: Option<String>,
    /// Beijing time, when paid.
    #[serde(default)]
    pub send_pay_date: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TradeClose {
    #[serde(default)]
    pub trade_no: Option<String>,
    pub out_trade_no: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TradeRefund {
    pub trade_no: String,
    pub out_trade_no: String,
    /// Cumulative refunded amount of the trade.
    pub refund_fee: String,
    /// `Y` when this call moved money; `N` for a repeated out_request_no.
    #[serde(default)]
    pub fund_change: Option<String>,
    #[serde(default)]
    pub gmt_refund_pay: Option<String>,
}

#[derive(Serialize)]
struct ByOrder<'a> {
    out_trade_no: &'a str,
}

#[derive(Serialize)]
struct RefundRequest<'a> {
    out_trade_no: &'a str,
    refund_amount: &'a str,
    out_request_no: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_reason: Option<&'a str>,
}

impl GatewayClient {
    /// Asks for the QR code of `order`; notifications about it go to our notify_url.
    pub async fn precreate(
        &self,
        alipay: &Alipay,
        order: &PayOrder<'_>,
    ) -> Result<Signed<Precreate>, GatewayError> {
        let biz = biz_content(Product::Qr, order, None);
        let method = Product::Qr.method();
        self.call_with(alipay, method, biz, Callbacks::Notify).await
    }

    pub async fn query(
        &self,
        alipay: &Alipay,
        out_trade_no: &str,
    ) -> Result<Signed<TradeQuery>, GatewayError> {
        self.call(alipay, "alipay.trade.query", &ByOrder { out_trade_no })
            .await
    }

    pub async fn close(
        &self,
        alipay: &Alipay,
        out_trade_no: &str,
    ) -> Result<Signed<TradeClose>, GatewayError> {
        self.call(alipay, "alipay.trade.close", &ByOrder { out_trade_no })
            .await
    }

    pub async fn refund(
        &self,
        alipay: &Alipay,
        out_trade_no: &str,
        refund_amount: &str,
        out_request_no: &str,
        reason: Option<&str>,
    ) -> Result<Signed<TradeRefund>, GatewayError> {
        let request = RefundRequest {
            out_trade_no,
            refund_amount,
            out_request_no,
            refund_reason: reason,
        };
        self.call(alipay, "alipay.trade.refund", &request).await
    }
}
