//! The requests a real SDK made, fzlee's `python-alipay-sdk`, run by
//! `tests/vectors/make_products.py` into `products.json` (what the SDK does differently from us is
//! in that script's header), and the checks the wap, app and precreate tests share: the
//! comparison with the SDK's parameters, python's rebuild of a request's sign string verified by
//! openssl, and what every product's request must say.

use std::collections::BTreeMap;
use std::path::Path;

use alipay_notify::alipay::pay::PayOrder;
use alipay_notify::alipay::sign::{sign_content, REQUEST_EXCLUDED};
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use alipay_test_support::tools::{openssl_verifies, path_arg, run};
use serde::Deserialize;
use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::page_pay::is_alipay_timestamp;
use crate::vectors::*;

/// `products.json`, written by `make_products.py`.
#[derive(Deserialize)]
pub struct SdkVectors {
    pub sdk: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, String>,
    /// What the SDK's own product methods make.
    pub named_api: Vec<SdkRequest>,
    /// The SDK's generic `client_api` signing the parameter set our builders send.
    pub our_layout: Vec<SdkRequest>,
}

/// One request the SDK signed.
#[derive(Deserialize)]
pub struct SdkRequest {
    /// Ours: `wap`, `app` or `qr`.
    pub product: String,
    pub method: String,
    pub biz_content: String,
    /// Every parameter the SDK signed and sent, `sign` excepted.
    pub params: BTreeMap<String, String>,
    pub sign_string: String,
    pub sign: String,
    /// The order string (wap: the query after the gateway's `?`; app: what the app is given).
    #[serde(default)]
    pub output: Option<String>,
    /// Precreate: the URL the SDK sent (a GET with every parameter) and the signed response the
    /// script's fake gateway answered it with.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub sdk_default_product_code: Option<String>,
}

impl SdkVectors {
    pub fn load() -> Self {
        let vectors: Self =
            serde_json::from_str(&vector_text("products.json")).expect("products.json parses");
        assert_eq!(vectors.sdk["name"], "python-alipay-sdk");
        assert_eq!(vectors.named_api.len(), 3, "wap, app and precreate");
        assert_eq!(vectors.our_layout.len(), 3, "wap, app and precreate");
        vectors
    }

    pub fn named(&self, product: &str) -> &SdkRequest {
        find(&self.named_api, product)
    }

    pub fn layout(&self, product: &str) -> &SdkRequest {
        find(&self.our_layout, product)
    }

    pub fn input(&self, name: &str) -> &str {
        &self.inputs[name]
    }

    /// Our merchant as the SDK was configured, with `gateway` as the gateway.
    pub fn alipay(&self, gateway: &str) -> Alipay {
        let config = AlipayConfig {
            app_id: self.input("app_id").into(),
            seller_id: None,
            gateway: gateway.into(),
            notify_url: self.input("notify_url").into(),
            return_url: self.input("return_url").into(),
        };
        Alipay::new(config, app_private_key(), alipay_public_key())
    }

    /// The order the SDK was asked for, expiring 30 minutes after the SDK's frozen clock.
    pub fn order(&self) -> PayOrder<'_> {
        PayOrder {
            out_trade_no: self.input("out_trade_no"),
            total_amount: Amount::parse(self.input("total_amount")).expect("an amount"),
            subject: self.input("subject"),
            body: Some(self.input("body")),
            time_expire: SDK_NOW + Duration::minutes(30),
        }
    }
}

fn find<'a>(requests: &'a [SdkRequest], product: &str) -> &'a SdkRequest {
    requests
        .iter()
        .find(|r| r.product == product)
        .unwrap_or_else(|| panic!("products.json has no {product} request"))
}

/// The SDK's frozen clock, `2026-11-29 00:30:05` in Beijing.
pub const SDK_NOW: OffsetDateTime = datetime!(2026-11-28 16:30:05 UTC);

impl SdkRequest {
    /// Our sign string of the SDK's parameters (`sign` passed in too, for our code to leave out).
    pub fn sign_content(&self) -> Vec<u8> {
        let sign = ("sign", self.sign.as_str());
        let params = self.params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        sign_content(
            params
                .chain([sign])
                .map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            REQUEST_EXCLUDED,
        )
    }

    fn biz(&self) -> Value {
        serde_json::from_str(&self.params["biz_content"]).expect("biz_content is JSON")
    }
}

/// Our request's parameters (`sign` included), decoded the way the SDK's consumers and Alipay's
/// gateway read a form: `+` is a space, `%XX` a byte.
pub fn form_decode(parts: &[&str]) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for part in parts {
        for (key, value) in url::form_urlencoded::parse(part.as_bytes()) {
            let repeated = params.insert(key.clone().into_owned(), value.into_owned());
            assert!(repeated.is_none(), "{key} appears twice");
        }
    }
    params
}

