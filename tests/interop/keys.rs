//! Keys in every shape Alipay's console and openssl produce, and what their errors may not say.

use alipay_notify::alipay::callback::verify;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};

use crate::vectors::*;

const PRIVATE_SHAPES: [&str; 4] = [
    "app_private_pkcs8.pem",
    "app_private_pkcs1.pem",
    "app_private_pkcs1.b64",
    "app_private_pkcs8.b64",
];

const PUBLIC_SHAPES: [&str; 3] = [
    "alipay_public_spki.pem",
    "alipay_public_pkcs1.pem",
    "alipay_public_spki.b64",
];

#[test]
fn every_private_key_shape_signs_exactly_as_openssl_did() {
    let content = vector_bytes("app_signed_content.txt");
    let openssl_signature = vector_text("app_signed_content.sig.b64");
    for file in PRIVATE_SHAPES {
        let key =
            PrivateKey::parse(&vector_text(file)).unwrap_or_else(|e| panic!("{file} refused: {e}"));
        assert_eq!(key.sign(&content), openssl_signature.trim(), "{file}");
    }
    let spki = vector_text("app_public_spki.pem");
    let bare_spki: String = spki.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(app_private_key().public_key_base64(), bare_spki);
}

#[test]
fn every_public_key_shape_verifies_alipays_signature() {
    let case = case("utf8_basic");
    for file in PUBLIC_SHAPES {
        let key =
            PublicKey::parse(&vector_text(file)).unwrap_or_else(|e| panic!("{file} refused: {e}"));
        assert!(verify(&case.raw(), &key).is_ok(), "{file}");
    }
    let crlf = vector_text("alipay_public_spki.pem").replace('\n', "\r\n");
    let key = PublicKey::parse(&crlf).expect("a PEM with Windows line endings");
    assert!(verify(&case.raw(), &key).is_ok(), "CRLF PEM");
}

/// Every 16-character run of every key's base64 text: none may appear in an error message.
fn key_material_windows() -> Vec<String> {
    let files = PRIVATE_SHAPES
        .iter()
        .chain(PUBLIC_SHAPES.iter())
        .chain(["app_public_spki.pem", "alipay_private_pkcs8.pem"].iter());
    let mut windows = Vec::new();
    for file in files {
        let text = vector_text(file);
        let bare: String = text
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        let chars: Vec<char> = bare.chars().collect();
        windows.extend(chars.windows(16).map(|w| w.iter().collect::<String>()));
    }
    windows
}

fn assert_no_key_material(message: &str, windows: &[String], what: &str) {
    if let Some(leak) = windows.iter().find(|w| message.contains(w.as_str())) {
        panic!("{what}: the error leaks key material ({leak}): {message}");
    }
}

#[test]
fn garbage_and_misplaced_keys_are_refused_without_echoing_key_material() {
    let windows = key_material_windows();
    let spki_b64 = vector_text("alipay_public_spki.b64");
    let app_pkcs8_b64 = vector_text("app_private_pkcs8.b64");
    let truncated_pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        &spki_b64[..200]
    );

    let not_public: Vec<(String, String)> = vec![
        ("empty".into(), String::new()),
        ("garbage".into(), "not a key at all".into()),
        ("truncated base64".into(), spki_b64[..200].to_owned()),
        ("truncated PEM".into(), truncated_pem.clone()),
        (
            "private PKCS#8 PEM".into(),
            vector_text("app_private_pkcs8.pem"),
        ),
        (
            "private PKCS#1 PEM".into(),
            vector_text("app_private_pkcs1.pem"),
        ),
        ("bare private PKCS#8".into(), app_pkcs8_b64.clone()),
        (
            "bare private PKCS#1".into(),
            vector_text("app_private_pkcs1.b64"),
        ),
    ];
    for (what, text) in &not_public {
        let error = PublicKey::parse(text).expect_err(what);
        assert_no_key_material(&error.to_string(), &windows, what);
        assert_no_key_material(&format!("{error:?}"), &windows, what);
    }

    let not_private: Vec<(String, String)> = vec![
        ("empty".into(), String::new()),
        (
            "garbage".into(),
            "-----BEGIN PRIVATE KEY-----\nZ@rbage\n-----END PRIVATE KEY-----".into(),
        ),
        ("truncated base64".into(), app_pkcs8_b64[..400].to_owned()),
        (
            "public SPKI PEM".into(),
            vector_text("alipay_public_spki.pem"),
        ),
        ("bare public SPKI".into(), spki_b64.clone()),
        ("truncated PEM".into(), truncated_pem),
    ];
    for (what, text) in &not_private {
        let error = PrivateKey::parse(text).expect_err(what);
        assert_no_key_material(&error.to_string(), &windows, what);
        assert_no_key_material(&format!("{error:?}"), &windows, what);
    }
}
