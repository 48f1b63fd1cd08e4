//! A webhook receiver's check of one delivery, as our documentation tells merchants to write it.

use alipay_notify::webhooks::WebhookSecret;
use axum::http::HeaderMap;

/// One delivery as a receiver sees it: its `webhook-id`, and whether its signature verified
/// with the endpoint's secret at the time it arrived.
#[derive(Debug, Clone)]
pub struct Checked {
    pub id: String,
    pub verified: bool,
}

/// Checks the Standard Webhooks headers of a delivery against `secret` (`whsec_…`).
pub fn check(secret: &str, headers: &HeaderMap, body: &[u8]) -> Checked {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let secret = WebhookSecret::parse(secret).expect("the test's own secret parses");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = secret
        .verify(
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
            now,
        )
        .is_ok();
    Checked {
        id: header("webhook-id").unwrap_or_default().to_owned(),
        verified,
    }
}
