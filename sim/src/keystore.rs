//! The simulator's own Alipay keypair on disk: loaded from a directory, or generated and saved
//! there on first start. The private key is PKCS#8 PEM with mode 0600; the public key is saved
//! beside it as bare base64, ready for the service's `ALIPAY_PUBLIC_KEY_FILE`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use alipay_notify::alipay::keys::{KeyError, PrivateKey};

pub const PRIVATE_KEY_FILE: &str = "alipay_private_key.pem";
pub const PUBLIC_KEY_FILE: &str = "alipay_public_key.txt";

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
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
    #[error("{path}: {source}")]
    Key { path: PathBuf, source: KeyError },
}

/// The key in `dir`, or a new one saved there. Says whether it was generated.
pub fn load_or_generate(dir: &Path) -> Result<(PrivateKey, bool), KeystoreError> {
    let path = dir.join(PRIVATE_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let key = PrivateKey::parse(&text).map_err(|source| KeystoreError::Key {
                path: path.clone(),
                source,
            })?;
            Ok((key, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::generate();
            save(dir, &key)?;
            Ok((key, true))
        }
        Err(source) => Err(KeystoreError::Read { path, source }),
    }
}

fn save(dir: &Path, key: &PrivateKey) -> Result<(), KeystoreError> {
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| KeystoreError::Write { path, source }
    };
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(write_error(dir))?;
    let private = dir.join(PRIVATE_KEY_FILE);
    create_private(&private, key.to_pkcs8_pem().as_bytes()).map_err(write_error(&private))?;
    let public = dir.join(PUBLIC_KEY_FILE);
    fs::write(&public, format!("{}\n", key.public_key_base64())).map_err(write_error(&public))
}

/// Writes a private key file with mode 0600, never over an existing one: two first starts at
/// once must not overwrite each other's key.
pub(crate) fn create_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut file| file.write_all(contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("sim");
        let (first, generated) = load_or_generate(&keys).unwrap();
        assert!(generated);
        let (second, generated) = load_or_generate(&keys).unwrap();
        assert!(!generated);
        assert_eq!(first.public_key_base64(), second.public_key_base64());
        let public = fs::read_to_string(keys.join(PUBLIC_KEY_FILE)).unwrap();
        assert_eq!(public.trim(), first.public_key_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(keys.join(PRIVATE_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
