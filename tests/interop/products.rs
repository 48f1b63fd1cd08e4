//! Wap and app requests against the ones a real SDK makes (see `sdk.rs`), and the SDK's own
//! requests against our sign-string rules, signer and form decoder.
//!
//! A signature is a function of the exact sign string, and the SDK's own requests sign a
//! different one than our builders: its biz_content text (its key order, `\u` escapes) and no
//! `format`. No builder of ours can reproduce those bytes, so the exact checks are three:
//! (a) our request carries the same parameters as the SDK's, biz_content as parsed JSON;
//! (b) our signer over the SDK's exact parameters gives the SDK's signature, byte for byte;
//! (c) the SDK over our exact parameters gives our builder's signature, byte for byte.
//! Together they leave no byte unchecked that either side sends.

use std::collections::BTreeMap;

use alipay_notify::alipay::form::RawParams;
use serde_json::Value;

use crate::sdk::*;
use crate::vectors::*;

fn wap_pay_url(vectors: &SdkVectors) -> String {
    let alipay = vectors.alipay(vectors.input("gateway"));
    alipay.wap_pay_url(&vectors.order(), vectors.input("quit_url"), SDK_NOW)
}

fn app_order_string(vectors: &SdkVectors) -> String {
    let alipay = vectors.alipay(vectors.input("gateway"));
    alipay.app_order_string(&vectors.order(), SDK_NOW)
}

fn query(url: &str) -> &str {
    url.split_once('?').expect("a query").1
}

// ---------------------------------------------------------------------------------------------
// Our sign-string rules and our signer, over the SDK's own requests
// ---------------------------------------------------------------------------------------------

#[test]
fn our_sign_string_is_the_sdks_and_its_signatures_verify_for_every_product() {
    let vectors = SdkVectors::load();
    for request in vectors.named_api.iter().chain(&vectors.our_layout) {
        let content = request.sign_content();
        assert_eq!(
            String::from_utf8(content.clone()).unwrap(),
            request.sign_string,
            "{} ({}): our sign string differs from the SDK's",
            request.product,
            request.method
        );
        assert!(
            app_public_key().verify(&content, &request.sign).is_ok(),
            "{}: the SDK's signature does not verify over our sign string",
            request.product
        );
    }
}

/// (b). With one key, PKCS#1 v1.5 gives one signature per sign string, so equal bytes over the
/// SDK's exact parameters prove our sign string and our signer together are the SDK's.
#[test]
fn our_signer_signs_the_sdks_parameters_to_the_sdks_bytes() {
    let vectors = SdkVectors::load();
    for request in vectors.named_api.iter().chain(&vectors.our_layout) {
        let ours = app_private_key().sign(&request.sign_content());
        assert_eq!(ours, request.sign, "{}", request.product);
    }
}

#[test]
fn our_form_decoder_reads_the_sdks_quote_plus_encoding() {
    let vectors = SdkVectors::load();
    for request in vectors.named_api.iter().chain(&vectors.our_layout) {
        let encoded = match (&request.output, &request.url) {
            (Some(output), _) => output.as_str(),
            (None, Some(url)) => query(url),
            (None, None) => panic!("{}: neither output nor url", request.product),
        };
        let raw = RawParams::parse(encoded.as_bytes()).unwrap();
        let decoded: BTreeMap<String, String> = raw.decode().unwrap().into_iter().collect();
        let mut expected = request.params.clone();
        expected.insert("sign".into(), request.sign.clone());
        assert_eq!(decoded, expected, "{}", request.product);
    }
}

#[test]
fn the_sdks_own_product_codes_differ_from_alipays_only_for_wap() {
    // The vectors pass our product codes to the SDK; these are what it sends by itself.
    let vectors = SdkVectors::load();
    let default = |p: &str| vectors.named(p).sdk_default_product_code.as_deref();
    assert_eq!(
        default("wap"),
        Some("QUICK_WAP_PAY"),
        "Alipay's is QUICK_WAP_WAY"
    );
    assert_eq!(default("app"), Some("QUICK_MSECURITY_PAY"));
    assert_eq!(default("qr"), None, "optional for precreate");
}

