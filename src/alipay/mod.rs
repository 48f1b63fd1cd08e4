//! The Alipay open-platform protocol: keys, sign strings, signed page-pay requests and verified
//! callbacks. Nothing in here touches the database or HTTP serving.

pub mod callback;
pub mod cert;
pub mod clock;
pub mod form;
pub mod gateway;
pub mod keys;
pub mod notification;
pub mod pay;
pub mod product;
pub mod response;
pub mod sign;
pub mod trust;

use keys::{PrivateKey, PublicKey};

/// The merchant's identity at Alipay and where Alipay reaches back to us.
#[derive(Debug, Clone)]
pub struct AlipayConfig {
    pub app_id: String,
    /// When set, notifications must name this seller (the merchant's 2088… PID).
    pub seller_id: Option<String>,
    pub gateway: String,
    pub notify_url: String,
    pub return_url: String,
}

/// A merchant's Alipay integration: its configuration and both keys, parsed once at start.
#[derive(Debug)]
pub struct Alipay {
    pub config: AlipayConfig,
    app_key: PrivateKey,
    alipay_key: PublicKey,
}

impl Alipay {
    pub fn new(config: AlipayConfig, app_key: PrivateKey, alipay_key: PublicKey) -> Self {
        Self {
            config,
            app_key,
            alipay_key,
        }
    }

    /// Alipay's public key, for verifying what the gateway sends.
    pub fn alipay_key(&self) -> &PublicKey {
        &self.alipay_key
    }

    /// Verifies a notification or return_url parameter set with Alipay's public key.
    pub fn verify_callback(
        &self,
        raw: &form::RawParams,
    ) -> Result<callback::Verified, callback::CallbackError> {
        callback::verify(raw, &self.alipay_key)
    }
}
