//! Shared pieces of the fuzz targets: the fixed test key pair in `keys/`, the only messages that
//! key has ever signed (so a target can tell a genuine `Ok` from a forged one), and oracles written
//! independently of the crate's own code.

use std::collections::HashSet;
use std::sync::OnceLock;

use alipay_notify::alipay::keys::PublicKey;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED, REQUEST_EXCLUDED};

/// The public half of `keys/alipay_private_pkcs8.pem`, playing Alipay's key.
pub fn public_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PublicKey::parse(include_str!("../keys/alipay_public_spki.b64")).expect("fuzz public key")
    })
}

/// Response nodes signed by the fuzz key in the `gateway_response` seeds: the only texts for which
/// a valid signature exists, so `read` may return `Ok` for these and nothing else.
pub const SIGNED_RESPONSE_NODES: &[&str] = &[
    r#"{"code":"10000","msg":"Success","buyer_logon_id":"158******34","buyer_pay_amount":"12.34","buyer_user_id":"2088102177846880","invoice_amount":"12.34","out_trade_no":"T20261128001","point_amount":"0.00","receipt_amount":"12.34","send_pay_date":"2026-11-28 15:30:09","total_amount":"12.34","trade_no":"2026112822001446880501234567","trade_status":"TRADE_SUCCESS"}"#,
    r#"{ "code":"10000", "msg":"Success", "out_trade_no":"T2026\/11\/28", "subject":"\u4e2d\u6587\u8ba2\u5355", "total_amount":"0.01", "trade_status":"WAIT_BUYER_PAY" }"#,
    r#"{"code":"10000","msg":"Success","buyer_logon_id":"158******34","fund_change":"Y","gmt_refund_pay":"2026-11-28 16:00:00","out_trade_no":"T20261128001","refund_fee":"12.34","trade_no":"2026112822001446880501234567"}"#,
    r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
];

/// A notification or return_url parameter set as Alipay would sign it, in its own charset.
pub struct SignedNotify {
    pub name: &'static str,
    pub charset: &'static encoding_rs::Encoding,
    pub params: &'static [(&'static str, &'static str)],
}

const TRADE_SUCCESS: &[(&str, &str)] = &[
    ("gmt_create", "2026-11-28 15:30:01"),
    ("charset", "utf-8"),
    ("seller_email", "merchant@example.com"),
    ("subject", "Order T20261128001"),
    ("body", "One cup of coffee"),
    ("buyer_id", "2088102177846880"),
    ("invoice_amount", "12.34"),
    ("notify_id", "2026112800222153002099990000000000"),
    (
        "fund_bill_list",
        r#"[{"amount":"12.34","fundChannel":"ALIPAYACCOUNT"}]"#,
    ),
    ("notify_type", "trade_status_sync"),
    ("trade_status", "TRADE_SUCCESS"),
    ("receipt_amount", "12.34"),
    ("buyer_pay_amount", "12.34"),
    ("app_id", "2021000000000001"),
    ("sign_type", "RSA2"),
    ("seller_id", "2088101117955611"),
    ("gmt_payment", "2026-11-28 15:30:09"),
    ("notify_time", "2026-11-28 15:30:10"),
    ("merchant_app_id", "2021000000000001"),
    ("version", "1.0"),
    ("out_trade_no", "T20261128001"),
    ("total_amount", "12.34"),
    ("trade_no", "2026112822001446880501234567"),
    ("auth_app_id", "2021000000000001"),
    ("buyer_logon_id", "158****1234"),
    ("point_amount", "0.00"),
];

const SPECIAL_CHARS: &[(&str, &str)] = &[
    ("charset", "utf-8"),
    ("sign_type", "RSA2"),
    ("notify_type", "trade_status_sync"),
    ("trade_status", "TRADE_FINISHED"),
    ("out_trade_no", "T20261128002"),
    ("total_amount", "100000000.00"),
    ("subject", " a+b&c=d %20 100% 😀 "),
    ("passback_params", "order%3D2%26from%3Dweb"),
    ("body", ""),
    (
        "buyer_open_id",
        "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5",
    ),
    ("app_id", "2021000000000001"),
];

const GBK_NOTIFY: &[(&str, &str)] = &[
    ("charset", "GBK"),
    ("sign_type", "RSA2"),
    ("notify_type", "trade_status_sync"),
    ("trade_status", "TRADE_SUCCESS"),
    ("out_trade_no", "T20261128003"),
    ("total_amount", "88.80"),
    ("subject", "中文订单 测试"),
    ("body", "支付宝 GBK 付款"),
    ("seller_email", "商户@example.com"),
    ("app_id", "2021000000000001"),
];

const GBK_RETURN: &[(&str, &str)] = &[
    ("charset", "GBK"),
    ("out_trade_no", "T20261128004"),
    ("method", "alipay.trade.page.pay.return"),
    ("total_amount", "0.01"),
    ("trade_no", "2026112822001446880501230000"),
    ("auth_app_id", "2021000000000001"),
    ("version", "1.0"),
    ("app_id", "2021000000000001"),
    ("sign_type", "RSA2"),
    ("seller_id", "2088101117955611"),
    ("timestamp", "2026-11-28 15:31:00"),
];

