//! The three files Alipay's console gives an app in certificate mode, named as Alipay names them.

use std::fs;
use std::path::{Path, PathBuf};

use super::PkiError;

/// Alipay's certificate followed by the intermediate that issued it.
pub const ALIPAY_CERT_FILE: &str = "alipayCertPublicKey_RSA2.crt";
/// The root bundle.
pub const ROOT_CERT_FILE: &str = "alipayRootCert.crt";

/// Where an app's three certificate files were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// `appCertPublicKey_<app_id>.crt`: the service's ALIPAY_APP_CERT_FILE.
    pub app_cert: PathBuf,
    /// `alipayCertPublicKey_RSA2.crt`: the service's ALIPAY_CERT_FILE.
    pub alipay_cert: PathBuf,
    /// `alipayRootCert.crt`: the service's ALIPAY_ROOT_CERT_FILE.
    pub root_cert: PathBuf,
}

/// `appCertPublicKey_<app_id>.crt`, for an app_id that can safely be part of a file name.
pub fn app_cert_file_name(app_id: &str) -> Result<String, PkiError> {
    let safe = !app_id.is_empty()
        && app_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !safe {
        return Err(PkiError::AppIdNotAFileName(app_id.to_owned()));
    }
    Ok(format!("appCertPublicKey_{app_id}.crt"))
}

/// The app_id in a file name written by [`app_cert_file_name`].
pub(super) fn app_id_of(file_name: &str) -> Option<&str> {
    let app_id = file_name
        .strip_prefix("appCertPublicKey_")?
        .strip_suffix(".crt")?;
    app_cert_file_name(app_id).ok().map(|_| app_id)
}

pub(super) fn write(
    dir: &Path,
    app_id: &str,
    app_cert: &str,
    alipay_cert: &str,
    root_bundle: &str,
) -> Result<CertFiles, PkiError> {
    let app_name = app_cert_file_name(app_id)?;
    create_dir(dir)?;
    Ok(CertFiles {
        app_cert: write_file(dir, &app_name, app_cert)?,
        alipay_cert: write_file(dir, ALIPAY_CERT_FILE, alipay_cert)?,
        root_cert: write_file(dir, ROOT_CERT_FILE, root_bundle)?,
    })
}

/// The directory, made private to its owner when new (it is the simulator's key directory).
pub(super) fn create_dir(dir: &Path) -> Result<(), PkiError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| PkiError::Write {
        path: dir.to_owned(),
        source,
    })
}

pub(super) fn write_file(dir: &Path, name: &str, text: &str) -> Result<PathBuf, PkiError> {
    let path = dir.join(name);
    fs::write(&path, text).map_err(|source| PkiError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids_that_could_escape_the_directory_are_refused() {
        assert_eq!(
            app_cert_file_name("2021000000000001").unwrap(),
            "appCertPublicKey_2021000000000001.crt"
        );
        for bad in ["", "../x", "a/b", "a.b"] {
            assert!(app_cert_file_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            app_id_of("appCertPublicKey_2021000000000001.crt"),
            Some("2021000000000001")
        );
        assert_eq!(app_id_of("appCertPublicKey_../x.crt"), None);
    }
}
