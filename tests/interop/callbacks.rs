//! Notifications and returns signed by openssl, sign strings built by python.

use alipay_notify::alipay::callback::{verify, CallbackError};
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED};

use crate::vectors::*;

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
