//! Properties of the protocol code over generated inputs: the fuzz targets' properties (see
//! `fuzz/`), and the full round trip a notification makes: sign, form-encode, parse, verify.
//!
//! Oracles here come from docs/protocol.md, not from the code under test. RSA cases are few (64)
//! so the file stays a few seconds long in a debug build.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use alipay_notify::alipay::callback::{self, CallbackError};
use alipay_notify::alipay::form::{RawParams, MAX_PARAMS};
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_notify::alipay::response::{self, ResponseError};
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED, REQUEST_EXCLUDED};
use alipay_notify::money::{Amount, MAX_FEN};
use alipay_test_support::form::{encode_every_byte, form_encode};
use encoding_rs::Encoding;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::FileFailurePersistence;
use serde_json::{json, Value};

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// `cases` cases per property. A failure is saved (shrunk) to a file kept in git, and every
/// saved case runs first on later runs, here and in CI, so that it can be replayed and kept.
fn config(cases: u32) -> ProptestConfig {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/proptest-regressions/properties.txt"
    );
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        ..ProptestConfig::default()
    }
}

/// One RSA-2048 pair for the whole file, playing Alipay's key.
fn alipay_key() -> &'static (PrivateKey, PublicKey) {
    static KEY: OnceLock<(PrivateKey, PublicKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = PrivateKey::generate();
        let public = PublicKey::parse(&private.public_key_base64()).expect("own public key");
        (private, public)
    })
}

fn public_key() -> &'static PublicKey {
    &alipay_key().1
}

// ---------------------------------------------------------------------------------------------
// Oracles and encoders
// ---------------------------------------------------------------------------------------------

/// docs/protocol.md sign string: drop excluded keys, empty values; stable-sort by key bytes; join.
fn expected_sign_content(pairs: &[(Vec<u8>, Vec<u8>)], excluded: &[&str]) -> Vec<u8> {
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

fn pairs_of(raw: &RawParams) -> Pairs {
    raw.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
}

fn text_pairs(map: &BTreeMap<String, String>) -> Pairs {
    map.iter()
        .map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes()))
        .collect()
}

/// The amount `text` denotes in fen by `[0-9]{1,12}(\.[0-9]{1,2})?`, computed without overflow.
fn expected_fen(text: &str) -> Option<u128> {
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let (yuan, fraction) = text.split_once('.').unwrap_or((text, "00"));
    if !digits(yuan, 12) || !digits(fraction, 2) {
        return None;
    }
    Some(yuan.parse::<u128>().ok()? * 100 + format!("{fraction:0<2}").parse::<u128>().ok()?)
}

fn has_two_decimals(text: &str) -> bool {
    text.split_once('.').is_some_and(|(yuan, cents)| {
        !yuan.is_empty()
            && yuan.bytes().all(|b| b.is_ascii_digit())
            && cents.len() == 2
            && cents.bytes().all(|b| b.is_ascii_digit())
    })
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Bytes that look like a form body often enough to get past the parser.
fn form_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => select(b"&=%+abcsign_type=charsetGBKutf-80123456789ABCDEFdf".to_vec()),
        1 => any::<u8>(),
    ];
    prop_oneof![
        proptest::collection::vec(byte, 0..96),
        proptest::collection::vec(any::<u8>(), 0..96),
    ]
}

/// Form bodies built from pairs, in a declared charset, with raw bytes in keys and values.
fn form_bodies() -> impl Strategy<Value = Vec<u8>> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..12);
    let pairs = proptest::collection::vec((bytes.clone(), bytes), 0..8);
    let charset = select(vec![
        "", "utf-8", "UTF-8", "GBK", "gb2312", "GB18030", "latin1",
    ]);
    (pairs, charset, any::<bool>()).prop_map(|(mut pairs, charset, plus)| {
        if !charset.is_empty() {
            pairs.insert(0, (b"charset".to_vec(), charset.as_bytes().to_vec()));
        }
        if plus {
            form_encode(&pairs)
        } else {
            encode_every_byte(&pairs)
        }
    })
}

/// Values with everything the form encoding treats specially, and any Unicode besides.
fn notify_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ +&=%a-zA-Z0-9中文😀\\\\\"]{0,24}",
        any::<String>(),
        Just(String::new()),
    ]
}

