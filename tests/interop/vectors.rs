//! The vectors in `tests/vectors/`: the files, the cases of `cases.json`, the keys, and edits
//! of a case's parameters that keep every other byte as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_test_support::form::encode_every_byte;
use serde_json::Value;

pub fn vector_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file)
}

pub fn vector_bytes(file: &str) -> Vec<u8> {
    let path = vector_path(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with tests/vectors/make.sh)",
            path.display()
        )
    })
}

pub fn vector_text(file: &str) -> String {
    String::from_utf8(vector_bytes(file)).expect("vector files are UTF-8 text")
}

/// One entry of `cases.json`, written by `make_notifies.py`.
pub struct Case {
    pub name: String,
    /// `notify` or `return`.
    pub kind: String,
    /// `valid`, or `reject_sign_type` for a genuinely signed message we must still refuse.
    pub expect: String,
    /// Every parameter but `sign`, as UTF-8 text.
    pub params: BTreeMap<String, String>,
}

impl Case {
    pub fn body(&self) -> Vec<u8> {
        vector_bytes(&format!("{}.body", self.name))
    }

    pub fn sign_string(&self) -> Vec<u8> {
        vector_bytes(&format!("{}.signstring", self.name))
    }

    pub fn raw(&self) -> RawParams {
        RawParams::parse(&self.body())
            .unwrap_or_else(|e| panic!("{}: the body does not parse: {e}", self.name))
    }

    pub fn is_valid(&self) -> bool {
        self.expect == "valid"
    }
}

pub fn cases() -> Vec<Case> {
    let manifest: Value =
        serde_json::from_str(&vector_text("cases.json")).expect("cases.json is JSON");
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    let cases: Vec<Case> = manifest
        .as_array()
        .expect("cases.json is a list")
        .iter()
        .map(|case| Case {
            name: text(&case["name"]),
            kind: text(&case["kind"]),
            expect: text(&case["expect"]),
            params: case["params"]
                .as_object()
                .expect("params is an object")
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        })
        .collect();
    assert!(cases.len() >= 9, "cases.json lost vectors: {}", cases.len());
    cases
}

pub fn valid_cases() -> impl Iterator<Item = Case> {
    cases().into_iter().filter(Case::is_valid)
}

pub fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no vector named {name}"))
}

pub fn alipay_public_key() -> PublicKey {
    PublicKey::parse(&vector_text("alipay_public_spki.pem")).expect("alipay SPKI PEM")
}

pub fn app_public_key() -> PublicKey {
    PublicKey::parse(&vector_text("app_public_spki.pem")).expect("app SPKI PEM")
}

pub fn app_private_key() -> PrivateKey {
    PrivateKey::parse(&vector_text("app_private_pkcs8.pem")).expect("app PKCS#8 PEM")
}

/// The parameters of `raw`, re-encoded after `edit` has had its way with them.
pub fn edited(raw: &RawParams, edit: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) -> RawParams {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
        raw.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    edit(&mut pairs);
    let body = encode_every_byte(&pairs);
    RawParams::parse(&body).expect("re-encoded parameters parse")
}

pub fn value_of<'a>(pairs: &'a mut [(Vec<u8>, Vec<u8>)], key: &str) -> &'a mut Vec<u8> {
    &mut pairs
        .iter_mut()
        .find(|(k, _)| k == key.as_bytes())
        .unwrap_or_else(|| panic!("no parameter {key}"))
        .1
}

/// Replaces the value of `key` in a form body, leaving every other byte as it was.
pub fn with_raw_value(body: &[u8], key: &str, new_value: &str) -> Vec<u8> {
    let body = std::str::from_utf8(body).expect("bodies are ASCII");
    let prefix = format!("{key}=");
    let segments: Vec<String> = body
        .split('&')
        .map(|segment| match segment.strip_prefix(&prefix) {
            Some(_) => format!("{prefix}{new_value}"),
            None => segment.to_owned(),
        })
        .collect();
    assert_ne!(segments.join("&"), body, "{key} not found in the body");
    segments.join("&").into_bytes()
}

pub fn raw_value<'a>(body: &'a [u8], key: &str) -> &'a str {
    let body = std::str::from_utf8(body).expect("bodies are ASCII");
    body.split('&')
        .find_map(|segment| segment.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in the body"))
}
