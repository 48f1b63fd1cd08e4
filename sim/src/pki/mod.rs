//! The simulated Alipay's certificates, for apps in public-key certificate mode (公钥证书模式):
//! an RSA root, an ECDSA root and a second ("legacy") RSA root in the root bundle; an RSA
//! intermediate under the first root that issues Alipay's certificate and every app's. Alipay's
//! certificate starts out over the simulator's own Alipay key, so plain-key and cert-mode apps see
//! the same signatures until a rotation gives Alipay a new key and certificate.
//!
//! `names` holds the DNs and computes SNs on its own (the service's parser is the other
//! opinion); `authority` issues; `files` writes the three files an app is given; `store` keeps
//! the hierarchy in the `alipay-sim` key directory.

mod authority;
mod files;
mod names;
mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use alipay_notify::alipay::keys::{KeyError, PrivateKey};
use aws_lc_rs::encoding::AsDer;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use authority::{Authority, KeyKind};
pub use authority::{IssuedCert, Validity};
pub use files::{app_cert_file_name, CertFiles, ALIPAY_CERT_FILE, ROOT_CERT_FILE};
pub use store::load_or_generate;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot make a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("the public key is not the DER SubjectPublicKeyInfo of a supported key")]
    PublicKey,
    #[error("cannot copy the Alipay key: {0}")]
    Key(#[from] KeyError),
    #[error("app {0} is not in certificate mode")]
    NotInCertMode(String),
    #[error("app_id {0:?} cannot be part of a file name")]
    AppIdNotAFileName(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason} (delete the ca_* files there to start a new hierarchy)")]
    Stored { path: PathBuf, reason: String },
}

/// Who issues the certificate Alipay rotates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The intermediate, as at Alipay: the new certificate chains to the root bundle.
    Trusted,
    /// A rogue CA with the same names as the real root and intermediate, under no root in the
    /// bundle: what a service must refuse to believe.
    Untrusted,
}

/// One certificate Alipay has signed with: its SN, the PEM served for it (the certificate, then
/// the CA that issued it), and its key.
struct AlipayCert {
    sn: String,
    chain: String,
    key: Arc<PrivateKey>,
}

/// The key Alipay signs cert-mode answers with now, and the SN of its certificate.
pub(crate) struct CertSigner {
    pub key: Arc<PrivateKey>,
    pub sn: String,
}

/// The hierarchy, Alipay's certificates so far, and the apps' certificates.
pub struct Pki {
    root: Authority,
    intermediate: Authority,
    /// The root bundle's certificates in file order: RSA root, ECDSA root, legacy RSA root.
    bundle: Vec<IssuedCert>,
    /// Oldest first; the last is the one Alipay signs with.
    alipay: RwLock<Vec<AlipayCert>>,
    /// The certificate of each app in certificate mode, by app_id.
    apps: HashMap<String, IssuedCert>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("root_cert_sn", &self.root_cert_sn())
            .field("alipay_cert_sn", &self.alipay_cert_sn())
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// A new hierarchy, in memory, with Alipay's certificate over `alipay_key`.
    pub fn generate(alipay_key: &PrivateKey) -> Result<Self, PkiError> {
        let root = Authority::root(names::rsa_root(), KeyKind::Rsa)?;
        let ecdsa = Authority::root(names::ecdsa_root(), KeyKind::EcdsaP256)?;
        let legacy = Authority::root(names::legacy_root(), KeyKind::Rsa)?;
        let intermediate = Authority::subordinate(names::intermediate(), &root)?;
        let bundle = vec![
            root.cert().clone(),
            ecdsa.cert().clone(),
            legacy.cert().clone(),
        ];
        let pki = Self {
            root,
            intermediate,
            bundle,
            alipay: RwLock::new(Vec::new()),
            apps: HashMap::new(),
        };
        let leaf = pki.issue_alipay_cert(alipay_key)?;
        pki.push_alipay(leaf, copy_key(alipay_key)?);
        Ok(pki)
    }

    /// The SN of the certificate Alipay signs with now (what responses carry as alipay_cert_sn).
    pub fn alipay_cert_sn(&self) -> String {
        self.with_current(|cert| cert.sn.clone())
    }

    /// `alipay_root_cert_sn`: the SNs of the bundle's RSA-signed roots, joined by `_`.
    pub fn root_cert_sn(&self) -> String {
        let rsa = [&self.bundle[0], &self.bundle[2]];
        rsa.map(|cert| cert.sn.as_str()).join("_")
    }

    /// The SN of the root Alipay's certificates chain to: a request's alipay_root_cert_sn must
    /// name it.
    pub(crate) fn gateway_root_sn(&self) -> &str {
        &self.root.cert().sn
    }

    /// The certificate of an app in certificate mode.
    pub fn app_cert(&self, app_id: &str) -> Option<&IssuedCert> {
        self.apps.get(app_id)
    }

    /// `app_cert_sn` for an app in certificate mode.
    pub fn app_cert_sn(&self, app_id: &str) -> Option<&str> {
        self.app_cert(app_id).map(|cert| cert.sn.as_str())
    }

    /// The root bundle's text (`alipayRootCert.crt`).
    pub fn root_bundle(&self) -> String {
        self.bundle.iter().map(|cert| cert.pem.as_str()).collect()
    }

    /// What `alipayCertPublicKey_RSA2.crt` holds now: Alipay's current certificate, then its CA.
    pub fn alipay_cert_chain(&self) -> String {
        self.with_current(|cert| cert.chain.clone())
    }

