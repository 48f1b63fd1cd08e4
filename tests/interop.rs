//! Interoperability of the signing module with Alipay's RSA2, proved against material made
//! independently of our code: the vectors in `tests/vectors/` (built by `make.sh` with the openssl
//! CLI and python3's standard library), and openssl and python3 run at test time.
//!
//! The openssl and python3 binaries are required. A missing one fails the test with a message; it
//! is never a reason to skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use alipay_notify::alipay::callback::{verify, CallbackError};
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_notify::alipay::pagepay::PagePay;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED};
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------------
// Vectors
// ---------------------------------------------------------------------------------------------

fn vector_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(file)
}

fn vector_bytes(file: &str) -> Vec<u8> {
    let path = vector_path(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with tests/vectors/make.sh)",
            path.display()
        )
    })
}

fn vector_text(file: &str) -> String {
    String::from_utf8(vector_bytes(file)).expect("vector files are UTF-8 text")
}

/// One entry of `cases.json`, written by `make_notifies.py`.
struct Case {
    name: String,
    /// `notify` or `return`.
    kind: String,
    /// `valid`, or `reject_sign_type` for a genuinely signed message we must still refuse.
    expect: String,
    /// Every parameter but `sign`, as UTF-8 text.
    params: BTreeMap<String, String>,
}

impl Case {
    fn body(&self) -> Vec<u8> {
        vector_bytes(&format!("{}.body", self.name))
    }

    fn sign_string(&self) -> Vec<u8> {
        vector_bytes(&format!("{}.signstring", self.name))
    }

    fn raw(&self) -> RawParams {
        RawParams::parse(&self.body())
            .unwrap_or_else(|e| panic!("{}: the body does not parse: {e}", self.name))
    }

    fn is_valid(&self) -> bool {
        self.expect == "valid"
    }
}

fn cases() -> Vec<Case> {
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

fn valid_cases() -> impl Iterator<Item = Case> {
    cases().into_iter().filter(Case::is_valid)
}

fn case(name: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no vector named {name}"))
}

fn alipay_public_key() -> PublicKey {
    PublicKey::parse(&vector_text("alipay_public_spki.pem")).expect("alipay SPKI PEM")
}

fn app_public_key() -> PublicKey {
    PublicKey::parse(&vector_text("app_public_spki.pem")).expect("app SPKI PEM")
}

fn app_private_key() -> PrivateKey {
    PrivateKey::parse(&vector_text("app_private_pkcs8.pem")).expect("app PKCS#8 PEM")
}

/// Form-encodes every byte as `%XX`, so that parsing gives back exactly `pairs`' bytes.
fn encode_every_byte<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let escape = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("%{b:02X}")).collect() };
    pairs
        .into_iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// The parameters of `raw`, re-encoded after `edit` has had its way with them.
fn edited(raw: &RawParams, edit: impl FnOnce(&mut Vec<(Vec<u8>, Vec<u8>)>)) -> RawParams {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> =
        raw.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    edit(&mut pairs);
    let body = encode_every_byte(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    RawParams::parse(&body).expect("re-encoded parameters parse")
}

fn value_of<'a>(pairs: &'a mut [(Vec<u8>, Vec<u8>)], key: &str) -> &'a mut Vec<u8> {
    &mut pairs
        .iter_mut()
        .find(|(k, _)| k == key.as_bytes())
        .unwrap_or_else(|| panic!("no parameter {key}"))
        .1
}

/// Replaces the value of `key` in a form body, leaving every other byte as it was.
fn with_raw_value(body: &[u8], key: &str, new_value: &str) -> Vec<u8> {
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

fn raw_value<'a>(body: &'a [u8], key: &str) -> &'a str {
    let body = std::str::from_utf8(body).expect("bodies are ASCII");
    body.split('&')
        .find_map(|segment| segment.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in the body"))
}

// ---------------------------------------------------------------------------------------------
// External tools
// ---------------------------------------------------------------------------------------------

