//! The demo shop's back end: the merchant's webhook endpoint. It checks each delivery's Standard
//! Webhooks signature with the shop's secret (refusing any it cannot verify, so the service tries
//! again) and "fulfils" the order of every `order.paid` it is told of.

use std::net::SocketAddr;

use alipay_notify::webhooks::WebhookSecret;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::net::TcpListener;

/// A running shop back end.
pub struct Shop {
    pub address: SocketAddr,
    /// What the service signs with (`WEBHOOK_SECRET`).
    pub secret: String,
}

impl Shop {
    /// Starts on a free loopback port with a new secret.
    pub async fn start() -> std::io::Result<Self> {
        let secret = WebhookSecret::generate();
        let key = WebhookSecret::parse(&secret).expect("a generated secret parses");
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let router = Router::new()
            .route("/webhooks", post(receive))
            .with_state(key);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self { address, secret })
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/webhooks", self.address)
    }
}

async fn receive(State(key): State<WebhookSecret>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verified = key.verify(
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        now,
    );
    if let Err(error) = verified {
        tracing::warn!(%error, "shop: webhook refused");
        return StatusCode::UNAUTHORIZED;
    }
    let event: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let out_trade_no = event["data"]["order"]["out_trade_no"]
        .as_str()
        .unwrap_or("-");
    match event["type"].as_str() {
        Some("order.paid") => tracing::info!(out_trade_no, "shop: order fulfilled"),
        other => tracing::info!(out_trade_no, event = other, "shop: told"),
    }
    StatusCode::NO_CONTENT
}