    /// What `alipay.open.app.alipaycert.download` serves for `sn`, current or not.
    pub fn download(&self, sn: &str) -> Option<String> {
        let certs = self.alipay.read().unwrap_or_else(PoisonError::into_inner);
        certs.iter().find(|c| c.sn == sn).map(|c| c.chain.clone())
    }

    /// A new key and certificate for Alipay, which signs every cert-mode answer from now on.
    /// Returns the new SN. (Generates RSA keys: slow in debug builds.)
    pub fn rotate_alipay_cert(&self, rotation: Rotation) -> Result<String, PkiError> {
        let key = PrivateKey::generate();
        let leaf = match rotation {
            Rotation::Trusted => self.issue_alipay_cert(&key)?,
            Rotation::Untrusted => {
                let rogue_root = Authority::root(names::rsa_root(), KeyKind::Rsa)?;
                let rogue = Authority::subordinate(names::intermediate(), &rogue_root)?;
                let cert = rogue.issue(
                    &names::alipay(),
                    &key.public_key_spki_der(),
                    Validity::leaf(),
                )?;
                Chained {
                    chain: format!("{}{}", cert.pem, rogue.cert().pem),
                    cert,
                }
            }
        };
        let sn = leaf.cert.sn.clone();
        self.push_alipay(leaf, key);
        Ok(sn)
    }

    /// An app certificate from the intermediate, as Alipay's console issues them, over any key
    /// (`spki_der`: DER SubjectPublicKeyInfo) and for any validity, registered nowhere: for tests
    /// of expired certificates or certificates for another key.
    pub fn issue_app_cert(
        &self,
        app_id: &str,
        spki_der: &[u8],
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        self.intermediate
            .issue(&names::app(app_id), spki_der, validity)
    }

    /// Gives a cert-mode app its certificate: the one held already if it is over the same key and
    /// still valid (so a restart keeps app_cert_sn), else a new one.
    pub(crate) fn certify_app(&mut self, app_id: &str, spki_der: &[u8]) -> Result<(), PkiError> {
        let held = self
            .apps
            .get(app_id)
            .and_then(|cert| store::inspect(&cert.pem));
        if held.is_some_and(|held| held.spki == spki_der && held.is_current()) {
            return Ok(());
        }
        let cert = self.issue_app_cert(app_id, spki_der, Validity::leaf())?;
        self.apps.insert(app_id.to_owned(), cert);
        Ok(())
    }

    /// The key and SN that sign cert-mode answers now.
    pub(crate) fn signer(&self) -> CertSigner {
        self.with_current(|cert| CertSigner {
            key: cert.key.clone(),
            sn: cert.sn.clone(),
        })
    }

    /// Writes the three files an app in certificate mode is given into `dir`, under Alipay's
    /// names, and returns their paths.
    pub fn write_files(&self, app_id: &str, dir: &Path) -> Result<CertFiles, PkiError> {
        let app_cert = self
            .app_cert(app_id)
            .ok_or_else(|| PkiError::NotInCertMode(app_id.to_owned()))?;
        files::write(
            dir,
            app_id,
            &app_cert.pem,
            &self.alipay_cert_chain(),
            &self.root_bundle(),
        )
    }

    fn issue_alipay_cert(&self, key: &PrivateKey) -> Result<Chained, PkiError> {
        let cert = self.intermediate.issue(
            &names::alipay(),
            &key.public_key_spki_der(),
            Validity::leaf(),
        )?;
        Ok(Chained {
            chain: format!("{}{}", cert.pem, self.intermediate.cert().pem),
            cert,
        })
    }

    fn push_alipay(&self, leaf: Chained, key: PrivateKey) {
        let mut certs = self.alipay.write().unwrap_or_else(PoisonError::into_inner);
        certs.push(AlipayCert {
            sn: leaf.cert.sn,
            chain: leaf.chain,
            key: Arc::new(key),
        });
    }

    fn with_current<R>(&self, read: impl FnOnce(&AlipayCert) -> R) -> R {
        let certs = self.alipay.read().unwrap_or_else(PoisonError::into_inner);
        read(
            certs
                .last()
                .expect("Alipay has a certificate from the start"),
        )
    }
}

/// An RSA public key as uploaded to Alipay's console (PEM or bare base64, SPKI or PKCS#1) as the
/// DER SubjectPublicKeyInfo that `RegisteredApp::in_cert_mode` takes.
pub fn public_key_spki_der(text: &str) -> Result<Vec<u8>, PkiError> {
    let text = text.trim().trim_start_matches('\u{feff}').trim();
    let der = if text.starts_with("-----BEGIN") {
        pem::parse(text)
            .map_err(|_| PkiError::PublicKey)?
            .into_contents()
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        STANDARD.decode(compact).map_err(|_| PkiError::PublicKey)?
    };
    let key = aws_lc_rs::rsa::PublicKey::from_der(&der).map_err(|_| PkiError::PublicKey)?;
    let spki = key.as_der().map_err(|_| PkiError::PublicKey)?;
    Ok(spki.as_ref().to_vec())
}

/// A leaf certificate and the PEM served for it (the leaf, then the CA that issued it).
struct Chained {
    cert: IssuedCert,
    chain: String,
}

/// An owned copy of a key (`PrivateKey` is not `Clone`).
fn copy_key(key: &PrivateKey) -> Result<PrivateKey, PkiError> {
    Ok(PrivateKey::parse(&key.to_pkcs8_pem())?)
}

#[cfg(test)]
mod tests;
