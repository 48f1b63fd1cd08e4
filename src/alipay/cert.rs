//! Public-key certificate mode (公钥证书模式): the X.509 certificates an app set up that way gets
//! from Alipay's console, the serial-number digests ("SNs") every request names them by, and the
//! chain check that decides whether a certificate of Alipay's is to be trusted.
//!
//! The gateway is Java, so Alipay's Java SDK (`AntCertificationUtil`) is the rule for SNs: the
//! lower-case hex MD5 of the issuer DN as `X500Principal.getName()` writes it (RFC 2253: last RDN
//! first, every attribute kept, special characters escaped, unknown types as `OID=#hex`)
//! immediately followed by the serial number in decimal. [`java_rfc2253`] reproduces that form;
//! tests/interop checks it against Java itself and the npm SDK over openssl-made certificates.

use std::fmt::Write as _;

use aws_lc_rs::digest::{digest, SHA256};
use time::OffsetDateTime;
use x509_parser::der_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::keys::{KeyError, PublicKey};

/// RSA signature algorithms (sha1WithRSA, sha256WithRSA, …) share this OID prefix; the root SN
/// names only the bundle's roots signed that way.
const RSA_SIGNATURE_OID_PREFIX: &str = "1.2.840.113549.1.1.";

/// How long a chain may be, leaf to root: Alipay's is leaf, intermediate, root.
const MAX_CHAIN: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("no PEM certificate (-----BEGIN CERTIFICATE-----) in it")]
    NoCertificate,
    #[error("certificate {0} is not valid PEM")]
    Pem(usize),
    #[error("certificate {index} is not a valid X.509 certificate: {reason}")]
    Der { index: usize, reason: String },
    #[error("the certificate's public key is not an RSA key of 2048 bits or more ({0})")]
    Key(KeyError),
    #[error("certificate {sn} expired at {}", rfc3339(*not_after))]
    Expired {
        sn: String,
        not_after: OffsetDateTime,
    },
    #[error("certificate {sn} is not valid before {}", rfc3339(*not_before))]
    NotYetValid {
        sn: String,
        not_before: OffsetDateTime,
    },
    #[error("certificate {sn} does not chain to any of the root certificates")]
    Untrusted { sn: String },
    #[error("the certificate served is {found}, not {expected} as the response said")]
    WrongSn { expected: String, found: String },
    #[error(
        "the root bundle has no RSA-signed root certificate, so it has no alipay_root_cert_sn"
    )]
    NoRsaRoot,
}

/// One parsed certificate, with what this crate needs of it computed once.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    sn: String,
    issuer_name: String,
    serial: String,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    signature_oid: String,
    is_ca: bool,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    spki: Vec<u8>,
    subject_cn: String,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("sn", &self.sn)
            .field("subject_cn", &self.subject_cn)
            .field("not_after", &self.not_after)
            .finish()
    }
}

impl Certificate {
    /// Every certificate in a PEM file, in file order. Tolerates what files picked up on the way
    /// (CRLF line ends, a byte-order mark, blank lines or none between blocks, trailing spaces).
    pub fn parse_pem(text: &str) -> Result<Vec<Self>, CertError> {
        let text = text.trim_start_matches('\u{feff}');
        let cleaned: String = text
            .lines()
            .map(|line| line.trim())
            .filter(|line| !line.is_empty())
            .fold(String::with_capacity(text.len()), |mut out, line| {
                out.push_str(line);
                out.push('\n');
                out
            });
        let blocks = pem::parse_many(cleaned.as_bytes()).map_err(|_| CertError::Pem(1))?;
        let mut certificates = Vec::new();
        for (index, block) in blocks.into_iter().enumerate() {
            // Alipay's files hold certificates only; a stray key block is a mistake to report.
            if block.tag() != "CERTIFICATE" {
                return Err(CertError::Pem(index + 1));
            }
            certificates.push(Self::from_der_at(block.into_contents(), index + 1)?);
        }
        if certificates.is_empty() {
            return Err(CertError::NoCertificate);
        }
        Ok(certificates)
    }

