//! Our request signatures, checked by openssl at test time, and the page-pay URL rebuilt by
//! python the way Alipay's gateway reads it.

use std::path::Path;

use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::pay::PayOrder;
use alipay_notify::alipay::{Alipay, AlipayConfig};
use alipay_notify::money::Amount;
use alipay_test_support::tools::{openssl_sign, openssl_verifies, path_arg, run};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::vectors::*;

fn decode_base64(signature: &str) -> Vec<u8> {
    STANDARD
        .decode(signature)
        .unwrap_or_else(|e| panic!("not standard base64 ({e}): {signature:?}"))
}

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
        openssl_verifies("sha256", &app_public, content, &ours),
        "openssl rejects our signature"
    );
    // The helper must be able to say no: other content, or the wrong key.
    assert!(!openssl_verifies("sha256", &app_public, b"app_id=2", &ours));
    assert!(!openssl_verifies(
        "sha256",
        &vector_path("alipay_public_spki.pem"),
        content,
        &ours
    ));

    // PKCS#1 v1.5 is deterministic: same key, same content, same bytes.
    let theirs = openssl_sign("sha256", &vector_path("app_private_pkcs8.pem"), content);
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

pub fn python_reads_gateway_url(url: &str, out: &Path) -> Value {
    let output = run("python3", &["-c", PYTHON_GATEWAY, url, path_arg(out)]);
    assert!(
        output.status.success(),
        "python could not read the page-pay URL: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("python prints JSON")
}

pub fn is_alipay_timestamp(text: &str) -> bool {
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
        &PayOrder {
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
    crate::sdk::assert_openssl_verifies_python_sign_string(dir.path());

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