/// Runs a required external tool; its absence is a test failure, not a skip.
fn run(program: &str, args: &[&str]) -> Output {
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

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `openssl dgst -sha256 -verify`: true when openssl accepts `signature` over `content`.
fn openssl_verifies(public_key_pem: &Path, content: &[u8], signature: &[u8]) -> bool {
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
fn openssl_sign(private_key_pem: &Path, content: &[u8]) -> Vec<u8> {
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

fn decode_base64(signature: &str) -> Vec<u8> {
    STANDARD
        .decode(signature)
        .unwrap_or_else(|e| panic!("not standard base64 ({e}): {signature:?}"))
}

// ---------------------------------------------------------------------------------------------
// Notifications and returns signed by openssl, sign strings built by python
// ---------------------------------------------------------------------------------------------

#[test]
fn every_vector_verifies_with_the_alipay_public_key_and_decodes_to_the_expected_text() {
    let key = alipay_public_key();
    for case in valid_cases() {
        let verified = verify(&case.raw(), &key)
            .unwrap_or_else(|e| panic!("{}: openssl-signed vector refused: {e}", case.name));
        for (name, expected) in &case.params {
            let expected = Some(expected.as_str()).filter(|v| !v.is_empty());
            assert_eq!(verified.get(name), expected, "{}: `{name}`", case.name);
        }
        if case.kind == "return" {
            assert_eq!(verified.get("trade_status"), None, "{}", case.name);
        }
    }
}

#[test]
fn our_sign_string_equals_pythons_byte_for_byte() {
    for case in cases() {
        let raw = case.raw();
        let ours = sign_content(raw.iter(), CALLBACK_EXCLUDED);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&case.sign_string()),
            "{}",
            case.name
        );
        assert_eq!(ours, case.sign_string(), "{}: bytes differ", case.name);
    }
}

#[test]
fn empty_values_are_left_out_of_the_sign_string_and_read_as_absent() {
    let case = case("utf8_empty_values");
    assert_eq!(case.params["body"], "");
    assert!(std::str::from_utf8(&case.body())
        .unwrap()
        .contains("&body=&"));
    let sign_string = String::from_utf8(case.sign_string()).unwrap();
    assert!(!sign_string.contains("body="), "{sign_string}");
    assert!(!sign_string.contains("passback_params="), "{sign_string}");
    let verified = verify(&case.raw(), &alipay_public_key()).expect("verifies");
    assert_eq!(verified.get("body"), None);
}

#[test]
fn gbk_and_gb2312_values_are_verified_on_their_own_bytes_then_transcoded() {
    let key = alipay_public_key();
    for (name, subject) in [
        ("gbk_chinese", "中文订单 丄丅 测试"),
        ("gb2312_chinese", "测试商品"),
    ] {
        let case = case(name);
        let raw = case.raw();
        let gbk_subject: &[u8] = match name {
            // 中 D6D0, 文 CEC4; 丄 and 丅 (81 41, 81 42) have ASCII trail bytes, sent unescaped.
            "gbk_chinese" => b"\xD6\xD0\xCE\xC4\xB6\xA9\xB5\xA5 \x81A\x81B \xB2\xE2\xCA\xD4",
            _ => b"\xB2\xE2\xCA\xD4\xC9\xCC\xC6\xB7",
        };
        assert_eq!(raw.get("subject"), Some(gbk_subject), "{name}");
        let verified = verify(&raw, &key).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(verified.get("subject"), Some(subject), "{name}");
    }
}

#[test]
fn values_with_plus_ampersand_equals_and_percent_are_decoded_exactly_once() {
    let case = case("utf8_special_chars");
    let verified = verify(&case.raw(), &alipay_public_key()).expect("verifies");
    assert_eq!(verified.get("subject"), Some("a+b&c=d%20 100%25 测试😀"));
    assert_eq!(
        verified.get("body"),
        Some("  50% off & 1+1=2, %25 stays %25  "),
        "values are never trimmed or decoded twice"
    );
    assert_eq!(
        verified.get("passback_params"),
        Some("order%3DT20261128001%26from%3Dmail+x&y=z")
    );
}

#[test]
fn unknown_new_fields_are_signed_and_kept() {
    let case = case("utf8_basic");
    let sign_string = String::from_utf8(case.sign_string()).unwrap();
    assert!(sign_string.contains("&merchant_app_id=2021000000000001&"));
    let verified = verify(&case.raw(), &alipay_public_key()).expect("verifies");
    assert_eq!(verified.get("merchant_app_id"), Some("2021000000000001"));
}

#[test]
fn a_flipped_byte_in_any_signed_value_breaks_the_signature() {
    let key = alipay_public_key();
    for case in valid_cases() {
        let raw = case.raw();
        let untouched = edited(&raw, |_| {});
        assert!(verify(&untouched, &key).is_ok(), "{}: control", case.name);
        let signed_keys: Vec<String> = raw
            .iter()
            .filter(|(k, v)| !v.is_empty() && *k != b"sign" && *k != b"sign_type")
            .map(|(k, _)| String::from_utf8(k.to_vec()).unwrap())
            .collect();
        for name in &signed_keys {
            let tampered = edited(&raw, |pairs| {
                let value = value_of(pairs, name);
                *value.last_mut().unwrap() ^= 0x01;
            });
            let result = verify(&tampered, &key);
            if name == "charset" {
                // An altered charset is refused before the signature is even looked at.
                assert!(result.is_err(), "{}: `{name}` altered", case.name);
            } else {
                assert_eq!(
                    result,
                    Err(CallbackError::Signature),
                    "{}: `{name}` altered",
                    case.name
                );
            }
        }
    }
}

#[test]
fn an_added_or_removed_field_breaks_the_signature() {
    let key = alipay_public_key();
    let raw = case("utf8_basic").raw();
    let added = edited(&raw, |pairs| {
        pairs.push((b"refund_fee".to_vec(), b"12.34".to_vec()))
    });
    assert_eq!(verify(&added, &key), Err(CallbackError::Signature));
    let removed = edited(&raw, |pairs| pairs.retain(|(k, _)| k != b"buyer_id"));
    assert_eq!(verify(&removed, &key), Err(CallbackError::Signature));
    let filled = edited(&case("utf8_empty_values").raw(), |pairs| {
        *value_of(pairs, "body") = b"x".to_vec()
    });
    assert_eq!(verify(&filled, &key), Err(CallbackError::Signature));
}

#[test]
fn the_app_key_cannot_verify_what_alipay_signed() {
    let app_key = app_public_key();
    for case in valid_cases() {
        assert_eq!(
            verify(&case.raw(), &app_key),
            Err(CallbackError::Signature),
            "{}",
            case.name
        );
    }
}

#[test]
fn sign_type_rsa_is_refused_even_when_validly_signed_with_sha1() {
    let key = alipay_public_key();
    let sha1 = case("rsa1_sha1");
    assert_eq!(sha1.expect, "reject_sign_type");
    assert_eq!(verify(&sha1.raw(), &key), Err(CallbackError::SignType));

    let body = case("utf8_basic").body();
    let downgraded = RawParams::parse(&with_raw_value(&body, "sign_type", "RSA")).unwrap();
    assert_eq!(verify(&downgraded, &key), Err(CallbackError::SignType));
    let missing = edited(&RawParams::parse(&body).unwrap(), |pairs| {
        pairs.retain(|(k, _)| k != b"sign_type")
    });
    assert_eq!(verify(&missing, &key), Err(CallbackError::SignType));
}

#[test]
fn a_plus_in_the_signature_arrives_as_percent_2b_and_a_bare_plus_fails() {
    let key = alipay_public_key();
    let case = case("sign_with_plus");
    let body = case.body();
    let sent = raw_value(&body, "sign");
    assert!(sent.contains("%2B"), "the vector must carry %2B: {sent}");
    let raw = case.raw();
    let sign = std::str::from_utf8(raw.get("sign").unwrap()).unwrap();
    assert!(sign.contains('+') && !sign.contains(' '), "{sign}");
    assert!(verify(&raw, &key).is_ok());

    // What a sloppy proxy or a double decode does: `%2B` becomes `+`, which reads as a space.
    let mangled = with_raw_value(&body, "sign", &sent.replace("%2B", "+"));
    assert_eq!(
        verify(&RawParams::parse(&mangled).unwrap(), &key),
        Err(CallbackError::Signature)
    );
}

// ---------------------------------------------------------------------------------------------
// Keys in every shape Alipay's console and openssl produce
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Our signatures, checked by openssl at test time
// ---------------------------------------------------------------------------------------------

const REQUEST_SIGN_STRING: &str = "app_id=2021000000000001&biz_content={\"out_trade_no\":\"T1\",\
\"total_amount\":\"0.01\",\"subject\":\"中文 a+b 😀\",\"product_code\":\"FAST_INSTANT_TRADE_PAY\"}\
&charset=utf-8&format=JSON&method=alipay.trade.page.pay&sign_type=RSA2\
&timestamp=2026-11-29 00:30:05&version=1.0";

#[test]
fn our_signature_verifies_with_openssl_and_equals_openssls_own() {
    let content = REQUEST_SIGN_STRING.as_bytes();
    let ours = decode_base64(&app_private_key().sign(content));
    assert_eq!(ours.len(), 256, "RSA-2048 signature length");

    let app_public = vector_path("app_public_spki.pem");
    assert!(
        openssl_verifies(&app_public, content, &ours),
        "openssl rejects our signature"
    );
    // The helper must be able to say no: other content, or the wrong key.
    assert!(!openssl_verifies(&app_public, b"app_id=2", &ours));
    assert!(!openssl_verifies(
        &vector_path("alipay_public_spki.pem"),
        content,
        &ours
    ));

    // PKCS#1 v1.5 is deterministic: same key, same content, same bytes.
    let theirs = openssl_sign(&vector_path("app_private_pkcs8.pem"), content);
    assert_eq!(ours, theirs, "our signature differs from openssl's");
}

// ---------------------------------------------------------------------------------------------
// The page-pay URL, rebuilt by python the way Alipay's gateway reads it
// ---------------------------------------------------------------------------------------------

/// Parses the URL's query with urllib only, rebuilds the request sign string (leave out `sign`,
/// keep `sign_type`, drop empty values, sort by key bytes), writes it and the decoded signature
/// to the directory given, and prints what it decoded as JSON.
const PYTHON_GATEWAY: &str = r#"
import base64, datetime, json, os, sys
from urllib.parse import parse_qsl, urlsplit

url, out = sys.argv[1], sys.argv[2]
parts = urlsplit(url)
pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True,
                  encoding="utf-8", errors="strict")
