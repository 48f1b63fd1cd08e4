//! Arbitrary parameter sets through `sign_content` and `callback::verify` with the fixed fuzz
//! public key. The sign string must follow docs/protocol.md; verification may succeed only
//! over a sign string the fuzz key really signed (the seeds), and must never panic.
#![no_main]

use alipay_notify::alipay::callback;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::sign::CALLBACK_EXCLUDED;
use alipay_notify_fuzz::expected_sign_content;
use alipay_notify_fuzz::{check_sign_content, public_key, signed_notify_contents};
use libfuzzer_sys::fuzz_target;

/// Pairs straight from `&` and `=` without decoding: empty keys and repeats included, which
/// `RawParams` refuses but `sign_content` must still handle.
fn loose_pairs(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    data.split(|b| *b == b'&')
        .map(|s| match s.iter().position(|b| *b == b'=') {
            Some(at) => (s[..at].to_vec(), s[at + 1..].to_vec()),
            None => (s.to_vec(), Vec::new()),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    check_sign_content(&loose_pairs(data));
    let Ok(raw) = RawParams::parse(data) else {
        return;
    };
    let pairs: Vec<(Vec<u8>, Vec<u8>)> =
        raw.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    check_sign_content(&pairs);

    let signature = String::from_utf8_lossy(raw.get("sign").unwrap_or_default());
    assert!(
        public_key().verify(data, &signature).is_err() || signed_notify_contents().contains(data),
        "a signature over unsigned bytes verified"
    );
    if let Ok(verified) = callback::verify(&raw, public_key()) {
        let content = expected_sign_content(&pairs, CALLBACK_EXCLUDED);
        assert!(
            signed_notify_contents().contains(&content),
            "verify accepted a forged message: {}",
            String::from_utf8_lossy(&content)
        );
        assert_eq!(raw.get("sign_type"), Some(&b"RSA2"[..]));
        for (key, value) in raw.decode().expect("verified implies decodable") {
            let expected = (!value.is_empty()).then_some(value.as_str());
            assert_eq!(verified.get(&key), expected);
        }
    }
});