/// (a) of the SDK comparison (see `products.rs`): our request names the same parameters with the same values as the
/// SDK's own product method (its biz_content compared as parsed JSON, its text being the SDK's
/// key order and `\u` escapes), except for `format=JSON`, which the SDK never sends.
/// `live` lists what a request signed at another time differs in.
pub fn assert_same_parameters_as_sdks(
    ours: &BTreeMap<String, String>,
    sdk: &SdkRequest,
    live: &[&str],
) {
    let skip = |k: &str| ["sign", "format", "biz_content"].contains(&k) || live.contains(&k);
    let keys = |params: &BTreeMap<String, String>| -> Vec<String> {
        params.keys().filter(|k| !skip(k)).cloned().collect()
    };
    assert_eq!(
        keys(ours),
        keys(&sdk.params),
        "{}: parameter names",
        sdk.product
    );
    for key in keys(ours) {
        assert_eq!(ours[&key], sdk.params[&key], "{}: {key}", sdk.product);
    }
    assert_eq!(ours["format"], "JSON");
    assert!(
        !sdk.params.contains_key("format"),
        "the SDK now sends format"
    );
    let biz: Value = serde_json::from_str(&ours["biz_content"]).expect("our biz_content is JSON");
    assert_eq!(biz, sdk.biz(), "{}: biz_content", sdk.product);
}

/// Rebuilds the request sign string from form-encoded parts with python's urllib only (leave out
/// `sign`, keep `sign_type`, drop empty values, sort by key bytes), writes it and the decoded
/// signature to the directory given, and prints what it decoded, with the timestamp's distance
/// from Shanghai's clock.
const PYTHON_SIGN_STRING: &str = r#"
import base64, datetime, json, os, sys
from urllib.parse import parse_qsl

out, parts = sys.argv[1], sys.argv[2:]
pairs = []
for part in parts:
    pairs += parse_qsl(part, keep_blank_values=True, strict_parsing=True,
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

shanghai = datetime.timezone(datetime.timedelta(hours=8))  # no DST since 1991
stamp = datetime.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=shanghai)
print(json.dumps({
    "params": params,
    "biz_content": json.loads(params["biz_content"]),
    "timestamp_skew_seconds": abs((datetime.datetime.now(shanghai) - stamp).total_seconds()),
}))
"#;

/// Python's reading of a request, after openssl has verified its signature over python's sign
/// string with the app public key: a bug shared by our sign string and our verifier cannot pass.
pub fn verified_by_python_and_openssl(parts: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = vec!["-c", PYTHON_SIGN_STRING, path_arg(dir.path())];
    args.extend_from_slice(parts);
    let output = run("python3", &args);
    assert!(
        output.status.success(),
        "python could not read the request: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_openssl_verifies_python_sign_string(dir.path());
    serde_json::from_slice(&output.stdout).expect("python prints JSON")
}

/// openssl verifies, with the app's public key, the signature python took from a request over
/// the sign string python rebuilt (`content.txt` and `sig.bin` in `dir`), which keeps
/// `sign_type` and leaves out `sign`.
pub fn assert_openssl_verifies_python_sign_string(dir: &Path) {
    let read = |file: &str| std::fs::read(dir.join(file)).unwrap();
    let (content, signature) = (read("content.txt"), read("sig.bin"));
    assert!(
        openssl_verifies(
            "sha256",
            &vector_path("app_public_spki.pem"),
            &content,
            &signature
        ),
        "openssl rejects the signature over python's sign string:\n{}",
        String::from_utf8_lossy(&content)
    );
    let content = String::from_utf8(content).unwrap();
    assert!(content.contains("&sign_type=RSA2&"), "{content}");
    assert!(!content.contains("&sign="), "{content}");
}

/// What every product's request must say, read from python's decoding of it. `raw_sign` is the
/// `sign` value as it travels.
pub fn assert_product_request(
    decoded: &Value,
    vectors: &SdkVectors,
    product: &str,
    raw_sign: &str,
) {
    let (method, product_code) = match product {
        "wap" => ("alipay.trade.wap.pay", "QUICK_WAP_WAY"),
        "app" => ("alipay.trade.app.pay", "QUICK_MSECURITY_PAY"),
        "qr" => ("alipay.trade.precreate", "FACE_TO_FACE_PAYMENT"),
        other => panic!("no product {other}"),
    };
    let (params, biz) = (&decoded["params"], &decoded["biz_content"]);
    assert_eq!(params["method"], method);
    assert_eq!(biz["product_code"], product_code);
    assert_eq!(params["app_id"], vectors.input("app_id"));
    assert_eq!(params["charset"], "utf-8");
    assert_eq!(params["sign_type"], "RSA2");
    assert_eq!(params["version"], "1.0");
    assert_eq!(params["notify_url"], vectors.input("notify_url"));
    let (return_url, quit_url) = match product {
        "wap" => (
            json!(vectors.input("return_url")),
            json!(vectors.input("quit_url")),
        ),
        _ => (Value::Null, Value::Null),
    };
    assert_eq!(
        params["return_url"], return_url,
        "return_url only where a browser returns"
    );
    assert_eq!(
        biz["quit_url"], quit_url,
        "quit_url only for the wap cashier"
    );
    let timestamp = params["timestamp"].as_str().expect("a timestamp");
    assert!(is_alipay_timestamp(timestamp), "{timestamp:?}");
    assert_eq!(biz["subject"], vectors.input("subject"));
    assert_eq!(biz["total_amount"], vectors.input("total_amount"));

    // Alipay reads a bare `+` as a space: each `+` of the signature must travel as %2B.
    let sign = params["sign"].as_str().expect("a sign");
    assert_eq!(sign.len(), 344, "{sign:?}");
    assert!(!raw_sign.contains('+'), "{raw_sign}");
    assert_eq!(sign.matches('+').count(), raw_sign.matches("%2B").count());
}