params = dict(pairs)
assert len(params) == len(pairs), "a parameter appears twice"
kept = sorted(((k, v) for k, v in pairs if k != "sign" and v != ""),
              key=lambda kv: kv[0].encode("utf-8"))
content = "&".join(k + "=" + v for k, v in kept).encode("utf-8")
with open(os.path.join(out, "content.txt"), "wb") as f:
    f.write(content)
with open(os.path.join(out, "sig.bin"), "wb") as f:
    f.write(base64.b64decode(params["sign"], validate=True))

try:
    from zoneinfo import ZoneInfo
    shanghai = ZoneInfo("Asia/Shanghai")
except Exception:  # no tz database: Shanghai has been UTC+8 without DST since 1991
    shanghai = datetime.timezone(datetime.timedelta(hours=8))
now = datetime.datetime.now(shanghai)
stamp = datetime.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=shanghai)
biz = json.loads(params["biz_content"])
expire = datetime.datetime.strptime(biz["time_expire"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=shanghai)
print(json.dumps({
    "endpoint": parts.scheme + "://" + parts.netloc + parts.path,
    "params": params,
    "biz_content": biz,
    "timestamp_skew_seconds": abs((now - stamp).total_seconds()),
    "expire_after_timestamp_seconds": (expire - stamp).total_seconds(),
}))
"#;

fn python_reads_gateway_url(url: &str, out: &Path) -> Value {
    let output = run("python3", &["-c", PYTHON_GATEWAY, url, path_arg(out)]);
    assert!(
        output.status.success(),
        "python could not read the page-pay URL: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python prints JSON")
}

fn is_alipay_timestamp(text: &str) -> bool {
    let shape = "dddd-dd-dd dd:dd:dd";
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

#[test]
fn page_pay_url_verifies_as_python_and_openssl_rebuild_it() {
    let subject = "测试 a+b&c=d%20 😀";
    let body = "one  coffee, 100% arabica + milk";
    let config = AlipayConfig {
        app_id: "2021000000000001".into(),
        seller_id: None,
        gateway: "https://openapi.alipay.com/gateway.do".into(),
        notify_url: "https://shop.example.com/alipay/notify?x=1&y=2".into(),
        return_url: "https://shop.example.com/orders/T20261128001".into(),
    };
    let app_private = PrivateKey::parse(&vector_text("app_private_pkcs8.pem")).unwrap();
    let alipay = Alipay::new(config.clone(), app_private, alipay_public_key());
    let now = OffsetDateTime::now_utc();
    let url = alipay.page_pay_url(
        &PagePay {
            out_trade_no: "T20261128001",
            total_amount: Amount::parse("12.34").expect("an amount"),
            subject,
            body: Some(body),
            time_expire: now + Duration::minutes(30),
        },
        now,
    );

    // On the wire the signature's `+` must be %2B: Alipay reads a bare `+` as a space.
    let (_, query) = url.split_once('?').expect("a query");
    assert!(!raw_value(query.as_bytes(), "sign").contains('+'), "{url}");

    let dir = tempfile::tempdir().expect("temp dir");
    let decoded = python_reads_gateway_url(&url, dir.path());
    let content = std::fs::read(dir.path().join("content.txt")).unwrap();
    let signature = std::fs::read(dir.path().join("sig.bin")).unwrap();
    assert!(
        openssl_verifies(&vector_path("app_public_spki.pem"), &content, &signature),
        "openssl rejects the page-pay signature over python's sign string:\n{}",
        String::from_utf8_lossy(&content)
    );
    let content = String::from_utf8(content).unwrap();
    assert!(content.contains("&sign_type=RSA2&"), "{content}");
    assert!(!content.contains("&sign="), "{content}");

    let params = &decoded["params"];
    assert_eq!(decoded["endpoint"], "https://openapi.alipay.com/gateway.do");
    assert_eq!(params["app_id"], "2021000000000001");
    assert_eq!(params["method"], "alipay.trade.page.pay");
    assert_eq!(params["charset"], "utf-8");
    assert_eq!(params["sign_type"], "RSA2");
    assert_eq!(params["format"], "JSON");
    assert_eq!(params["version"], "1.0");
    assert_eq!(params["notify_url"], config.notify_url.as_str());
    assert_eq!(params["return_url"], config.return_url.as_str());
    let sign = params["sign"].as_str().expect("a sign");
    assert!(!sign.contains(' ') && sign.len() == 344, "{sign:?}");

    let biz = &decoded["biz_content"];
    assert_eq!(biz["subject"], subject);
    assert_eq!(biz["body"], body);
    assert_eq!(biz["out_trade_no"], "T20261128001");
    assert_eq!(biz["total_amount"], "12.34");
    assert_eq!(biz["product_code"], "FAST_INSTANT_TRADE_PAY");

    let timestamp = params["timestamp"].as_str().expect("a timestamp");
    assert!(is_alipay_timestamp(timestamp), "{timestamp:?}");
    let skew = decoded["timestamp_skew_seconds"].as_f64().unwrap();
    assert!(
        skew < 60.0,
        "timestamp {timestamp} is {skew}s away from Shanghai time"
    );
    let time_expire = biz["time_expire"].as_str().expect("a time_expire");
    assert!(is_alipay_timestamp(time_expire), "{time_expire:?}");
    assert_eq!(decoded["expire_after_timestamp_seconds"], 1800.0);
}

// ---------------------------------------------------------------------------------------------
// Gateway responses signed by openssl over their raw text
// ---------------------------------------------------------------------------------------------

/// A query response node as Alipay might format it: spacing, an escaped slash and a `\u` escape
/// that any re-serialisation would change, and Chinese text.
const QUERY_NODE: &str = r#"{"code":"10000", "msg":"Success","buyer_logon_id":"abc***@example.com","trade_status":"TRADE_SUCCESS","out_trade_no":"T1","trade_no":"2026112822001","total_amount":"88.00","subject":"乌龙茶 a\/b \u4e2d","send_pay_date":"2026-11-28 23:10:04"}"#;

fn openssl_signed_response(node: &str) -> String {
    let signature = openssl_sign(&vector_path("alipay_private_pkcs8.pem"), node.as_bytes());
    let sign = STANDARD.encode(signature);
    format!(r#"{{"alipay_trade_query_response":{node},"sign":"{sign}"}}"#)
}

#[test]
fn a_response_signed_by_openssl_over_its_raw_text_is_read() {
    use alipay_notify::alipay::gateway::TradeQuery;
    use alipay_notify::alipay::response::{read, ResponseError};

    let body = openssl_signed_response(QUERY_NODE);
    let key = alipay_public_key();

    let query = read::<TradeQuery>(&body, "alipay.trade.query", &key).expect("verifies");
    assert_eq!(query.value.trade_status, "TRADE_SUCCESS");
    assert_eq!(query.value.total_amount, "88.00");
    assert_eq!(
        query.raw, QUERY_NODE,
        "the audit log keeps the text exactly as signed"
    );

    let tampered = body.replace("88.00", "0.01");
    let error = read::<TradeQuery>(&tampered, "alipay.trade.query", &key).unwrap_err();
    assert_eq!(error, ResponseError::Signature);
    let wrong_key = read::<TradeQuery>(&body, "alipay.trade.query", &app_public_key()).unwrap_err();
    assert_eq!(wrong_key, ResponseError::Signature);
    let other_method = read::<TradeQuery>(&body, "alipay.trade.close", &key).unwrap_err();
    assert!(
        matches!(other_method, ResponseError::Malformed(_)),
        "{other_method:?}"
    );
}
