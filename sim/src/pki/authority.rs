//! A certificate authority of the simulated Alipay (a root or the intermediate): its name, its
//! key and its own certificate; and the certificates it issues, each with its Alipay SN.

use rcgen::{
    BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SubjectPublicKeyInfo,
};
use time::{Duration, OffsetDateTime};

use super::names::{sn, Dn, Serial};
use super::PkiError;

/// One certificate as issued: its PEM text and the SN Alipay names it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub pem: String,
    pub sn: String,
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From a day ago (so that a clock a little behind still accepts it) to `years` from now.
    pub fn years_from_now(years: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365 * years),
        }
    }

    /// What leaves get unless a test asks otherwise.
    pub fn leaf() -> Self {
        Self::years_from_now(5)
    }

    fn ca() -> Self {
        Self::years_from_now(20)
    }
}

/// Which signature algorithm a new authority's key uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// RSA-2048, signing with sha256WithRSAEncryption.
    Rsa,
    /// P-256, signing with ecdsa-with-SHA256 (such a root is left out of the root SN).
    EcdsaP256,
}

impl KeyKind {
    fn generate(self) -> Result<KeyPair, PkiError> {
        Ok(match self {
            Self::Rsa => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?
            }
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        })
    }
}

/// A CA: signs certificates under its name.
pub(crate) struct Authority {
    dn: Dn,
    issuer: Issuer<'static, KeyPair>,
    cert: IssuedCert,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("dn", &self.dn.rfc2253())
            .field("sn", &self.cert.sn)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A self-signed root with a new key.
    pub fn root(dn: Dn, kind: KeyKind) -> Result<Self, PkiError> {
        let key = kind.generate()?;
        let serial = Serial::random();
        let params = params(&dn, serial, Validity::ca(), Role::Ca);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert: IssuedCert {
                pem: cert.pem(),
                sn: sn(&dn, serial),
            },
            issuer: issuer(&dn, key),
            dn,
        })
    }

    /// A CA under `parent`, with a new RSA key.
    pub fn subordinate(dn: Dn, parent: &Authority) -> Result<Self, PkiError> {
        let key = KeyKind::Rsa.generate()?;
        let serial = Serial::random();
        let mut params = params(&dn, serial, Validity::ca(), Role::Ca);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &parent.issuer)?;
        Ok(Self {
            cert: IssuedCert {
                pem: cert.pem(),
                sn: sn(&parent.dn, serial),
            },
            issuer: issuer(&dn, key),
            dn,
        })
    }

    /// An authority saved before: its key, and its certificate with the SN it was issued with.
    pub fn restore(dn: Dn, key: KeyPair, cert: IssuedCert) -> Self {
        Self {
            issuer: issuer(&dn, key),
            dn,
            cert,
        }
    }

    pub fn dn(&self) -> &Dn {
        &self.dn
    }

    /// Its own certificate.
    pub fn cert(&self) -> &IssuedCert {
        &self.cert
    }

    /// Its key as PKCS#8 PEM, for the key directory only.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A leaf certificate for `subject` over the key in `spki_der` (a DER SubjectPublicKeyInfo).
    pub fn issue(
        &self,
        subject: &Dn,
        spki_der: &[u8],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        let key = SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| PkiError::PublicKey)?;
        let serial = Serial::random();
        let cert = params(subject, serial, validity, Role::Leaf).signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            pem: cert.pem(),
            sn: sn(&self.dn, serial),
        })
    }
}

/// What signing under `dn` takes: the name, the key, and the key usages a CA has.
fn issuer(dn: &Dn, key: KeyPair) -> Issuer<'static, KeyPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn.to_rcgen();
    params.key_usages = ca_key_usages();
    Issuer::new(params, key)
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ca,
    Leaf,
}

fn params(subject: &Dn, serial: Serial, validity: Validity, role: Role) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_rcgen();
    params.serial_number = Some(serial.to_rcgen());
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    match role {
        Role::Ca => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = ca_key_usages();
        }
        Role::Leaf => {
            params.use_authority_key_identifier_extension = true;
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ];
        }
    }
    params
}