/// Notify parameters other than the ones the test sets itself.
fn notify_params(
    value: impl Strategy<Value = String>,
) -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = "[a-z_]{1,20}".prop_filter("set by the test", |k| {
        !["sign", "sign_type", "charset"].contains(&k.as_str())
    });
    proptest::collection::btree_map(key, value, 1..12)
}

const GBK_TEXTS: &[&str] = &[
    "中文订单",
    "支付宝",
    "测试 商品",
    "￥12.34 元",
    "北京市朝阳区",
    "【促销】满100减10",
    "订单号：T20261128001",
    "付款成功，谢谢！",
    "退款 & 重试 = 100%",
    "",
];

// ---------------------------------------------------------------------------------------------
// Form decoding (fuzz target `form_decode`)
// ---------------------------------------------------------------------------------------------

/// Whatever `RawParams` parses survives re-encoding: its raw bytes exactly, and its decoded text
/// through the declared charset.
fn check_form_round_trip(data: &[u8]) -> Result<(), TestCaseError> {
    let Ok(raw) = RawParams::parse(data) else {
        return Ok(());
    };
    let pairs = pairs_of(&raw);
    prop_assert!(pairs.len() <= MAX_PARAMS);
    for encoded in [encode_every_byte(&pairs), form_encode(&pairs)] {
        let again = RawParams::parse(&encoded).expect("re-encoded raw pairs parse");
        prop_assert_eq!(pairs_of(&again), pairs.clone());
    }
    let (Ok(encoding), Ok(decoded)) = (raw.encoding(), raw.decode()) else {
        return Ok(());
    };
    let mut reencoded = Pairs::new();
    for (key, value) in &decoded {
        let (key, _, bad_key) = encoding.encode(key);
        let (value, _, bad_value) = encoding.encode(value);
        if bad_key || bad_value {
            // GB18030 four-byte sequences decode under the GBK label but do not encode back.
            return Ok(());
        }
        reencoded.push((key.into_owned(), value.into_owned()));
    }
    let again = RawParams::parse(&encode_every_byte(&reencoded)).expect("re-encoded text parses");
    prop_assert_eq!(again.encoding(), Ok(encoding));
    prop_assert_eq!(again.decode(), Ok(decoded));
    if encoding == encoding_rs::UTF_8 {
        prop_assert_eq!(reencoded, pairs);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn form_parsing_never_panics_and_round_trips(data in form_like_bytes()) {
        check_form_round_trip(&data)?;
    }

    #[test]
    fn form_bodies_in_any_charset_round_trip(body in form_bodies()) {
        check_form_round_trip(&body)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Sign strings (fuzz target `sign_verify`)
// ---------------------------------------------------------------------------------------------

fn sign_pairs() -> impl Strategy<Value = Pairs> {
    let key = prop_oneof![
        select(vec![
            "sign",
            "sign_type",
            "charset",
            "a",
            "B",
            "a_b",
            "ab",
            ""
        ])
        .prop_map(|k| k.as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 0..6),
    ];
    let value = prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..6)
    ];
    proptest::collection::vec((key, value), 0..12)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn sign_content_is_sorted_without_empty_values_or_excluded_keys(pairs in sign_pairs()) {
        for excluded in [REQUEST_EXCLUDED, CALLBACK_EXCLUDED] {
            let actual = sign_content(pairs.iter().map(|(k, v)| (&k[..], &v[..])), excluded);
            let expected = expected_sign_content(&pairs, excluded);
            let mut keys: Vec<&Vec<u8>> = pairs.iter().map(|(k, _)| k).collect();
            keys.sort();
            keys.dedup();
            if keys.len() == pairs.len() {
                prop_assert_eq!(actual, expected);
            } else {
                // A repeated key's values may come in either order; the length may not change.
                prop_assert_eq!(actual.len(), expected.len());
            }
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn arbitrary_signatures_never_verify(
        params in notify_params(notify_value()),
        sign in prop_oneof![any::<String>(), "[A-Za-z0-9+/]{340,344}={0,2}"],
    ) {
        let mut pairs = text_pairs(&params);
        pairs.push((b"sign_type".to_vec(), b"RSA2".to_vec()));
        pairs.push((b"sign".to_vec(), sign.clone().into_bytes()));
        let raw = RawParams::parse(&encode_every_byte(&pairs)).expect("encoded pairs parse");
        let verdict = callback::verify(&raw, public_key());
        prop_assert!(verdict.is_err(), "forged signature {:?} verified", sign);
    }
}

// ---------------------------------------------------------------------------------------------
// Sign, encode, parse, verify: the notification round trip
// ---------------------------------------------------------------------------------------------

/// Signs `params` (UTF-8 text) as Alipay would in `charset`, and returns the raw pairs sent,
/// `sign` last; the pairs' order is otherwise theirs.
fn signed_pairs(params: &BTreeMap<String, String>, charset: &'static Encoding) -> Pairs {
    let encode = |text: &str| {
        let (bytes, _, unmappable) = charset.encode(text);
        assert!(!unmappable, "{text:?} is not {}", charset.name());
        bytes.into_owned()
    };
    let mut pairs: Pairs = params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    pairs.push((b"charset".to_vec(), charset.name().as_bytes().to_vec()));
    pairs.push((b"sign_type".to_vec(), b"RSA2".to_vec()));
    let sign = alipay_key()
        .0
        .sign(&expected_sign_content(&pairs, CALLBACK_EXCLUDED));
    pairs.push((b"sign".to_vec(), sign.into_bytes()));
    pairs
}

/// Verifies the encoded `pairs` and checks every parameter comes back as `params` has it.
fn check_verifies(
    pairs: &[(Vec<u8>, Vec<u8>)],
    params: &BTreeMap<String, String>,
) -> Result<(), TestCaseError> {
    let raw = RawParams::parse(&encode_every_byte(pairs)).expect("encoded pairs parse");
    let verified = callback::verify(&raw, public_key());
    prop_assert!(verified.is_ok(), "{:?}", verified);
    let verified = verified.unwrap();
    for (key, value) in params {
        let expected = (!value.is_empty()).then_some(value.as_str());
        prop_assert_eq!(verified.get(key), expected, "{}", key);
    }
    Ok(())
}

/// Flips bits of one byte of one non-empty notify value: the signature must then fail.
fn check_flip_fails(
    pairs: &[(Vec<u8>, Vec<u8>)],
    which: Index,
    at: Index,
    mask: u8,
) -> Result<(), TestCaseError> {
    let set_by_test: [&[u8]; 3] = [b"sign", b"sign_type", b"charset"];
    let candidates: Vec<usize> = (0..pairs.len())
        .filter(|&i| !pairs[i].1.is_empty() && !set_by_test.contains(&&pairs[i].0[..]))
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let mut tampered = pairs.to_vec();
    let value = &mut tampered[candidates[which.index(candidates.len())]].1;
    let at = at.index(value.len());
    value[at] ^= mask;
    let raw = RawParams::parse(&encode_every_byte(&tampered)).expect("encoded pairs parse");
    let verdict = callback::verify(&raw, public_key());
    prop_assert_eq!(verdict, Err(CallbackError::Signature));
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn signed_utf8_notifies_verify_and_any_flipped_byte_fails(
        params in notify_params(notify_value()),
        order in any::<u64>(),
        which in any::<Index>(),
        at in any::<Index>(),
        mask in 1..=u8::MAX,
    ) {
        let mut pairs = signed_pairs(&params, encoding_rs::UTF_8);
        // Alipay sends fields in no particular order; rotate them.
        let len = pairs.len();
        pairs.rotate_left((order % len as u64) as usize);
        check_verifies(&pairs, &params)?;
        check_flip_fails(&pairs, which, at, mask)?;
    }

    #[test]
    fn signed_gbk_notifies_verify_over_gbk_bytes_and_any_flipped_byte_fails(
        params in notify_params(
            proptest::collection::vec(select(GBK_TEXTS), 0..3).prop_map(|parts| parts.concat())
        ),
        which in any::<Index>(),
        at in any::<Index>(),
        mask in 1..=u8::MAX,
    ) {
        let pairs = signed_pairs(&params, encoding_rs::GBK);
        let body = encode_every_byte(&pairs);
        prop_assert!(body.windows(11).any(|w| w == b"=%47%42%4B&"), "declares charset=GBK");
        check_verifies(&pairs, &params)?;
        check_flip_fails(&pairs, which, at, mask)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Amounts (fuzz target `amount_parse`)
// ---------------------------------------------------------------------------------------------

fn amount_texts() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,14}(\\.[0-9]{0,3})?",
        "0{0,3}[0-9]{0,10}\\.[0-9]{2}",
        "[-+ .,e0-9１]{0,16}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn amount_parse_agrees_with_the_grammar_and_round_trips(text in amount_texts()) {
        let parsed = Amount::parse(&text);
        let expected = expected_fen(&text).filter(|fen| (1..=MAX_FEN as u128).contains(fen));
        prop_assert_eq!(parsed.as_ref().ok().map(|a| a.fen() as u128), expected, "{:?}", parsed);
        if let Ok(amount) = parsed {
            let shown = amount.to_string();
            prop_assert!(has_two_decimals(&shown), "{}", shown);
            prop_assert_eq!(Amount::parse(&shown), Ok(amount));
        }
    }

    #[test]
    fn every_fen_in_range_prints_and_parses_back(fen in 1..=MAX_FEN) {
        let amount = Amount::from_fen(fen).expect("in range");
        let shown = amount.to_string();
        prop_assert!(has_two_decimals(&shown), "{}", shown);
        prop_assert_eq!(Amount::parse(&shown).map(Amount::fen), Ok(fen));
    }
}

// ---------------------------------------------------------------------------------------------
// Gateway responses (fuzz target `gateway_response`)
// ---------------------------------------------------------------------------------------------

const QUERY: &str = "alipay.trade.query";

fn response_node() -> impl Strategy<Value = String> {
    let code = select(vec!["10000", "20000", "40004", "10000 "]);
    (code, "[ -~中文]{0,16}", "[ \n]{0,2}").prop_map(|(code, out_trade_no, space)| {
        let node = json!({"code": code, "msg": "Success", "out_trade_no": out_trade_no, "total_amount": "12.34"});
        format!("{space}{node}{space}")
    })
}

fn envelope(node: &str, sign: Option<&str>) -> String {
    match sign {
        Some(sign) => format!(
            r#"{{"alipay_trade_query_response":{node},"sign":{}}}"#,
            json!(sign)
        ),
        None => format!(r#"{{"alipay_trade_query_response":{node}}}"#),
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_is_never_a_verified_response(
        body in prop_oneof![
            any::<String>(),
            "[{}\":,a-z_0-9 \\\\]{0,64}",
            (response_node(), proptest::option::of(any::<String>()))
                .prop_map(|(node, sign)| envelope(&node, sign.as_deref())),
        ]
    ) {
        let read = response::read::<Value>(&body, QUERY, public_key());
        prop_assert!(read.is_err(), "{:?}", read);
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn signed_responses_verify_over_their_raw_text_and_edits_fail(
        node in response_node(),
        at in any::<Index>(),
    ) {
        let sign = alipay_key().0.sign(node.trim().as_bytes());
        let read = response::read::<Value>(&envelope(node.trim(), Some(&sign)), QUERY, public_key());
        let expected: Value = serde_json::from_str(&node).expect("node is JSON");
        if expected["code"] == "10000" {
            let read = read.map(|signed| (signed.value, signed.raw));
            prop_assert_eq!(read, Ok((expected, node.trim().to_owned())));
        } else {
            let is_business = matches!(read, Err(ResponseError::Business { .. }));
            prop_assert!(is_business, "{:?}", read);
        }
        // One extra space inside the node's braces is a different text, even where JSON ignores
        // it. (Outside them it is not part of the node: RawValue leaves it out.)
        let mut edited = node.trim().to_owned();
        let mut at = 1 + at.index(edited.len() - 1);
        while !edited.is_char_boundary(at) {
            at -= 1;
        }
        edited.insert(at, ' ');
        let read = response::read::<Value>(&envelope(&edited, Some(&sign)), QUERY, public_key());
        prop_assert!(read.is_err(), "{:?}", read);
    }
}
