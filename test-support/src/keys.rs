//! Test keys. RSA key generation is slow in debug builds, so each test binary makes one set.

use std::sync::OnceLock;

use alipay_notify::alipay::keys::{PrivateKey, PublicKey};

pub struct Keys {
    /// The merchant's app key: signs page-pay requests and API calls.
    pub app: PrivateKey,
    /// Our stand-in for Alipay's key: the service under test trusts its public half.
    pub alipay: PrivateKey,
    /// A key Alipay never had: what a forger signs with.
    pub forger: PrivateKey,
}

/// The keys of this test binary, generated on first use.
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        app: PrivateKey::generate(),
        alipay: PrivateKey::generate(),
        forger: PrivateKey::generate(),
    })
}

/// The public half of `key`, as a verifier holds it.
pub fn public_of(key: &PrivateKey) -> PublicKey {
    PublicKey::parse(&key.public_key_base64()).expect("a generated key's public half parses")
}

/// An owned copy of `key` (`PrivateKey` is not `Clone`: copies are deliberate).
pub fn copy_of(key: &PrivateKey) -> PrivateKey {
    PrivateKey::parse(&key.to_pkcs8_pem()).expect("a generated key's PEM parses")
}
