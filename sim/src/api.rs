//! The gateway's API methods: alipay.trade.precreate (a QR code for a new trade), .query, .close,
//! .refund and .fastpay.refund.query, and alipay.open.app.alipaycert.download (certificate mode).
//! Each answers `{"<method>_response":{...},"sign":"..."}`, signed with RSA2 by Alipay's key over
//! the exact text of the response object as written, in the request's charset; in certificate mode
//! by the key of Alipay's current certificate, named beside it:
//! `{"<method>_response":{...},"alipay_cert_sn":"...","sign":"..."}`. Gateway-level errors (isv.*)
//! are not signed; business results and failures are.

use std::sync::Arc;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::biz;
use super::buyer::qr_code;
use super::callbacks::{encoding_for, yuan, Signer};
use super::gateway::{ApiMethod, GatewayError, GatewayRequest};
use super::lifecycle;
use super::refunds::{self, Refunded};
use super::server::Shared;
use super::trade_error::TradeError;
use super::trades::Trade;
use alipay_notify::alipay::clock::format_beijing;
use alipay_notify::alipay::product::Product;

type Fields = Vec<(&'static str, Value)>;

/// Answers a checked API request.
pub(crate) fn answer(
    shared: &Arc<Shared>,
    request: &GatewayRequest<'_>,
    now: OffsetDateTime,
) -> Response {
    let app_id = &request.app.app_id;
    let result = match request.method {
        ApiMethod::Create(Product::Qr) => lifecycle::create(shared, request, Product::Qr, now)
            .map(|trade| precreate_fields(shared, &trade)),
        ApiMethod::Query => biz::trade_ref(&request.biz)
            .and_then(|by| lifecycle::find(shared, app_id, &by))
            .map(|trade| query_fields(&trade)),
        ApiMethod::Close => biz::trade_ref(&request.biz)
            .and_then(|by| lifecycle::close(shared, app_id, &by, now))
            .map(|trade| trade_numbers(&trade)),
        ApiMethod::Refund => biz::refund_request(&request.biz)
            .and_then(|refund| refunds::refund(shared, app_id, &refund, now))
            .map(|done| refund_fields(&done)),
        ApiMethod::RefundQuery => biz::refund_query(&request.biz).and_then(|(by, no)| {
            lifecycle::find(shared, app_id, &by).map(|trade| refund_query_fields(&trade, &no))
        }),
        ApiMethod::CertDownload => {
            biz::cert_sn(&request.biz).and_then(|sn| cert_download_fields(shared, &sn))
        }
        // Routed to a cashier before getting here; answered as Alipay answers a wrong method.
        ApiMethod::Create(_) => {
            return gateway_failure(Some(request.method), &GatewayError::InvalidMethod)
        }
    };
    let fields = match result {
        Ok(mut fields) => {
            let mut head: Fields = vec![("code", json!("10000")), ("msg", json!("Success"))];
            head.append(&mut fields);
            head
        }
        Err(error) => business_failure(&error),
    };
    let key = request.method.response_key();
    let signer = shared.signer(request.app);
    render(&key, &object_text(&fields), &request.charset, Some(&signer))
}

/// A request refused by the gateway checks: unsigned, keyed by the method when there is one.
pub(crate) fn gateway_failure(method: Option<ApiMethod>, error: &GatewayError) -> Response {
    let fields: Fields = vec![
        ("code", json!(error.code())),
        ("msg", json!(error.msg())),
        ("sub_code", json!(error.sub_code())),
        ("sub_msg", json!(error.sub_msg())),
    ];
    let key = method.map_or_else(|| "error_response".to_owned(), ApiMethod::response_key);
    render(&key, &object_text(&fields), "utf-8", None)
}

fn business_failure(error: &TradeError) -> Fields {
    vec![
        ("code", json!("40004")),
        ("msg", json!("Business Failed")),
        ("sub_code", json!(error.sub_code())),
        ("sub_msg", json!(error.sub_msg())),
    ]
}

/// The object's text, members in the given order, as compact JSON.
fn object_text(fields: &Fields) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// The response body in the request's charset; the signature covers the object's bytes exactly
/// (not the alipay_cert_sn beside it).
fn render(key: &str, object: &str, charset: &str, signer: Option<&Signer<'_>>) -> Response {
    let encoding = encoding_for(charset);
    let object = encoding.encode(object).0;
    let mut body = format!("{{\"{key}\":").into_bytes();
    body.extend_from_slice(&object);
    if let Some(signer) = signer {
        if let Some(sn) = signer.cert_sn() {
            body.extend_from_slice(format!(",\"alipay_cert_sn\":\"{sn}\"").as_bytes());
        }
        let sign = signer.key().sign(&object);
        body.extend_from_slice(format!(",\"sign\":\"{sign}\"").as_bytes());
    }
    body.push(b'}');
    // What Alipay's gateway declares for its JSON answers.
    let content_type = format!("text/html;charset={}", encoding.name());
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Alipay's certificate `sn`, current or rotated away from: the PEM of it and its CA, base64.
fn cert_download_fields(shared: &Shared, sn: &str) -> Result<Fields, TradeError> {
    let chain = shared
        .pki
        .as_ref()
        .and_then(|pki| pki.download(sn))
        .ok_or(TradeError::CertNotExist)?;
    Ok(vec![("alipay_cert_content", json!(STANDARD.encode(chain)))])
}

/// The same qr_code for as long as the trade is unpaid: a repeated precreate gets it again.
fn precreate_fields(shared: &Shared, trade: &Trade) -> Fields {
    vec![
        ("out_trade_no", json!(trade.out_trade_no)),
        ("qr_code", json!(qr_code(shared, trade))),
    ]
}

fn trade_numbers(trade: &Trade) -> Fields {
    vec![
        ("out_trade_no", json!(trade.out_trade_no)),
        ("trade_no", json!(trade.trade_no)),
    ]
}

fn buyer_fields(trade: &Trade) -> Fields {
    trade
        .buyer
        .as_ref()
        .map(|b| {
            vec![
                ("buyer_logon_id", json!(b.buyer_logon_id)),
                ("buyer_user_id", json!(b.buyer_id)),
            ]
        })
        .unwrap_or_default()
}

fn query_fields(trade: &Trade) -> Fields {
    let paid = trade.paid_at.map(|_| trade.total_amount.to_string());
    let amount = paid.clone().unwrap_or_else(|| "0.00".into());
    let mut fields = buyer_fields(trade);
    fields.extend([
        ("buyer_pay_amount", json!(amount)),
        ("invoice_amount", json!(amount)),
        ("out_trade_no", json!(trade.out_trade_no)),
        ("point_amount", json!("0.00")),
        ("receipt_amount", json!(amount)),
    ]);
    if let (Some(amount), Some(at)) = (paid, trade.paid_at) {
        fields.push((
            "fund_bill_list",
            json!([{"amount": amount, "fund_channel": "ALIPAYACCOUNT"}]),
        ));
        fields.push(("send_pay_date", json!(format_beijing(at))));
    }
    fields.extend([
        ("total_amount", json!(trade.total_amount.to_string())),
        ("trade_no", json!(trade.trade_no)),
        (
            "trade_status",
            json!(trade.status.map(|s| s.as_str()).unwrap_or_default()),
        ),
    ]);
    fields
}

fn refund_fields(done: &Refunded) -> Fields {
    let trade = &done.trade;
    let mut fields = buyer_fields(trade);
    fields.extend([
        (
            "fund_change",
            json!(if done.fund_change { "Y" } else { "N" }),
        ),
        ("gmt_refund_pay", json!(format_beijing(done.refund.at))),
        ("out_trade_no", json!(trade.out_trade_no)),
        ("refund_fee", json!(yuan(trade.refunded()))),
        ("send_back_fee", json!(done.refund.amount.to_string())),
        ("trade_no", json!(trade.trade_no)),
    ]);
    fields
}

/// An unknown out_request_no still answers 10000, without refund_amount: Alipay's "not refunded".
fn refund_query_fields(trade: &Trade, out_request_no: &str) -> Fields {
    let mut fields = trade_numbers(trade);
    if let Some(refund) = trade
        .refunds
        .iter()
        .find(|r| r.out_request_no == out_request_no)
    {
        fields.extend([
            ("out_request_no", json!(refund.out_request_no)),
            ("total_amount", json!(trade.total_amount.to_string())),
            ("refund_amount", json!(refund.amount.to_string())),
            ("refund_status", json!("REFUND_SUCCESS")),
            ("gmt_refund_pay", json!(format_beijing(refund.at))),
        ]);
    }
    fields
}
