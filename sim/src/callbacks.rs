//! What the simulator sends back to the merchant: notification bodies and return_url redirects,
//! signed with Alipay's key the callback way (`sign` and `sign_type` left out of the sign string);
//! and who signs ([`Signer`]): for an app in certificate mode, the key of Alipay's current
//! certificate.
//! Values are encoded in the charset the merchant's request named, as Alipay does, so a GBK request
//! gets a GBK notification signed over its GBK bytes.

use std::collections::BTreeMap;

use encoding_rs::Encoding;
use time::OffsetDateTime;
use url::form_urlencoded::byte_serialize;

use super::config::RegisteredApp;
use super::pki::CertSigner;
use super::trades::{Refund, Trade};
use alipay_notify::alipay::clock::{format_beijing, BEIJING};
use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::notification::TradeStatus;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED};

type Params = Vec<(&'static str, String)>;

/// The key that signs what goes back to one app.
pub(crate) enum Signer<'a> {
    /// The simulator's Alipay key, for apps with plain keys.
    Plain(&'a PrivateKey),
    /// Alipay's current certificate: API answers also name it (`alipay_cert_sn`).
    Cert(CertSigner),
}

impl Signer<'_> {
    pub fn key(&self) -> &PrivateKey {
        match self {
            Self::Plain(key) => key,
            Self::Cert(cert) => &cert.key,
        }
    }

    pub fn cert_sn(&self) -> Option<&str> {
        match self {
            Self::Plain(_) => None,
            Self::Cert(cert) => Some(&cert.sn),
        }
    }
}

/// Parameters with their `sign`, and the same parameters form-encoded for the wire.
pub(crate) struct Signed {
    pub params: BTreeMap<String, String>,
    pub encoded: String,
}

/// The charsets the gateway accepts; anything else was refused before a trade existed.
pub(crate) fn encoding_for(charset: &str) -> &'static Encoding {
    Encoding::for_label_no_replacement(charset.as_bytes())
        .filter(|e| [encoding_rs::GBK, encoding_rs::GB18030].contains(e))
        .unwrap_or(encoding_rs::UTF_8)
}

pub(crate) fn sign(mut params: Params, charset: &str, key: &PrivateKey) -> Signed {
    let encoding = encoding_for(charset);
    let bytes = |params: &Params| -> Vec<(&'static str, Vec<u8>)> {
        params
            .iter()
            .map(|(k, v)| (*k, encoding.encode(v).0.into_owned()))
            .collect()
    };
    let unsigned = bytes(&params);
    let content = sign_content(
        unsigned.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())),
        CALLBACK_EXCLUDED,
    );
    params.push(("sign", key.sign(&content)));
    let encoded: Vec<String> = bytes(&params)
        .iter()
        .map(|(k, v)| format!("{k}={}", byte_serialize(v).collect::<String>()))
        .collect();
    Signed {
        params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        encoded: encoded.join("&"),
    }
}

/// Fen as a yuan string with two decimals; unlike `Amount`, zero is allowed (nothing refunded).
pub(crate) fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// Alipay's `gmt_refund` carries milliseconds, unlike every other time it sends.
fn format_millis(at: OffsetDateTime) -> String {
    let beijing = at.to_offset(BEIJING);
    format!("{}.{:03}", format_beijing(at), beijing.millisecond())
}

fn push_some(params: &mut Params, key: &'static str, value: &Option<String>) {
    if let Some(value) = value.as_ref().filter(|v| !v.is_empty()) {
        params.push((key, value.clone()));
    }
}

/// What happened that the notification reports.
pub(crate) enum Event {
    Paid(TradeStatus),
    Refunded(Refund),
    Closed,
}

