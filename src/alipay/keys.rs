//! RSA key material: the app private key that signs our requests and the Alipay public key that
//! verifies what Alipay sends. Accepts PEM (PKCS#1, PKCS#8, SPKI) and the bare one-line base64 that
//! Alipay's console shows. Errors never contain key material.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize, RsaParameters};
use aws_lc_rs::signature::{KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the PEM armour is malformed")]
    Pem,
    #[error("unexpected PEM label `{0}`; expected {1}")]
    Label(String, &'static str),
    #[error("the key is neither PEM nor base64")]
    Base64,
    #[error("the bytes are not a valid {0} RSA key (2048 bits or more)")]
    Rejected(&'static str),
}

/// An RSA private key that signs with RSA2: the merchant app key (and, in the simulator, Alipay's).
pub struct PrivateKey(KeyPair);

/// An RSA public key that verifies RSA2 signatures: Alipay's key, for notifications and responses.
pub struct PublicKey(ParsedPublicKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey")
    }
}

/// Either PEM with its label, or bare base64 (whitespace and line breaks ignored).
fn der_of(text: &str) -> Result<(Option<String>, Vec<u8>), KeyError> {
    // Editors on Windows save PEM files with a byte-order mark.
    let text = text.trim().trim_start_matches('\u{feff}').trim();
    if text.starts_with("-----BEGIN") {
        let pem = pem::parse(text).map_err(|_| KeyError::Pem)?;
        return Ok((Some(pem.tag().to_owned()), pem.into_contents()));
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(compact).map_err(|_| KeyError::Base64)?;
    Ok((None, der))
}

impl PrivateKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (label, der) = der_of(text)?;
        let pkcs8 = || KeyPair::from_pkcs8(&der);
        let pkcs1 = || KeyPair::from_der(&der);
        let pair = match label.as_deref() {
            Some("PRIVATE KEY") => pkcs8().map_err(|_| KeyError::Rejected("PKCS#8"))?,
            Some("RSA PRIVATE KEY") => pkcs1().map_err(|_| KeyError::Rejected("PKCS#1"))?,
            Some(other) => {
                return Err(KeyError::Label(
                    other.into(),
                    "PRIVATE KEY or RSA PRIVATE KEY",
                ))
            }
            None => pkcs8()
                .or_else(|_| pkcs1())
                .map_err(|_| KeyError::Rejected("PKCS#8 or PKCS#1"))?,
        };
        Ok(Self(pair))
    }

    /// A fresh RSA-2048 key, for the simulator and the demo.
    pub fn generate() -> Self {
        Self(KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation"))
    }

    /// SHA256withRSA, PKCS#1 v1.5, standard base64 with padding: Alipay's RSA2.
    pub fn sign(&self, content: &[u8]) -> String {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                content,
                &mut signature,
            )
            .expect("RSA signing with a valid key cannot fail");
        STANDARD.encode(signature)
    }

    /// The matching public key as bare SPKI base64, the form Alipay's console shows.
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.public_key_spki_der())
    }

    /// The matching public key as DER SubjectPublicKeyInfo, to compare with a certificate's.
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        let spki = self.0.public_key().as_der().expect("SPKI encoding");
        spki.as_ref().to_vec()
    }

    /// The private key as PKCS#8 PEM, for saving generated keys.
    pub fn to_pkcs8_pem(&self) -> String {
        let der = self.0.as_der().expect("PKCS#8 encoding");
        pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature verification failed")]
pub struct BadSignature;

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let (label, der) = der_of(text)?;
        match label.as_deref() {
            None | Some("PUBLIC KEY") | Some("RSA PUBLIC KEY") => {}
            Some(other) => return Err(KeyError::Label(other.into(), "PUBLIC KEY")),
        }
        Self::from_der(&der, "SPKI or PKCS#1 public")
    }

    /// The DER SubjectPublicKeyInfo of a certificate (certificate mode).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_der(der, "SPKI")
    }

    fn from_der(der: &[u8], shape: &'static str) -> Result<Self, KeyError> {
        let rejected = || KeyError::Rejected(shape);
        // Parsing alone accepts short keys that RSA2 verification then always refuses.
        let key = aws_lc_rs::rsa::PublicKey::from_der(der).map_err(|_| rejected())?;
        let bits = RsaParameters::public_modulus_len(key.as_ref()).map_err(|_| rejected())?;
        if bits < 2048 {
            return Err(rejected());
        }
        ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, der)
            .map(Self)
            .map_err(|_| rejected())
    }

    /// Verifies a base64 RSA2 signature over `content`.
    pub fn verify(&self, content: &[u8], signature_base64: &str) -> Result<(), BadSignature> {
        let signature = STANDARD
            .decode(signature_base64)
            .map_err(|_| BadSignature)?;
        self.0
            .verify_sig(content, &signature)
            .map_err(|_| BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_public_keys_are_refused_at_parse_time() {
        // RSA-1024 SPKI made with `openssl genpkey -pkeyopt rsa_keygen_bits:1024 | openssl pkey -pubout`.
        let short = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDNmWU76Ab6R3WgpxoYV8f/yJMLc97EWjN6APf5VNBVx7hQS8/bZvjR59np+WV6tqmYG/xrExfLFl3oIt9EtfgjUJ2knNqcLORGbQROW8V8JJDEAqUrqgwOcKMDnJ4VUdJtn2bKTX3BFNpCmRyFYt4nYDJgFVxhPlQ/LkzGzk8k3QIDAQAB";
        assert!(PublicKey::parse(short).is_err());
    }

    #[test]
    fn a_byte_order_mark_before_pem_is_ignored() {
        let key = PrivateKey::generate();
        let pem = format!(
            "\u{feff}{}",
            pem::encode(&pem::Pem::new(
                "PUBLIC KEY",
                STANDARD.decode(key.public_key_base64()).unwrap()
            ))
        );
        assert!(PublicKey::parse(&pem).is_ok());
    }
}