// ---------------------------------------------------------------------------------------------
// Our builders against the SDK, at the SDK's frozen clock
// ---------------------------------------------------------------------------------------------

/// (c): the SDK's `client_api`, given our builder's exact parameters (`format=JSON`, biz_content
/// in our key order), signed them to the bytes our builder signs.
fn assert_signed_as_the_sdk_signs(ours: &BTreeMap<String, String>, layout: &SdkRequest) {
    let mut expected = layout.params.clone();
    expected.insert("sign".into(), layout.sign.clone());
    assert_eq!(ours, &expected, "{}", layout.product);
    assert_eq!(
        ours["biz_content"], layout.biz_content,
        "{}",
        layout.product
    );
}

#[test]
fn wap_pay_url_carries_the_sdks_parameters_and_its_signature() {
    let vectors = SdkVectors::load();
    let url = wap_pay_url(&vectors);
    let (endpoint, query) = url.split_once('?').expect("a query");
    assert_eq!(endpoint, vectors.input("gateway"));
    let ours = form_decode(&[query]);

    assert_same_parameters_as_sdks(&ours, vectors.named("wap"), &[]);
    assert_signed_as_the_sdk_signs(&ours, vectors.layout("wap"));
}

#[test]
fn app_order_string_carries_the_sdks_parameters_and_its_signature() {
    let vectors = SdkVectors::load();
    let ours = form_decode(&[&app_order_string(&vectors)]);

    assert_same_parameters_as_sdks(&ours, vectors.named("app"), &[]);
    assert_signed_as_the_sdk_signs(&ours, vectors.layout("app"));
}

// ---------------------------------------------------------------------------------------------
// Our requests, rebuilt by python and verified by openssl
// ---------------------------------------------------------------------------------------------

#[test]
fn wap_pay_url_verifies_as_python_and_openssl_rebuild_it() {
    let vectors = SdkVectors::load();
    let url = wap_pay_url(&vectors);

    let decoded = verified_by_python_and_openssl(&[query(&url)]);

    assert_product_request(
        &decoded,
        &vectors,
        "wap",
        raw_value(query(&url).as_bytes(), "sign"),
    );
    assert_eq!(
        decoded["params"]["timestamp"], "2026-11-29 00:30:05",
        "Beijing time"
    );
    assert_eq!(decoded["biz_content"]["time_expire"], "2026-11-29 01:00:05");
}

#[test]
fn app_order_string_verifies_as_python_and_openssl_rebuild_it() {
    let vectors = SdkVectors::load();
    let order = app_order_string(&vectors);

    let decoded = verified_by_python_and_openssl(&[&order]);

    assert_product_request(
        &decoded,
        &vectors,
        "app",
        raw_value(order.as_bytes(), "sign"),
    );
    assert_eq!(
        decoded["params"]["timestamp"], "2026-11-29 00:30:05",
        "Beijing time"
    );
}

#[test]
fn app_order_string_decodes_to_the_exact_values_by_any_decoder() {
    let vectors = SdkVectors::load();
    let order = app_order_string(&vectors);

    // Form decoding, as the app SDKs and the gateway read it (`+` = space, `%XX`).
    let form = form_decode(&[&order]);
    let biz: Value = serde_json::from_str(&form["biz_content"]).unwrap();
    assert_eq!(biz["subject"], "测试 a+b&c=d%20 😀");
    assert_eq!(biz["subject"], vectors.input("subject"));
    assert_eq!(biz["body"], vectors.input("body"));
    assert_eq!(form["notify_url"], vectors.input("notify_url"));
    assert!(
        !form.contains_key("return_url"),
        "an app has no browser to return"
    );

    // No bare `+` on the wire, so a plain percent-decoder reads the same values.
    assert!(!order.contains('+') && !order.contains(' '), "{order}");
    for segment in order.split('&') {
        let (key, value) = segment.split_once('=').expect("k=v");
        let plain = percent_encoding::percent_decode_str(value)
            .decode_utf8()
            .expect("UTF-8");
        assert_eq!(plain, form[key].as_str(), "{key}");
    }
}