/// The unsigned parameters of a `trade_status_sync` notification about `trade`, as it is now.
pub(crate) fn notification(
    trade: &Trade,
    app: &RegisteredApp,
    notify_id: &str,
    event: &Event,
    now: OffsetDateTime,
) -> Params {
    let status = trade_status(trade, event);
    let mut params: Params = vec![
        ("gmt_create", format_beijing(trade.created_at)),
        ("charset", trade.charset.clone()),
        ("seller_email", app.seller_email.clone()),
        ("subject", trade.subject.clone()),
        ("notify_id", notify_id.to_owned()),
        ("notify_type", "trade_status_sync".into()),
        ("trade_status", status.as_str().into()),
        ("app_id", app.app_id.clone()),
        ("auth_app_id", app.app_id.clone()),
        ("sign_type", "RSA2".into()),
        ("seller_id", app.seller_id.clone()),
        ("notify_time", format_beijing(now)),
        ("version", "1.0".into()),
        ("out_trade_no", trade.out_trade_no.clone()),
        ("total_amount", trade.total_amount.to_string()),
    ];
    push_some(&mut params, "trade_no", &trade.trade_no);
    push_some(&mut params, "body", &trade.body);
    push_some(&mut params, "passback_params", &trade.passback_params);
    if let Some(buyer) = &trade.buyer {
        params.push(("buyer_id", buyer.buyer_id.clone()));
        params.push(("buyer_logon_id", buyer.buyer_logon_id.clone()));
    }
    if let Some(paid_at) = trade.paid_at {
        let amount = trade.total_amount.to_string();
        let fund_bill = format!(r#"[{{"amount":"{amount}","fundChannel":"ALIPAYACCOUNT"}}]"#);
        params.extend([
            ("gmt_payment", format_beijing(paid_at)),
            ("receipt_amount", amount.clone()),
            ("invoice_amount", amount.clone()),
            ("buyer_pay_amount", amount),
            ("point_amount", "0.00".into()),
            ("fund_bill_list", fund_bill),
        ]);
    }
    if let Event::Refunded(refund) = event {
        params.extend([
            ("out_biz_no", refund.out_request_no.clone()),
            ("refund_fee", yuan(trade.refunded())),
            ("gmt_refund", format_millis(refund.at)),
        ]);
    }
    if status != TradeStatus::TradeSuccess {
        params.push(("gmt_close", format_beijing(trade.closed_at.unwrap_or(now))));
    }
    params
}

fn trade_status(trade: &Trade, event: &Event) -> TradeStatus {
    match event {
        Event::Paid(status) => *status,
        Event::Closed => TradeStatus::TradeClosed,
        Event::Refunded(_) => trade.status.unwrap_or(TradeStatus::TradeSuccess),
    }
}

/// The signed return parameters (no `trade_status`: the browser's word proves nothing), appended to
/// return_url, with `method` naming the request it answers (`alipay.trade.wap.pay.return` after
/// the phone cashier). `None` when the trade has no usable return_url.
pub(crate) fn return_location(
    trade: &Trade,
    app: &RegisteredApp,
    key: &PrivateKey,
    now: OffsetDateTime,
) -> Option<String> {
    let mut base = url::Url::parse(trade.return_url.as_deref()?).ok()?;
    base.set_fragment(None);
    let mut params: Params = vec![
        ("charset", trade.charset.clone()),
        ("out_trade_no", trade.out_trade_no.clone()),
        ("method", format!("{}.return", trade.product.method())),
        ("total_amount", trade.total_amount.to_string()),
    ];
    push_some(&mut params, "trade_no", &trade.trade_no);
    params.extend([
        ("auth_app_id", app.app_id.clone()),
        ("version", "1.0".into()),
        ("app_id", app.app_id.clone()),
        ("sign_type", "RSA2".into()),
        ("seller_id", app.seller_id.clone()),
        ("timestamp", format_beijing(now)),
    ]);
    let signed = sign(params, &trade.charset, key);
    let separator = if base.query().is_some() { '&' } else { '?' };
    Some(format!("{base}{separator}{}", signed.encoded))
}
