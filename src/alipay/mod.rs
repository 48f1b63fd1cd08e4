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

use std::sync::Arc;

use keys::{PrivateKey, PublicKey};
use trust::{CertMode, Trust};

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

/// A merchant's Alipay integration: its configuration, its key, and whom it trusts, set up once
/// at start.
#[derive(Debug)]
pub struct Alipay {
    pub config: AlipayConfig,
    app_key: PrivateKey,
    trust: Trust,
}

impl Alipay {
    /// An app set up with plain keys: Alipay's public key verifies what Alipay signs.
    pub fn new(config: AlipayConfig, app_key: PrivateKey, alipay_key: PublicKey) -> Self {
        Self {
            config,
            app_key,
            trust: Trust::Key(Arc::new(alipay_key)),
        }
    }

    /// An app set up in public-key certificate mode.
    pub fn with_certificates(config: AlipayConfig, app_key: PrivateKey, certs: CertMode) -> Self {
        Self {
            config,
            app_key,
            trust: Trust::Certificates(certs),
        }
    }

    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The certificates, in certificate mode.
    pub fn certificates(&self) -> Option<&CertMode> {
        match &self.trust {
            Trust::Key(_) => None,
            Trust::Certificates(certs) => Some(certs),
        }
    }

    /// Verifies a notification or return_url parameter set with Alipay's key (in certificate
    /// mode, any Alipay certificate we hold, the current one first).
    pub fn verify_callback(
        &self,
        raw: &form::RawParams,
    ) -> Result<callback::Verified, callback::CallbackError> {
        match &self.trust {
            Trust::Key(key) => callback::verify(raw, key),
            Trust::Certificates(certs) => callback::verify_any(raw, &certs.keys()),
        }
    }
}
