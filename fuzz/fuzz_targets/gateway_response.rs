//! `response::read` on arbitrary text: never panics, and returns `Ok` only for a response node the
//! fixed fuzz key really signed (`SIGNED_RESPONSE_NODES`), with exactly that node's text and content.
#![no_main]

use alipay_notify::alipay::response::{self, ResponseError};
use alipay_notify_fuzz::{public_key, SIGNED_RESPONSE_NODES};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    for method in ["alipay.trade.query", "alipay.trade.refund"] {
        match response::read::<Value>(body, method, public_key()) {
            Ok(signed) => {
                assert!(
                    SIGNED_RESPONSE_NODES.contains(&signed.raw.as_str()),
                    "Ok without a valid signature: {}",
                    signed.raw
                );
                assert!(body.contains(&signed.raw));
                let node: Value = serde_json::from_str(&signed.raw).expect("signed node is JSON");
                assert_eq!(signed.value, node);
                assert_eq!(signed.value["code"], "10000");
            }
            Err(ResponseError::Business { code, .. }) => assert_ne!(code, "10000"),
            Err(_) => {}
        }
    }
});
