//! Gateway responses signed by openssl over their raw text.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use alipay_test_support::tools::openssl_sign;

use crate::vectors::*;

/// A query response node as Alipay might format it: spacing, an escaped slash and a `\u` escape
/// that any re-serialisation would change, and Chinese text.
const QUERY_NODE: &str = r#"{"code":"10000", "msg":"Success","buyer_logon_id":"abc***@example.com","trade_status":"TRADE_SUCCESS","out_trade_no":"T1","trade_no":"2026112822001","total_amount":"88.00","subject":"乌龙茶 a\/b \u4e2d","send_pay_date":"2026-11-28 23:10:04"}"#;

fn openssl_signed_response(node: &str) -> String {
    let signature = openssl_sign(
        "sha256",
        &vector_path("alipay_private_pkcs8.pem"),
        node.as_bytes(),
    );
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