    /// One DER certificate.
    pub fn from_der(der: Vec<u8>) -> Result<Self, CertError> {
        Self::from_der_at(der, 1)
    }

    fn from_der_at(der: Vec<u8>, index: usize) -> Result<Self, CertError> {
        let invalid = |reason: String| CertError::Der { index, reason };
        let (rest, parsed) = X509Certificate::from_der(&der).map_err(|e| invalid(e.to_string()))?;
        if !rest.is_empty() {
            return Err(invalid("bytes after the certificate".into()));
        }
        let instant = |t: x509_parser::time::ASN1Time| t.to_datetime();
        let validity = parsed.validity();
        let issuer_name = java_rfc2253(parsed.issuer());
        let serial = parsed.tbs_certificate.serial.to_string();
        let certificate = Self {
            sn: sn_of(&issuer_name, &serial),
            issuer_name,
            serial,
            subject: parsed.subject().as_raw().to_vec(),
            issuer: parsed.issuer().as_raw().to_vec(),
            signature_oid: parsed.signature_algorithm.algorithm.to_id_string(),
            is_ca: parsed.is_ca(),
            not_before: instant(validity.not_before),
            not_after: instant(validity.not_after),
            spki: parsed.public_key().raw.to_vec(),
            subject_cn: parsed
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_owned(),
            der: Vec::new(),
        };
        Ok(Self { der, ..certificate })
    }

    /// The SN Alipay names this certificate by: `md5(issuer DN + decimal serial)`.
    pub fn sn(&self) -> &str {
        &self.sn
    }

    /// The issuer DN as Java writes it (the first half of what the SN digests).
    pub fn issuer(&self) -> &str {
        &self.issuer_name
    }

