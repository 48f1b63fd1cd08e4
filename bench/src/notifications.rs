//! Notifications as Alipay sends them: the parameter set of a page payment's `TRADE_SUCCESS`,
//! signed over the bytes of its charset (UTF-8 or GBK) and form-encoded. Shared by the load test
//! and the criterion benches, so both measure the same bodies.

use std::sync::Arc;

use encoding_rs::Encoding;
use percent_encoding::{percent_encode, NON_ALPHANUMERIC};
use time::OffsetDateTime;

use alipay_notify::alipay::clock::format_beijing;
use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED};
use alipay_notify::money::Amount;

/// Who a notification is addressed to: the merchant's app and seller account.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub app_id: String,
    pub seller_id: String,
}

/// One order the benchmark pays.
#[derive(Debug, Clone)]
pub struct PaidOrder {
    pub out_trade_no: String,
    pub amount: Amount,
}

pub const SUBJECT: &str = "乌龙茶 Oolong tea 250g";

/// The parameters of a `TRADE_SUCCESS` notification for `order`, as text, in the order Alipay
/// lists them. `charset` is `utf-8` or `gbk`; `signed_body` encodes the values to it.
pub fn trade_success(
    merchant: &Merchant,
    order: &PaidOrder,
    charset: &str,
    now: OffsetDateTime,
) -> Vec<(&'static str, String)> {
    let amount = order.amount.to_string();
    let no = &order.out_trade_no;
    vec![
        (
            "gmt_create",
            format_beijing(now - time::Duration::seconds(15)),
        ),
        ("charset", charset.to_owned()),
        (
            "gmt_payment",
            format_beijing(now - time::Duration::seconds(1)),
        ),
        ("notify_time", format_beijing(now)),
        ("subject", SUBJECT.to_owned()),
        ("buyer_id", "2088102177846880".to_owned()),
        ("buyer_logon_id", "abc***@example.com".to_owned()),
        ("invoice_amount", amount.clone()),
        ("version", "1.0".to_owned()),
        ("notify_id", format!("2026112800222231005{no}")),
        (
            "fund_bill_list",
            format!("[{{\"amount\":\"{amount}\",\"fundChannel\":\"ALIPAYACCOUNT\"}}]"),
        ),
        ("notify_type", "trade_status_sync".to_owned()),
        ("out_trade_no", no.clone()),
        ("total_amount", amount.clone()),
        ("trade_status", "TRADE_SUCCESS".to_owned()),
        ("trade_no", trade_no(no)),
        ("auth_app_id", merchant.app_id.clone()),
        ("receipt_amount", amount.clone()),
        ("point_amount", "0.00".to_owned()),
        ("buyer_pay_amount", amount),
        ("app_id", merchant.app_id.clone()),
        ("sign_type", "RSA2".to_owned()),
        ("seller_id", merchant.seller_id.clone()),
        ("seller_email", "shop@example.com".to_owned()),
    ]
}

/// The Alipay trade number a notification for order `out_trade_no` carries, so a check can tell
/// that an order was paid by its own notification.
pub fn trade_no(out_trade_no: &str) -> String {
    format!("2026112822001{out_trade_no}")
}

/// Signs `params` as Alipay does (over the bytes of the declared charset, everything but `sign`
/// and `sign_type`, sorted) and returns the form body. An unknown charset label is read as UTF-8.
pub fn signed_body(params: &[(&str, String)], key: &PrivateKey) -> Vec<u8> {
    let encoding = params
        .iter()
        .find(|(k, _)| *k == "charset")
        .and_then(|(_, label)| Encoding::for_label(label.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    let encoded: Vec<(&str, Vec<u8>)> = params
        .iter()
        .map(|(k, v)| (*k, encoding.encode(v).0.into_owned()))
        .collect();
    let content = sign_content(
        encoded.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        CALLBACK_EXCLUDED,
    );
    let sign = key.sign(&content);
    let mut body = Vec::with_capacity(content.len() * 2);
    for (k, v) in encoded
        .iter()
        .map(|(k, v)| (*k, v.as_slice()))
        .chain([("sign", sign.as_bytes())])
    {
        if !body.is_empty() {
            body.push(b'&');
        }
        body.extend_from_slice(k.as_bytes());
        body.push(b'=');
        body.extend(percent_encode(v, NON_ALPHANUMERIC).flat_map(str::bytes));
    }
    body
}

/// Signs one UTF-8 notification per order on every core (RSA signing is the slow part), in
/// order; `progress` is called once per body.
pub fn sign_all(
    merchant: &Merchant,
    orders: &[PaidOrder],
    key: &Arc<PrivateKey>,
    progress: &(dyn Fn() + Sync),
) -> Vec<Vec<u8>> {
    let now = OffsetDateTime::now_utc();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = orders.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = orders
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|order| {
                            let params = trade_success(merchant, order, "utf-8", now);
                            let body = signed_body(&params, key);
                            progress();
                            body
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a signing thread panicked"))
            .collect()
    })
}

/// The requests in the order they are sent: each once, plus `duplicates` repeats of randomly
/// chosen ones, shuffled in (Alipay resends, sometimes concurrently). Given bodies (or bodies
/// with their order's index), the repeats are byte-identical.
pub fn with_duplicates<T: Clone>(items: Vec<T>, duplicates: usize) -> Vec<T> {
    let mut rng = fastrand::Rng::new();
    let mut sent = items.clone();
    if !items.is_empty() {
        sent.extend((0..duplicates).map(|_| items[rng.usize(..items.len())].clone()));
    }
    rng.shuffle(&mut sent);
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use alipay_notify::alipay::callback::verify;
    use alipay_notify::alipay::form::RawParams;
    use alipay_notify::alipay::keys::PublicKey;

    fn order() -> PaidOrder {
        PaidOrder {
            out_trade_no: "BENCH1N0000001".into(),
            amount: Amount::parse("12.34").unwrap(),
        }
    }

    fn merchant() -> Merchant {
        Merchant {
            app_id: "2021000000000001".into(),
            seller_id: "2088000000000001".into(),
        }
    }

    #[test]
    fn signed_bodies_verify_in_both_charsets() {
        let key = PrivateKey::generate();
        let public = PublicKey::parse(&key.public_key_base64()).unwrap();
        for charset in ["utf-8", "gbk"] {
            let params = trade_success(&merchant(), &order(), charset, OffsetDateTime::now_utc());
            let body = signed_body(&params, &key);
            let verified = verify(&RawParams::parse(&body).unwrap(), &public).unwrap();
            assert_eq!(verified.get("subject"), Some(SUBJECT), "{charset}");
        }
    }

    /// python-alipay-sdk (the seed peer's) signs empty values too, where Alipay drops them: a
    /// body with one would fail its verify and make the side-by-side compare nothing.
    #[test]
    fn no_parameter_is_empty() {
        let params = trade_success(&merchant(), &order(), "utf-8", OffsetDateTime::now_utc());
        let empty: Vec<&str> = params
            .iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(empty, Vec::<&str>::new());
    }

    #[test]
    fn duplicates_are_byte_identical_repeats() {
        let bodies: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 3]).collect();
        let sent = with_duplicates(bodies.clone(), 4);
        assert_eq!(sent.len(), 14);
        assert!(sent.iter().all(|b| bodies.iter().any(|o| **o == **b)));
    }
}
