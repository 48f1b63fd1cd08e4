//! External tools run at test time, for material made independently of our code. They are
//! required: a missing one fails the test with a message, never skips it.

use std::path::Path;
use std::process::{Command, Output};

/// Runs a required external tool.
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}`: {e}. These tests need the {program} binary on PATH \
                 (it is installed in CI); they do not skip without it."
            )
        })
}

pub fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `openssl dgst -<digest> -sign`: the raw RSA PKCS#1 v1.5 signature bytes over `content`.
pub fn openssl_sign(digest: &str, private_key_pem: &Path, content: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let (content_path, signature_path) =
        (dir.path().join("content.txt"), dir.path().join("sig.bin"));
    std::fs::write(&content_path, content).unwrap();
    let output = run(
        "openssl",
        &[
            "dgst",
            &format!("-{digest}"),
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

/// `openssl dgst -<digest> -verify`: true when openssl accepts `signature` over `content`.
pub fn openssl_verifies(
    digest: &str,
    public_key_pem: &Path,
    content: &[u8],
    signature: &[u8],
) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let (content_path, signature_path) =
        (dir.path().join("content.txt"), dir.path().join("sig.bin"));
    std::fs::write(&content_path, content).unwrap();
    std::fs::write(&signature_path, signature).unwrap();
    let output = run(
        "openssl",
        &[
            "dgst",
            &format!("-{digest}"),
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
