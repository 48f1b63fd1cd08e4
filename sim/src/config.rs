//! What a simulator starts with: where it listens, which merchant apps it knows (with plain keys or
//! in certificate mode), its own Alipay key and certificates, how fast time runs for notification
//! retries, and the default fault knobs.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::faults::Faults;
use super::pki::Pki;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};

/// A merchant app registered with the simulated Alipay, as in Alipay's open-platform console.
#[derive(Debug)]
pub struct RegisteredApp {
    pub app_id: String,
    /// The app's public key: the gateway verifies the app's requests with it.
    pub public_key: PublicKey,
    /// The merchant's PID, `2088` and 12 digits; notifications carry it as `seller_id`.
    pub seller_id: String,
    pub seller_email: String,
    /// Set for an app in public-key certificate mode: its public key as DER SubjectPublicKeyInfo,
    /// which the simulator certifies at start. (`PublicKey` does not give its bytes back.)
    pub cert_mode_key: Option<Vec<u8>>,
}

impl RegisteredApp {
    pub fn new(
        app_id: impl Into<String>,
        public_key: PublicKey,
        seller_id: impl Into<String>,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            public_key,
            seller_id: seller_id.into(),
            seller_email: "merchant@example.com".into(),
            cert_mode_key: None,
        }
    }

    /// Puts the app in certificate mode: the simulator issues it a certificate over
    /// `public_key_spki_der` (the same key as `public_key`, as DER SubjectPublicKeyInfo, e.g.
    /// `PrivateKey::public_key_spki_der()`), and its requests must name that certificate and the
    /// root (`app_cert_sn`, `alipay_root_cert_sn`). Alipay's answers to it are signed with its
    /// certificate's key.
    pub fn in_cert_mode(mut self, public_key_spki_der: impl Into<Vec<u8>>) -> Self {
        self.cert_mode_key = Some(public_key_spki_der.into());
        self
    }

    pub fn is_cert_mode(&self) -> bool {
        self.cert_mode_key.is_some()
    }
}

#[derive(Debug)]
pub struct SimConfig {
    /// Loopback on a free port unless configured otherwise: the simulator is not hardened for
    /// exposure (it POSTs to whatever notify_url a signed request names).
    pub bind: SocketAddr,
    pub apps: Vec<RegisteredApp>,
    /// The simulator's "Alipay private key": it signs notifications, returns and API responses.
    pub alipay_key: PrivateKey,
    /// Multiplies Alipay's retry schedule (4m, 10m, 10m, 1h, 2h, 6h, 15h): 1.0 is real time,
    /// 0.0001 turns the 25-hour schedule into about 9 seconds.
    pub time_scale: f64,
    /// Faults for every trade without its own.
    pub faults: Faults,
    /// How long one notification POST may take before it counts as a network error.
    pub delivery_timeout: Duration,
    /// The certificate hierarchy for apps in certificate mode (see [`Pki`]); generated at start
    /// when such an app is registered and none is given.
    pub pki: Option<Pki>,
}

impl SimConfig {
    pub fn new(alipay_key: PrivateKey) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            apps: Vec::new(),
            alipay_key,
            time_scale: 1.0,
            faults: Faults::default(),
            delivery_timeout: Duration::from_secs(10),
            pki: None,
        }
    }

    pub fn with_app(mut self, app: RegisteredApp) -> Self {
        self.apps.push(app);
        self
    }

    pub(crate) fn problems(&self) -> Option<String> {
        if !self.time_scale.is_finite() || self.time_scale < 0.0 {
            return Some(format!(
                "time_scale must be a finite number >= 0, not {}",
                self.time_scale
            ));
        }
        if let Some(app) = self.apps.iter().find(|a| !is_seller_id(&a.seller_id)) {
            return Some(format!(
                "app {}: seller_id must be 2088 followed by 12 digits",
                app.app_id
            ));
        }
        let bad_key = |a: &&RegisteredApp| {
            a.cert_mode_key
                .as_deref()
                .is_some_and(|der| PublicKey::from_spki_der(der).is_err())
        };
        if let Some(app) = self.apps.iter().find(bad_key) {
            return Some(format!(
                "app {}: the certificate-mode key is not an RSA SubjectPublicKeyInfo",
                app.app_id
            ));
        }
        let mut ids: Vec<&str> = self.apps.iter().map(|a| a.app_id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) || ids.contains(&"") {
            return Some("app_ids must be non-empty and distinct".into());
        }
        None
    }
}

/// A merchant PID: `2088` and 12 more digits.
pub fn is_seller_id(text: &str) -> bool {
    text.len() == 16 && text.starts_with("2088") && text.bytes().all(|b| b.is_ascii_digit())
}