    /// The serial number in decimal (the second half).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// The subject's common name, for messages ("Ant Financial Certification Authority R1").
    pub fn common_name(&self) -> &str {
        &self.subject_cn
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The DER SubjectPublicKeyInfo, to compare with a private key's public half.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Whether the certificate's own signature is RSA (what makes a root count in the root SN).
    pub fn is_rsa_signed(&self) -> bool {
        self.signature_oid.starts_with(RSA_SIGNATURE_OID_PREFIX)
    }

    /// The certificate's key, for verifying RSA2 signatures.
    pub fn public_key(&self) -> Result<PublicKey, CertError> {
        PublicKey::from_spki_der(&self.spki).map_err(CertError::Key)
    }

    /// A SHA-256 fingerprint, hex, for logs (the SN identifies; this lets people compare files).
    pub fn fingerprint(&self) -> String {
        hex(digest(&SHA256, &self.der).as_ref())
    }

    /// Refuses a certificate outside its validity window at `now`.
    pub fn check_valid_at(&self, now: OffsetDateTime) -> Result<(), CertError> {
        if now > self.not_after {
            return Err(CertError::Expired {
                sn: self.sn.clone(),
                not_after: self.not_after,
            });
        }
        if now < self.not_before {
            return Err(CertError::NotYetValid {
                sn: self.sn.clone(),
                not_before: self.not_before,
            });
        }
        Ok(())
    }

    /// Whether `issuer` signed this certificate: names match and the signature verifies with the
    /// issuer's key (RSA or ECDSA, as aws-lc-rs supports them).
    fn issued_by(&self, issuer: &Certificate) -> bool {
        if self.issuer != issuer.subject {
            return false;
        }
        let (Ok((_, child)), Ok((_, parent))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        child.verify_signature(Some(parent.public_key())).is_ok()
    }
}

/// `alipay_root_cert_sn`: the SNs of the bundle's RSA-signed certificates, in file order, joined
/// by `_`. Roots signed otherwise (Alipay's bundle has an ECDSA one) are left out.
pub fn root_cert_sn(roots: &[Certificate]) -> Result<String, CertError> {
    let sns: Vec<&str> = roots
        .iter()
        .filter(|c| c.is_rsa_signed())
        .map(Certificate::sn)
        .collect();
    if sns.is_empty() {
        return Err(CertError::NoRsaRoot);
    }
    Ok(sns.join("_"))
}

/// Checks that `leaf` chains to one of `roots`, through any of `intermediates` (a CA certificate
/// Alipay ships after its own in the same file), and that every certificate on the way is valid at
/// `now`. Returns the path's earliest expiry.
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    roots: &[Certificate],
    now: OffsetDateTime,
) -> Result<OffsetDateTime, CertError> {
    let untrusted = || CertError::Untrusted {
        sn: leaf.sn.clone(),
    };
    let mut current = leaf;
    let mut expires = leaf.not_after;
    current.check_valid_at(now)?;
    for _ in 0..MAX_CHAIN {
        if let Some(root) = roots.iter().find(|root| current.issued_by(root)) {
            root.check_valid_at(now)?;
            return Ok(expires.min(root.not_after));
        }
        let Some(next) = intermediates
            .iter()
            .find(|ca| ca.is_ca && !std::ptr::eq(*ca, current) && current.issued_by(ca))
        else {
            return Err(untrusted());
        };
        next.check_valid_at(now)?;
        expires = expires.min(next.not_after);
        current = next;
    }
    Err(untrusted())
}

fn sn_of(issuer_name: &str, serial_decimal: &str) -> String {
    hex(&md5(format!("{issuer_name}{serial_decimal}").as_bytes()))
}

/// For messages: `2026-12-31T23:59:59Z`.
fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn md5(input: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    Md5::digest(input).into()
}

/// The attribute types Java names by keyword in RFC 2253 form; every other type is written as its
/// dotted OID with the value as `#` and the hex of its DER encoding (sun.security.x509.AVAKeyword).
const RFC2253_KEYWORDS: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// `X500Principal.getName()`: RDNs last first, joined by `,`; a multi-valued RDN's attributes in
/// encoded order, joined by `+`.
fn java_rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let avas: Vec<String> = rdn
                .iter()
                .map(|ava| java_ava(&ava.attr_type().to_id_string(), ava.attr_value()))
                .collect();
            avas.join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// One `type=value` as sun.security.x509.AVA#toRFC2253String writes it.
fn java_ava(oid: &str, value: &Any<'_>) -> String {
    let keyword = RFC2253_KEYWORDS
        .iter()
        .find(|(id, _)| *id == oid)
        .map(|(_, keyword)| *keyword);
    let is_string = matches!(
        value.tag(),
        Tag::PrintableString
            | Tag::T61String
            | Tag::Ia5String
            | Tag::GeneralString
            | Tag::BmpString
            | Tag::Utf8String
    );
    let (Some(keyword), true) = (keyword, is_string) else {
        let der = value.to_der_vec().unwrap_or_default();
        return format!("{}=#{}", keyword.unwrap_or(oid), hex(&der));
    };
    // Java decodes the value's bytes as UTF-8 whatever the string type.
    let text = String::from_utf8_lossy(value.data);
    let mut escaped: Vec<char> = Vec::with_capacity(text.len());
    for c in text.chars() {
        if ",=+<>#;\"\\".contains(c) {
            escaped.extend(['\\', c]);
        } else if c == '\0' {
            escaped.extend(['\\', '0', '0']);
        } else {
            escaped.push(c);
        }
    }
    // Leading and trailing spaces (and carriage returns) are escaped too.
    let blank = |c: &char| *c == ' ' || *c == '\r';
    let lead = escaped.iter().take_while(|c| blank(c)).count();
    let trail = escaped.iter().rev().take_while(|c| blank(c)).count();
    let mut out = format!("{keyword}=");
    for (i, c) in escaped.iter().enumerate() {
        if i < lead || i >= escaped.len() - trail {
            out.push('\\');
        }
        out.push(*c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_without_a_certificate_is_refused() {
        assert_eq!(
            Certificate::parse_pem("hello").unwrap_err(),
            CertError::NoCertificate
        );
        let key = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert_eq!(Certificate::parse_pem(key).unwrap_err(), CertError::Pem(1));
    }
}
