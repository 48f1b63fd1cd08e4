//! Verifying what Alipay sends us: asynchronous notifications and return_url redirects. Both are
//! signed the same way; only after verification are the parameters decoded and trusted.

use super::form::{FormError, RawParams, TextParams};
use super::keys::PublicKey;
use super::sign::{sign_content, CALLBACK_EXCLUDED};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Form(#[from] FormError),
    #[error("missing or empty `sign`")]
    MissingSign,
    #[error("sign_type must be RSA2")]
    SignType,
    #[error("invalid signature")]
    Signature,
}

impl CallbackError {
    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Form(_) => "malformed",
            Self::MissingSign => "missing_sign",
            Self::SignType => "sign_type",
            Self::Signature => "bad_signature",
        }
    }
}

/// Parameters whose signature has been verified with Alipay's public key, decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified(TextParams);

impl Verified {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).filter(|v| !v.is_empty())
    }

    /// A notification read back from the audit log, which records only bodies whose signature
    /// verified when they arrived: decoded as they were then, so that what a stored message
    /// meant is read by the same code that acted on it. Not for anything that arrives now.
    pub(crate) fn from_audit_log(body: &[u8]) -> Result<Self, FormError> {
        Ok(Self(RawParams::parse(body)?.text()?))
    }
}

/// Checks the RSA2 signature over the parameters' own bytes, then decodes them from their charset.
/// The algorithm is fixed: a `sign_type` other than RSA2 is refused rather than honoured.
pub fn verify(raw: &RawParams, key: &PublicKey) -> Result<Verified, CallbackError> {
    let sign = raw
        .get("sign")
        .filter(|s| !s.is_empty())
        .ok_or(CallbackError::MissingSign)?;
    if raw.get("sign_type") != Some(b"RSA2") {
        return Err(CallbackError::SignType);
    }
    let sign = std::str::from_utf8(sign).map_err(|_| CallbackError::Signature)?;
    raw.encoding()?;
    let content = sign_content(raw.iter(), CALLBACK_EXCLUDED);
    key.verify(&content, sign)
        .map_err(|_| CallbackError::Signature)?;
    Ok(Verified(raw.text()?))
}

/// [`verify`] with each of `keys` in turn: in certificate mode Alipay may have signed with a
/// certificate it has since rotated away from, or one it rotated to.
pub fn verify_any<K: AsRef<PublicKey>>(
    raw: &RawParams,
    keys: &[K],
) -> Result<Verified, CallbackError> {
    for key in keys {
        match verify(raw, key.as_ref()) {
            Err(CallbackError::Signature) => continue,
            other => return other,
        }
    }
    Err(CallbackError::Signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_own_stable_reason() {
        let cases = [
            (CallbackError::Form(FormError::EmptyKey), "malformed"),
            (CallbackError::MissingSign, "missing_sign"),
            (CallbackError::SignType, "sign_type"),
            (CallbackError::Signature, "bad_signature"),
        ];
        for (error, reason) in cases {
            assert_eq!(error.reason(), reason, "{error:?}");
        }
    }
}
