//! The hierarchy in the `alipay-sim` key directory, so that a restart keeps every SN the service
//! was configured with. The CA keys are PKCS#8 PEM with mode 0600 (`ca_*_key.pem`), the CA
//! certificates beside them (`ca_*.crt`). Alipay's and the apps' certificates are read back from
//! the files [`Pki::write_files`] writes there; one that no longer fits (another Alipay key, another
//! app key, expired) is issued anew. The ECDSA and legacy roots sign nothing, so only their
//! certificates are kept.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::RwLock;

use rcgen::{KeyPair, PublicKeyData};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::authority::{Authority, IssuedCert};
use super::files::{self, ALIPAY_CERT_FILE, ROOT_CERT_FILE};
use super::names::{self, sn, Dn, Serial};
use super::{copy_key, Chained, Pki, PkiError};
use alipay_notify::alipay::keys::PrivateKey;

const ROOT_KEY: &str = "ca_root_key.pem";
const ROOT_CERT: &str = "ca_root.crt";
const INTERMEDIATE_KEY: &str = "ca_intermediate_key.pem";
const INTERMEDIATE_CERT: &str = "ca_intermediate.crt";
const ECDSA_ROOT_CERT: &str = "ca_ecdsa_root.crt";
const LEGACY_ROOT_CERT: &str = "ca_legacy_root.crt";

/// The hierarchy saved in `dir`, or a new one saved there, with Alipay's certificate over
/// `alipay_key`.
pub fn load_or_generate(dir: &Path, alipay_key: &PrivateKey) -> Result<Pki, PkiError> {
    if !dir.join(ROOT_KEY).exists() {
        let pki = Pki::generate(alipay_key)?;
        save(dir, &pki)?;
        return Ok(pki);
    }
    let root = restore(dir, ROOT_KEY, ROOT_CERT, names::rsa_root(), None)?;
    let intermediate = restore(
        dir,
        INTERMEDIATE_KEY,
        INTERMEDIATE_CERT,
        names::intermediate(),
        Some(&root),
    )?;
    let bundle = vec![
        root.cert().clone(),
        read_root(dir, ECDSA_ROOT_CERT, &names::ecdsa_root())?,
        read_root(dir, LEGACY_ROOT_CERT, &names::legacy_root())?,
    ];
    let pki = Pki {
        apps: saved_app_certs(dir, &intermediate),
        root,
        intermediate,
        bundle,
        alipay: RwLock::new(Vec::new()),
    };
    let leaf = match saved_alipay_cert(dir, &pki.intermediate, alipay_key) {
        Some(leaf) => leaf,
        None => {
            let leaf = pki.issue_alipay_cert(alipay_key)?;
            files::write_file(dir, ALIPAY_CERT_FILE, &leaf.chain)?;
            leaf
        }
    };
    pki.push_alipay(leaf, copy_key(alipay_key)?);
    Ok(pki)
}

fn save(dir: &Path, pki: &Pki) -> Result<(), PkiError> {
    files::create_dir(dir)?;
    write_key(dir, ROOT_KEY, &pki.root.key_pem())?;
    write_key(dir, INTERMEDIATE_KEY, &pki.intermediate.key_pem())?;
    files::write_file(dir, ROOT_CERT, &pki.bundle[0].pem)?;
    files::write_file(dir, ECDSA_ROOT_CERT, &pki.bundle[1].pem)?;
    files::write_file(dir, LEGACY_ROOT_CERT, &pki.bundle[2].pem)?;
    files::write_file(dir, INTERMEDIATE_CERT, &pki.intermediate.cert().pem)?;
    files::write_file(dir, ROOT_CERT_FILE, &pki.root_bundle())?;
    files::write_file(dir, ALIPAY_CERT_FILE, &pki.alipay_cert_chain())?;
    Ok(())
}

/// A private key, 0600, never overwriting one (two first starts at once keep one hierarchy).
fn write_key(dir: &Path, name: &str, pem: &str) -> Result<(), PkiError> {
    let path = dir.join(name);
    crate::keystore::create_private(&path, pem.as_bytes())
        .map_err(|source| PkiError::Write { path, source })
}

fn read(dir: &Path, name: &str) -> Result<String, PkiError> {
    let path = dir.join(name);
    fs::read_to_string(&path).map_err(|source| PkiError::Read { path, source })
}

fn stored_error(dir: &Path, name: &str, reason: &str) -> PkiError {
    PkiError::Stored {
        path: dir.join(name),
        reason: reason.into(),
    }
}

