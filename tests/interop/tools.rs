//! openssl and python3, run at test time: required, never a reason to skip.

use std::path::Path;
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Runs a required external tool; its absence is a test failure, not a skip.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}`: {e}. The interop tests need the {program} binary on \
                 PATH (it is installed in CI); they do not skip without it."
            )
        })
}

pub fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `openssl dgst -sha256 -verify`: true when openssl accepts `signature` over `content`.
pub fn openssl_verifies(public_key_pem: &Path, content: &[u8], signature: &[u8]) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let (content_path, signature_path) =
        (dir.path().join("content.txt"), dir.path().join("sig.bin"));
    std::fs::write(&content_path, content).unwrap();
    std::fs::write(&signature_path, signature).unwrap();
    let output = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-verify",
            path_arg(public_key_pem),
            "-signature",
            path_arg(&signature_path),
            path_arg(&content_path),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    output.status.success() && stdout.contains("Verified OK")
}

/// `openssl dgst -sha256 -sign`: the raw signature bytes.
pub fn openssl_sign(private_key_pem: &Path, content: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (content_path, signature_path) =
        (dir.path().join("content.txt"), dir.path().join("sig.bin"));
    std::fs::write(&content_path, content).unwrap();
    let output = run(
        "openssl",
        &[
            "dgst",
            "-sha256",
            "-sign",
            path_arg(private_key_pem),
            "-out",
            path_arg(&signature_path),
            path_arg(&content_path),
        ],
    );
    assert!(
        output.status.success(),
        "openssl dgst -sign failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(signature_path).unwrap()
}

pub fn decode_base64(signature: &str) -> Vec<u8> {
    STANDARD
        .decode(signature)
        .unwrap_or_else(|e| panic!("not standard base64 ({e}): {signature:?}"))
}
