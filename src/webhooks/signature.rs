//! Standard Webhooks signatures: `webhook-signature: v1,<base64 of HMAC-SHA256 over
//! "<webhook-id>.<webhook-timestamp>.<body>">`, keyed with the bytes of a `whsec_<base64>` secret.
//! Checked against vectors made by the reference implementation (`tests/vectors/make.sh`).

use aws_lc_rs::{constant_time, hmac};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const PREFIX: &str = "whsec_";

/// How far a delivery's timestamp may be from the receiver's clock (the specification's five
/// minutes), so that a captured request cannot be replayed later.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("a webhook secret is `whsec_` followed by base64")]
    SecretNotBase64,
    #[error("a webhook secret must hold at least 24 bytes (32 recommended)")]
    SecretTooShort,
    #[error("webhook-id, webhook-timestamp or webhook-signature is missing")]
    MissingHeader,
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than five minutes from now")]
    Stale,
    #[error("no signature in webhook-signature matches")]
    Mismatch,
}

/// An endpoint's signing key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct WebhookSecret {
    key: hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (the prefix may be left out, as the reference libraries allow).
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let encoded = text.trim();
        let encoded = encoded.strip_prefix(PREFIX).unwrap_or(encoded);
        let bytes = STANDARD
            .decode(encoded)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| SignatureError::SecretNotBase64)?;
        if bytes.len() < 24 {
            return Err(SignatureError::SecretTooShort);
        }
        Ok(Self::from_bytes(&bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// A new random secret in its `whsec_` form (for the demo and for operators), from the
    /// operating system's CSPRNG.
    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// The `webhook-signature` value for a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.tag(id, timestamp, body)))
    }

    fn tag(&self, id: &str, timestamp: i64, body: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        context.sign()
    }

    /// Checks a delivery as a receiver must: all three headers, a timestamp within five minutes
    /// of `now` (unix seconds), and one of the space-separated `v1,` signatures matching, compared
    /// in constant time.
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
            return Err(SignatureError::MissingHeader);
        };
        let timestamp: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        if (now - timestamp).abs() > TOLERANCE_SECONDS {
            return Err(SignatureError::Stale);
        }
        let expected = self.tag(id, timestamp, body);
        let matches = signatures.split(' ').any(|candidate| {
            candidate
                .strip_prefix("v1,")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .is_some_and(|given| {
                    constant_time::verify_slices_are_equal(&given, expected.as_ref()).is_ok()
                })
        });
        matches.then_some(()).ok_or(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_must_be_base64_and_long_enough() {
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!").unwrap_err(),
            SignatureError::SecretNotBase64
        );
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ=").unwrap_err(),
            SignatureError::SecretTooShort
        );
        let generated = WebhookSecret::generate();
        assert!(generated.starts_with("whsec_"));
        let secret = WebhookSecret::parse(&generated).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
    }

    #[test]
    fn verify_checks_time_and_every_offered_signature() {
        let secret = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let other = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let body = br#"{"id":"evt_1"}"#;
        let good = secret.sign("evt_1", 1_000_000, body);
        let bad = other.sign("evt_1", 1_000_000, body);
        let verify =
            |sig: &str, now| secret.verify(Some("evt_1"), Some("1000000"), Some(sig), body, now);
        assert_eq!(verify(&good, 1_000_000), Ok(()));
        assert_eq!(verify(&format!("{bad} {good}"), 1_000_100), Ok(()));
        assert_eq!(verify(&bad, 1_000_000), Err(SignatureError::Mismatch));
        assert_eq!(verify(&good, 1_000_301), Err(SignatureError::Stale));
        assert_eq!(
            secret.verify(Some("evt_2"), Some("1000000"), Some(&good), body, 1_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            secret.verify(None, Some("1000000"), Some(&good), body, 1_000_000),
            Err(SignatureError::MissingHeader)
        );
    }
}