/// A saved CA: its key, and its certificate issued by `parent` (itself when `None`).
fn restore(
    dir: &Path,
    key_name: &str,
    cert_name: &str,
    dn: Dn,
    parent: Option<&Authority>,
) -> Result<Authority, PkiError> {
    let key = KeyPair::from_pkcs8_pem_and_sign_algo(&read(dir, key_name)?, &rcgen::PKCS_RSA_SHA256)
        .map_err(|_| stored_error(dir, key_name, "not an RSA PKCS#8 key"))?;
    let pem = read(dir, cert_name)?;
    let cert = inspect(&pem).ok_or_else(|| stored_error(dir, cert_name, "not a certificate"))?;
    if cert.spki != key.subject_public_key_info() {
        return Err(stored_error(
            dir,
            cert_name,
            "not the certificate of the key beside it",
        ));
    }
    let issuer_dn = parent.map_or(&dn, |parent| parent.dn());
    if let Some(parent) = parent {
        if !cert.issued_by(&parent.cert().pem) {
            return Err(stored_error(dir, cert_name, "not issued by the root"));
        }
    }
    let sn = sn(issuer_dn, cert.serial);
    Ok(Authority::restore(dn, key, IssuedCert { pem, sn }))
}

/// A saved self-signed root that signs nothing here.
fn read_root(dir: &Path, name: &str, dn: &Dn) -> Result<IssuedCert, PkiError> {
    let pem = read(dir, name)?;
    let cert = inspect(&pem).ok_or_else(|| stored_error(dir, name, "not a certificate"))?;
    Ok(IssuedCert {
        sn: sn(dn, cert.serial),
        pem,
    })
}

/// Alipay's certificate from the file written for the service, if it still fits.
fn saved_alipay_cert(dir: &Path, intermediate: &Authority, key: &PrivateKey) -> Option<Chained> {
    let chain = fs::read_to_string(dir.join(ALIPAY_CERT_FILE)).ok()?;
    let cert = issued_leaf(&chain, intermediate)?;
    let fits = inspect(&cert.pem)?.spki == key.public_key_spki_der();
    fits.then(|| Chained {
        chain: format!("{}{}", cert.pem, intermediate.cert().pem),
        cert,
    })
}

/// The app certificates written for the service before, by app_id.
fn saved_app_certs(dir: &Path, intermediate: &Authority) -> HashMap<String, IssuedCert> {
    let Ok(entries) = fs::read_dir(dir) else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let app_id = files::app_id_of(&name)?.to_owned();
            let text = fs::read_to_string(entry.path()).ok()?;
            Some((app_id, issued_leaf(&text, intermediate)?))
        })
        .collect()
}

/// The first certificate in `text`, if the intermediate issued it and it is valid now.
fn issued_leaf(text: &str, intermediate: &Authority) -> Option<IssuedCert> {
    let block = pem::parse_many(text).ok()?.into_iter().next()?;
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let pem = pem::encode_config(&block, lf);
    let cert = inspect(&pem)?;
    (cert.issued_by(&intermediate.cert().pem) && cert.is_current()).then(|| IssuedCert {
        sn: sn(intermediate.dn(), cert.serial),
        pem,
    })
}

/// What the simulator needs to know of a certificate it saved.
pub(super) struct Inspected {
    pub serial: Serial,
    pub issuer: Vec<u8>,
    pub subject: Vec<u8>,
    pub spki: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl Inspected {
    pub fn is_current(&self) -> bool {
        let now = OffsetDateTime::now_utc();
        self.not_before <= now && now <= self.not_after
    }

    /// Whether the certificate in `issuer_pem` is named as this one's issuer. (These are the
    /// simulator's own files: names are checked, signatures are not.)
    fn issued_by(&self, issuer_pem: &str) -> bool {
        inspect(issuer_pem).is_some_and(|issuer| issuer.subject == self.issuer)
    }
}

/// The first certificate of a PEM text, read with x509-parser.
pub(super) fn inspect(pem_text: &str) -> Option<Inspected> {
    let block = pem::parse(pem_text).ok()?;
    let (_, cert) = X509Certificate::from_der(block.contents()).ok()?;
    let validity = cert.validity();
    Some(Inspected {
        serial: Serial::from_der_bytes(cert.tbs_certificate.raw_serial())?,
        issuer: cert.issuer().as_raw().to_vec(),
        subject: cert.subject().as_raw().to_vec(),
        spki: cert.public_key().raw.to_vec(),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
    })
}
