//! Whom we believe: the key that verifies what Alipay signs (notifications, returns, API
//! responses), and, in certificate mode, the certificates our requests name.
//!
//! With plain keys that is one public key. In certificate mode it is Alipay's certificate, which
//! Alipay rotates: a response names the certificate that signed it (`alipay_cert_sn`), and a new
//! one is taken only after it chains to the configured roots ([`CertMode::check_rotation`]). The
//! certificates seen before stay, so notifications signed before the rotation still verify.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use super::cert::{root_cert_sn, verify_chain, CertError, Certificate};
use super::keys::{PrivateKey, PublicKey};

/// How Alipay's signatures are checked.
#[derive(Debug)]
pub enum Trust {
    /// Plain keys: the Alipay public key from the console.
    Key(Arc<PublicKey>),
    /// Public-key certificate mode.
    Certificates(CertMode),
}

/// Which of the three certificate files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFile {
    App,
    Alipay,
    Root,
}

impl CertFile {
    /// The setting that names the file.
    pub fn setting(self) -> &'static str {
        match self {
            Self::App => "ALIPAY_APP_CERT_FILE",
            Self::Alipay => "ALIPAY_CERT_FILE",
            Self::Root => "ALIPAY_ROOT_CERT_FILE",
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Alipay => "alipay",
            Self::Root => "root",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertModeError {
    #[error(transparent)]
    Certificate(#[from] CertError),
    #[error("the app certificate is for another key than ALIPAY_APP_PRIVATE_KEY")]
    KeyMismatch,
}

/// Alipay's certificate as we hold it.
#[derive(Debug, Clone)]
pub struct AlipayCert {
    pub sn: String,
    pub key: Arc<PublicKey>,
    pub not_after: OffsetDateTime,
}

/// Counts of rotations, for the metrics endpoint.
#[derive(Debug, Default)]
struct Rotations {
    installed: AtomicU64,
    refused: AtomicU64,
}

/// The certificates of an app in certificate mode.
#[derive(Debug)]
pub struct CertMode {
    app_cert_sn: String,
    root_cert_sn: String,
    roots: Vec<Certificate>,
    app_not_after: OffsetDateTime,
    /// Alipay's certificates, oldest first: the last is the one it signs with now.
    alipay: RwLock<Vec<AlipayCert>>,
    rotations: Rotations,
}

/// One certificate's expiry, for the metric and the start-up warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub file: CertFile,
    pub sn: String,
    pub not_after: OffsetDateTime,
}

impl CertMode {
    /// Reads the three files' contents and checks them against each other at `now`: the app
    /// certificate is for `app_key`, Alipay's chains to a root, nothing has expired. An error
    /// names the file it is about.
    pub fn load(
        app_cert: &str,
        alipay_cert: &str,
        root_bundle: &str,
        app_key: &PrivateKey,
        now: OffsetDateTime,
    ) -> Result<Self, (CertFile, CertModeError)> {
        let roots = Certificate::parse_pem(root_bundle).map_err(|e| (CertFile::Root, e.into()))?;
        let root_cert_sn = root_cert_sn(&roots).map_err(|e| (CertFile::Root, e.into()))?;

        let app = Certificate::parse_pem(app_cert).map_err(|e| (CertFile::App, e.into()))?;
        let app = &app[0];
        if app.spki_der() != app_key.public_key_spki_der() {
            return Err((CertFile::App, CertModeError::KeyMismatch));
        }
        app.check_valid_at(now)
            .map_err(|e| (CertFile::App, e.into()))?;

        let alipay = accept_chain(alipay_cert, None, &roots, now)
            .map_err(|e| (CertFile::Alipay, e.into()))?;
        Ok(Self {
            app_cert_sn: app.sn().to_owned(),
            root_cert_sn,
            app_not_after: app.not_after(),
            roots,
            alipay: RwLock::new(vec![alipay]),
            rotations: Rotations::default(),
        })
    }

    /// `app_cert_sn`, which every request carries.
    pub fn app_cert_sn(&self) -> &str {
        &self.app_cert_sn
    }

    /// `alipay_root_cert_sn`, which every request carries.
    pub fn root_cert_sn(&self) -> &str {
        &self.root_cert_sn
    }

    /// Alipay's current certificate.
    pub fn current(&self) -> AlipayCert {
        let certs = self.alipay.read().expect("lock");
        certs.last().expect("one certificate at least").clone()
    }

    /// The key of the Alipay certificate `sn`, if we hold it.
    pub fn key(&self, sn: &str) -> Option<Arc<PublicKey>> {
        let certs = self.alipay.read().expect("lock");
        certs.iter().find(|c| c.sn == sn).map(|c| c.key.clone())
    }

    /// Every Alipay key we hold, the current one first: a notification may have been signed
    /// before a rotation.
    pub fn keys(&self) -> Vec<Arc<PublicKey>> {
        let certs = self.alipay.read().expect("lock");
        certs.iter().rev().map(|c| c.key.clone()).collect()
    }

    /// Checks a certificate Alipay served for `sn` (its PEM, Alipay's certificate first, then
    /// the CAs that issued it): the first certificate must be `sn`, chain to our roots and be
    /// valid at `now`. Nothing changes until [`Self::install`].
    pub fn check_rotation(
        &self,
        pem: &str,
        sn: &str,
        now: OffsetDateTime,
    ) -> Result<AlipayCert, CertError> {
        accept_chain(pem, Some(sn), &self.roots, now)
    }

    /// Makes a checked certificate the current one; those before it stay for notifications
    /// signed before the rotation.
    pub fn install(&self, cert: AlipayCert) {
        let mut certs = self.alipay.write().expect("lock");
        certs.retain(|c| c.sn != cert.sn);
        certs.push(cert);
        self.rotations.installed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a rotation that could not be trusted (for the metric).
    pub fn refuse(&self) {
        self.rotations.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Installed and refused rotations so far.
    pub fn rotations(&self) -> (u64, u64) {
        (
            self.rotations.installed.load(Ordering::Relaxed),
            self.rotations.refused.load(Ordering::Relaxed),
        )
    }

    /// When each certificate we rely on expires: the app's, Alipay's current one, and the RSA
    /// roots named in requests.
    pub fn expiries(&self) -> Vec<Expiry> {
        let current = self.current();
        let mut expiries = vec![
            Expiry {
                file: CertFile::App,
                sn: self.app_cert_sn.clone(),
                not_after: self.app_not_after,
            },
            Expiry {
                file: CertFile::Alipay,
                sn: current.sn,
                not_after: current.not_after,
            },
        ];
        expiries.extend(
            self.roots
                .iter()
                .filter(|r| r.is_rsa_signed())
                .map(|r| Expiry {
                    file: CertFile::Root,
                    sn: r.sn().to_owned(),
                    not_after: r.not_after(),
                }),
        );
        expiries
    }
}

/// Parses Alipay's certificate file (its certificate, then the CAs that issued it), checks the
/// SN when one is expected, and the chain to `roots`.
fn accept_chain(
    pem: &str,
    expected_sn: Option<&str>,
    roots: &[Certificate],
    now: OffsetDateTime,
) -> Result<AlipayCert, CertError> {
    let chain = Certificate::parse_pem(pem)?;
    let (leaf, intermediates) = chain.split_first().expect("parse_pem returns one at least");
    if let Some(expected) = expected_sn.filter(|sn| *sn != leaf.sn()) {
        return Err(CertError::WrongSn {
            expected: expected.to_owned(),
            found: leaf.sn().to_owned(),
        });
    }
    verify_chain(leaf, intermediates, roots, now)?;
    Ok(AlipayCert {
        sn: leaf.sn().to_owned(),
        key: Arc::new(leaf.public_key()?),
        not_after: leaf.not_after(),
    })
}
