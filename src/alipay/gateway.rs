//! The client for `gateway.do` API calls (precreate, query, close, refund): signed like
//! page-pay requests and sent as the official SDKs send them (common parameters in the URL query,
//! biz_content in the form body), with a timeout, retried with backoff on network errors and 5xx
//! only, and answered with data only when the response signature verifies.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::keys::PublicKey;
use super::pay::{self, biz_content, Callbacks, PayOrder};
use super::product::Product;
use super::response::{Envelope, ResponseError, Signed};
use super::trust::{AlipayCert, CertMode, Trust};
use super::Alipay;
use crate::report::Report;

/// The API that serves Alipay's certificate by SN (certificate mode).
const CERT_DOWNLOAD: &str = "alipay.open.app.alipaycert.download";

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway unreachable: {0}")]
    Network(String),
    #[error("gateway answered HTTP {0}")]
    Status(u16),
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// Certificate mode: the response was signed with a certificate we could not get or trust.
    #[error("Alipay signed with certificate {sn}, which is not trusted: {reason}")]
    UntrustedCertificate { sn: String, reason: String },
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
    /// One certificate download at a time: calls that meet the same rotation wait for the
    /// first to fetch it rather than each fetching it.
    rotation: tokio::sync::Mutex<()>,
    /// When a notification that did not verify last made us ask which certificate Alipay signs
    /// with (certificate mode), so a flood of forgeries costs one call a minute.
    last_refresh: std::sync::Mutex<Option<std::time::Instant>>,
}

/// The least time between two certificate refreshes prompted by notifications.
const REFRESH_INTERVAL: Duration = Duration::from_secs(60);

impl GatewayClient {
    pub fn new(policy: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(policy.timeout)
            .user_agent(concat!("alipay-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with default TLS builds");
        Self {
            http,
            policy,
            rotation: tokio::sync::Mutex::new(()),
            last_refresh: std::sync::Mutex::new(None),
        }
    }

    /// Certificate mode: asks the gateway, in the background and at most once a minute, for
    /// our current Alipay certificate. The answer is signed with the certificate Alipay signs
    /// with now, so a rotation we have not yet seen is fetched and checked as any response's
    /// would be; a notification signed with it then verifies when Alipay resends it.
    pub fn refresh_certificate_soon(self: Arc<Self>, alipay: Arc<Alipay>) {
        let Some(certs) = alipay.certificates() else {
            return;
        };
        {
            let mut last = self.last_refresh.lock().expect("lock");
            let now = std::time::Instant::now();
            if last.is_some_and(|at| now.duration_since(at) < REFRESH_INTERVAL) {
                return;
            }
            *last = Some(now);
        }
        let sn = certs.current().sn;
        tokio::spawn(async move {
            let biz = serde_json::json!({ "alipay_cert_sn": sn });
            let answer = self
                .call::<_, serde_json::Value>(&alipay, CERT_DOWNLOAD, &biz)
                .await;
            if let Err(error) = answer {
                tracing::warn!(error = %Report(&error), "could not ask Alipay which certificate it signs with");
            }
        });
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
        let body = self.exchange(alipay, method, biz, callbacks).await?;
        let envelope = Envelope::parse(&body, method)?;
        let key = self.response_key(alipay, &envelope).await?;
        Ok(envelope.open(&key)?)
    }

    /// Sends a signed request and returns the response body, retrying network errors and 5xx.
    async fn exchange(
        &self,
        alipay: &Alipay,
        method: &str,
        biz: String,
        callbacks: Callbacks,
    ) -> Result<String, GatewayError> {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1;
        loop {
            // Re-signed per attempt so the timestamp stays fresh.
            let params =
                alipay.signed_request(method, biz.clone(), OffsetDateTime::now_utc(), callbacks);
            match self.post(alipay, &params).await {
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

    async fn post(
        &self,
        alipay: &Alipay,
        params: &[(&'static str, String)],
    ) -> Result<String, GatewayError> {
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
        response
            .text()
            .await
            .map_err(|e| GatewayError::Network(e.without_url().to_string()))
    }

    /// The key to verify `envelope` with. In certificate mode that is the certificate the
    /// response names; one we do not hold means Alipay rotated its certificate, and the new one
    /// is fetched and used only if it chains to the configured roots. Otherwise the response is
    /// not trusted: never a fallback to another key.
    async fn response_key(
        &self,
        alipay: &Alipay,
        envelope: &Envelope<'_>,
    ) -> Result<Arc<PublicKey>, GatewayError> {
        let certs = match alipay.trust() {
            Trust::Key(key) => return Ok(key.clone()),
            Trust::Certificates(certs) => certs,
        };
        let sn = match envelope.cert_sn() {
            // Unsigned (only ever an error) or naming no certificate: the current one.
            Some(sn) if envelope.is_signed() => sn,
            _ => return Ok(certs.current().key),
        };
        if let Some(key) = certs.key(sn) {
            return Ok(key);
        }
        let _one_at_a_time = self.rotation.lock().await;
        if let Some(key) = certs.key(sn) {
            return Ok(key);
        }
        match self.download_certificate(alipay, certs, sn).await {
            Ok(cert) => {
                tracing::info!(
                    sn,
                    previous = %certs.current().sn,
                    not_after = %cert.not_after,
                    "Alipay rotated its certificate; the new one chains to the roots and is now in use"
                );
                let key = cert.key.clone();
                certs.install(cert);
                Ok(key)
            }
            Err(reason) => {
                certs.refuse();
                tracing::error!(
                    sn,
                    reason,
                    "a response was signed with an Alipay certificate that could not be trusted; refused"
                );
                Err(GatewayError::UntrustedCertificate {
                    sn: sn.to_owned(),
                    reason,
                })
            }
        }
    }

    /// Fetches Alipay's certificate `sn` and checks it: the SN, the chain to our roots, its
    /// validity, and the download response's own signature.
    async fn download_certificate(
        &self,
        alipay: &Alipay,
        certs: &CertMode,
        sn: &str,
    ) -> Result<AlipayCert, String> {
        #[derive(Deserialize)]
        struct Download {
            code: String,
            #[serde(default)]
            sub_code: String,
            #[serde(default)]
            alipay_cert_content: String,
        }
        let biz = serde_json::json!({ "alipay_cert_sn": sn }).to_string();
        let body = self
            .exchange(alipay, CERT_DOWNLOAD, biz, Callbacks::None)
            .await
            .map_err(|e| format!("{CERT_DOWNLOAD} failed: {}", Report(&e)))?;
        let envelope = Envelope::parse(&body, CERT_DOWNLOAD).map_err(|e| e.to_string())?;
        // Unverified until the certificate inside has been checked against the roots: read only
        // to get that certificate (or to say why there is none).
        let download: Download = envelope.peek().map_err(|e| e.to_string())?;
        if download.code != "10000" {
            return Err(format!(
                "{CERT_DOWNLOAD} answered {} {}",
                download.code, download.sub_code
            ));
        }
        let pem = STANDARD
            .decode(download.alipay_cert_content.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("alipay_cert_content is not base64 of PEM text")?;
        let cert = certs
            .check_rotation(&pem, sn, OffsetDateTime::now_utc())
            .map_err(|e| e.to_string())?;
        let signer = match envelope.cert_sn() {
            Some(signer) if signer == sn => Some(cert.key.clone()),
            Some(signer) => certs.key(signer),
            None => Some(certs.current().key),
        }
        .ok_or("the download response is signed with yet another unknown certificate")?;
        envelope
            .open::<serde_json::Value>(&signer)
            .map_err(|e| format!("the download response: {e}"))?;
        Ok(cert)
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