/// Every notification the fuzz key has signed, for the `sign_verify` seeds.
pub const SIGNED_NOTIFIES: &[SignedNotify] = &[
    SignedNotify {
        name: "utf8_trade_success",
        charset: encoding_rs::UTF_8,
        params: TRADE_SUCCESS,
    },
    SignedNotify {
        name: "utf8_special_chars",
        charset: encoding_rs::UTF_8,
        params: SPECIAL_CHARS,
    },
    SignedNotify {
        name: "gbk_notify",
        charset: encoding_rs::GBK,
        params: GBK_NOTIFY,
    },
    SignedNotify {
        name: "gbk_return",
        charset: encoding_rs::GBK,
        params: GBK_RETURN,
    },
];

impl SignedNotify {
    /// The parameters as the bytes Alipay signs and sends: encoded in the message's charset.
    pub fn raw_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let encode = |text: &str| {
            let (bytes, _, unmappable) = self.charset.encode(text);
            assert!(!unmappable, "{text:?} is not {}", self.charset.name());
            bytes.into_owned()
        };
        self.params
            .iter()
            .map(|(k, v)| (encode(k), encode(v)))
            .collect()
    }
}

/// The sign strings of [`SIGNED_NOTIFIES`]: a callback verifying over anything else is forged.
pub fn signed_notify_contents() -> &'static HashSet<Vec<u8>> {
    static CONTENTS: OnceLock<HashSet<Vec<u8>>> = OnceLock::new();
    CONTENTS.get_or_init(|| {
        SIGNED_NOTIFIES
            .iter()
            .map(|n| expected_sign_content(&n.raw_pairs(), CALLBACK_EXCLUDED))
            .collect()
    })
}

/// The sign string per docs/protocol.md, written independently of `sign::sign_content`:
/// drop excluded keys and empty values, stable-sort by key bytes, join `k=v` with `&`.
pub fn expected_sign_content(pairs: &[(Vec<u8>, Vec<u8>)], excluded: &[&str]) -> Vec<u8> {
    let mut kept: Vec<&(Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .filter(|(k, v)| !v.is_empty() && !excluded.iter().any(|x| x.as_bytes() == k.as_slice()))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    let joined: Vec<Vec<u8>> = kept
        .iter()
        .map(|(k, v)| [&k[..], b"=", &v[..]].concat())
        .collect();
    joined.join(&b'&')
}

/// Checks `sign_content` against [`expected_sign_content`] for both exclusion lists. With a
/// repeated key the order of its values is unspecified, so only the length is compared then.
pub fn check_sign_content(pairs: &[(Vec<u8>, Vec<u8>)]) {
    for excluded in [REQUEST_EXCLUDED, CALLBACK_EXCLUDED] {
        let actual = sign_content(pairs.iter().map(|(k, v)| (&k[..], &v[..])), excluded);
        let expected = expected_sign_content(pairs, excluded);
        let mut keys: Vec<&[u8]> = pairs.iter().map(|(k, _)| &k[..]).collect();
        keys.sort();
        keys.dedup();
        if keys.len() == pairs.len() {
            assert_eq!(actual, expected, "sign_content({pairs:?}, {excluded:?})");
        } else {
            assert_eq!(
                actual.len(),
                expected.len(),
                "sign_content({pairs:?}, {excluded:?})"
            );
        }
        check_sign_content_shape(pairs, excluded, &actual);
    }
}

/// When no key holds `&` or `=` and no value `&`, the sign string splits back into its pairs: they
/// must be sorted, non-empty and free of excluded keys.
fn check_sign_content_shape(pairs: &[(Vec<u8>, Vec<u8>)], excluded: &[&str], content: &[u8]) {
    let separable = pairs
        .iter()
        .all(|(k, v)| !k.contains(&b'&') && !k.contains(&b'=') && !v.contains(&b'&'));
    if !separable || content.is_empty() {
        return;
    }
    let split: Vec<(&[u8], &[u8])> = content
        .split(|b| *b == b'&')
        .map(|pair| {
            let at = pair.iter().position(|b| *b == b'=').expect("k=v");
            (&pair[..at], &pair[at + 1..])
        })
        .collect();
    assert!(
        split.windows(2).all(|w| w[0].0 <= w[1].0),
        "not sorted: {split:?}"
    );
    for (key, value) in &split {
        assert!(!value.is_empty(), "empty value kept for {key:?}");
        assert!(
            !excluded.iter().any(|x| x.as_bytes() == *key),
            "excluded {key:?} kept"
        );
    }
}

/// Form-encodes `pairs` the way a browser or Alipay's servers do (`+` for space, `%XX` otherwise).
pub fn form_encode(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let encode = |bytes: &[u8]| url::form_urlencoded::byte_serialize(bytes).collect::<String>();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// Percent-encodes every byte of every key and value: the most literal possible encoding.
pub fn percent_encode_all(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let size: usize = pairs.iter().map(|(k, v)| 3 * (k.len() + v.len()) + 2).sum();
    let mut out = Vec::with_capacity(size);
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push(b'&');
        }
        for (part, bytes) in [key, value].into_iter().enumerate() {
            if part == 1 {
                out.push(b'=');
            }
            for byte in bytes {
                out.extend_from_slice(&[
                    b'%',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 15)],
                ]);
            }
        }
    }
    out
}
