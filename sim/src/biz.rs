//! Reading biz_content: the order a trade-creating request (page, wap, precreate, app) asks for,
//! which trade an API call means, refund requests. A bad field is ACQ.INVALID_PARAMETER
//! ("参数无效：…"), as Alipay reports it.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::trade_error::TradeError;
use super::trades::TradeRef;
use alipay_notify::alipay::clock::{parse_beijing, BEIJING};
use alipay_notify::alipay::product::Product;
use alipay_notify::money::Amount;

/// Alipay's default for a trade without time_expire or timeout_express.
pub const DEFAULT_EXPIRY: Duration = Duration::days(15);
const MAX_EXPIRY: Duration = Duration::days(15);
const MAX_QUIT_URL_CHARS: usize = 400;

/// biz_content's members, each as the JSON text the merchant wrote: a number stays the decimal it
/// was written as (Alipay's gateway reads numbers as decimals, never through a float).
pub(crate) type Biz = BTreeMap<String, Box<RawValue>>;

/// biz_content as an object, or `None` when it is not one.
pub(crate) fn parse(text: &str) -> Option<Biz> {
    serde_json::from_str(text).ok()
}

/// What a valid trade-creating biz_content asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Order {
    pub product: Product,
    pub out_trade_no: String,
    pub total_amount: Amount,
    pub subject: String,
    pub body: Option<String>,
    pub passback_params: Option<String>,
    pub expires_at: OffsetDateTime,
    /// Phone cashier only: where the buyer's "back" goes.
    pub quit_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefundRequest {
    pub trade: TradeRef,
    pub amount: Amount,
    pub out_request_no: String,
    pub reason: Option<String>,
}

fn invalid(detail: impl Into<String>) -> TradeError {
    TradeError::InvalidParameter(detail.into())
}

/// A string field. Alipay also takes JSON numbers (python-alipay-sdk sends floats, as in
/// `"total_amount":88.8`); a number is read as written, so `88.8` is 88.80 while `1e3` and
/// `88.888` fail the amount's own format rule instead of being rounded.
fn text(biz: &Biz, key: &str) -> Result<Option<String>, TradeError> {
    let Some(raw) = biz.get(key).map(|raw| raw.get()) else {
        return Ok(None);
    };
    match raw.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<String>(raw) {
            Ok(s) if s.is_empty() => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(_) => Err(invalid(format!("{key} 类型错误"))),
        },
        Some(b'-' | b'0'..=b'9') => Ok(Some(raw.to_owned())),
        _ if raw == "null" => Ok(None),
        _ => Err(invalid(format!("{key} 类型错误"))),
    }
}

fn required(biz: &Biz, key: &str) -> Result<String, TradeError> {
    text(biz, key)?.ok_or_else(|| invalid(format!("缺少 {key}")))
}

fn bounded(
    value: Option<String>,
    key: &str,
    max_chars: usize,
) -> Result<Option<String>, TradeError> {
    match value {
        Some(v) if v.chars().count() > max_chars => Err(invalid(format!("{key} 过长"))),
        other => Ok(other),
    }
}

fn is_out_trade_no(text: &str) -> bool {
    (1..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The order a page.pay, wap.pay, precreate or app.pay request asks for.
pub(crate) fn order(product: Product, biz: &Biz, now: OffsetDateTime) -> Result<Order, TradeError> {
    let out_trade_no = required(biz, "out_trade_no")?;
    if !is_out_trade_no(&out_trade_no) {
        return Err(invalid("商户订单号格式错误"));
    }
    let total_amount = Amount::parse(&required(biz, "total_amount")?)
        .map_err(|_| invalid("订单总金额格式错误"))?;
    let subject = required(biz, "subject")?;
    if subject.chars().count() > 256 || subject.contains(['/', '=', '&']) {
        return Err(invalid("订单标题格式错误"));
    }
    product_code(product, text(biz, "product_code")?.as_deref())?;
    let quit_url = match product {
        Product::Wap => bounded(text(biz, "quit_url")?, "quit_url", MAX_QUIT_URL_CHARS)?,
        _ => None,
    };
    Ok(Order {
        product,
        out_trade_no,
        total_amount,
        subject,
        body: bounded(text(biz, "body")?, "body", 128)?,
        passback_params: bounded(text(biz, "passback_params")?, "passback_params", 512)?,
        expires_at: expiry(biz, now)?,
        quit_url,
    })
}

/// Page and wap pay must name their product_code; precreate and app pay may leave it out, but
/// what they name must be theirs.
fn product_code(product: Product, given: Option<&str>) -> Result<(), TradeError> {
    let optional = matches!(product, Product::Qr | Product::App);
    match given {
        Some(code) if code == product.product_code() => Ok(()),
        None if optional => Ok(()),
        _ => Err(invalid(format!(
            "product_code 必须为 {}",
            product.product_code()
        ))),
    }
}

/// time_expire wins over timeout_express; without either the trade lives 15 days.
fn expiry(biz: &Biz, now: OffsetDateTime) -> Result<OffsetDateTime, TradeError> {
    if let Some(at) = text(biz, "time_expire")? {
        let at = parse_expire(&at).ok_or_else(|| invalid("time_expire 格式错误"))?;
        if at <= now || at - now > MAX_EXPIRY {
            return Err(invalid("time_expire 超出范围"));
        }
        return Ok(at);
    }
    match text(biz, "timeout_express")? {
        Some(relative) => {
            timeout_express(&relative, now).ok_or_else(|| invalid("timeout_express 格式错误"))
        }
        None => Ok(now + DEFAULT_EXPIRY),
    }
}

/// `yyyy-MM-dd HH:mm:ss`, or `yyyy-MM-dd HH:mm` as in Alipay's own samples, Beijing time.
fn parse_expire(text: &str) -> Option<OffsetDateTime> {
    let minutes = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    parse_beijing(text).ok().or_else(|| {
        PrimitiveDateTime::parse(text, minutes)
            .ok()
            .map(|t| t.assume_offset(BEIJING))
    })
}

/// `90m`, `2h`, `3d` (1m ..= 15d), or `1c`: until the end of the current Beijing day.
fn timeout_express(text: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if text == "1c" {
        let today = now.to_offset(BEIJING).date();
        return Some(today.next_day()?.midnight().assume_offset(BEIJING));
    }
    let unit = text.chars().last()?;
    let count: i64 = text.get(..text.len() - 1)?.parse().ok()?;
    // Bounded before any arithmetic: a huge count must not overflow (and panic) below.
    if !(1..=MAX_EXPIRY.whole_minutes()).contains(&count) {
        return None;
    }
    let span = match unit {
        'm' => Duration::minutes(count),
        'h' => Duration::hours(count),
        'd' => Duration::days(count),
        _ => return None,
    };
    (span <= MAX_EXPIRY).then(|| now + span)
}

/// out_trade_no or trade_no, at least one.
pub(crate) fn trade_ref(biz: &Biz) -> Result<TradeRef, TradeError> {
    let by = TradeRef {
        out_trade_no: text(biz, "out_trade_no")?,
        trade_no: text(biz, "trade_no")?,
    };
    if by.out_trade_no.is_none() && by.trade_no.is_none() {
        return Err(invalid("out_trade_no 和 trade_no 不能同时为空"));
    }
    Ok(by)
}

/// The `alipay_cert_sn` a certificate download asks for; none names no certificate.
pub(crate) fn cert_sn(biz: &Biz) -> Result<String, TradeError> {
    text(biz, "alipay_cert_sn")?.ok_or(TradeError::CertNotExist)
}

pub(crate) fn refund_request(biz: &Biz) -> Result<RefundRequest, TradeError> {
    let trade = trade_ref(biz)?;
    let amount =
        Amount::parse(&required(biz, "refund_amount")?).map_err(|_| invalid("退款金额格式错误"))?;
    // Without out_request_no the request stands for a single refund of the whole trade number.
    let out_request_no = match text(biz, "out_request_no")? {
        Some(no) => no,
        None => trade
            .out_trade_no
            .clone()
            .or_else(|| trade.trade_no.clone())
            .unwrap_or_default(),
    };
    if out_request_no.len() > 64 {
        return Err(invalid("out_request_no 过长"));
    }
    Ok(RefundRequest {
        trade,
        amount,
        out_request_no,
        reason: bounded(text(biz, "refund_reason")?, "refund_reason", 256)?,
    })
}

pub(crate) fn refund_query(biz: &Biz) -> Result<(TradeRef, String), TradeError> {
    Ok((trade_ref(biz)?, required(biz, "out_request_no")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use time::macros::datetime;

    fn page_order(extra: Value) -> Result<Order, TradeError> {
        order_of(Product::Page, extra)
    }

    /// A biz_content for `product` with `extra` members added or replaced.
    fn order_of(product: Product, extra: Value) -> Result<Order, TradeError> {
        let mut fields = json!({
            "out_trade_no": "T_1", "total_amount": "88.00", "subject": "Tea",
            "product_code": product.product_code()
        });
        if let (Value::Object(fields), Value::Object(extra)) = (&mut fields, extra) {
            fields.extend(extra);
        }
        from_text(&fields.to_string())
            .and_then(|biz| order(product, &biz, datetime!(2026-11-28 04:00 UTC)))
    }

    fn from_text(text: &str) -> Result<Biz, TradeError> {
        parse(text).ok_or_else(|| invalid("not an object"))
    }

    /// total_amount written exactly as `number` (a JSON number, not a string).
    fn amount_written_as(number: &str) -> Result<Amount, TradeError> {
        let text = format!(
            r#"{{"out_trade_no":"T_1","total_amount":{number},"subject":"Tea",
                "product_code":"FAST_INSTANT_TRADE_PAY"}}"#
        );
        let biz = from_text(&text)?;
        order(Product::Page, &biz, datetime!(2026-11-28 04:00 UTC)).map(|o| o.total_amount)
    }

    #[test]
    fn reads_a_page_pay_order_with_relative_and_absolute_expiry() {
        let read = page_order(json!({"total_amount": 9.5, "timeout_express": "90m"})).unwrap();
        assert_eq!(read.total_amount.fen(), 950);
        assert_eq!(read.expires_at, datetime!(2026-11-28 05:30 UTC));
        let dated = page_order(json!({"time_expire": "2026-11-28 12:30"})).unwrap();
        assert_eq!(dated.expires_at, datetime!(2026-11-28 04:30 UTC));
    }

    #[test]
    fn a_json_number_amount_is_read_as_the_decimal_written() {
        for (written, fen) in [("88.8", 8880), ("9", 900), ("9.00", 900), ("0.01", 1)] {
            assert_eq!(
                amount_written_as(written).map(Amount::fen),
                Ok(fen),
                "{written}"
            );
        }
        for refused in ["88.888", "1e3", "1E3", "-1", "0", "100000000.01"] {
            assert!(
                matches!(
                    amount_written_as(refused),
                    Err(TradeError::InvalidParameter(_))
                ),
                "{refused}"
            );
        }
    }

    #[test]
    fn refuses_bad_fields() {
        for bad in [
            json!({"total_amount": "0.001"}),
            json!({"total_amount": "100000000.01"}),
            json!({"total_amount": true}),
            json!({"out_trade_no": "a-b"}),
            json!({"subject": "a/b"}),
            json!({"product_code": "QUICK_WAP_WAY"}),
            json!({"product_code": null}),
            json!({"timeout_express": "16d"}),
            json!({"timeout_express": "9223372036854775807d"}),
            json!({"timeout_express": "0m"}),
            json!({"time_expire": "2026-11-28 11:00:00"}),
        ] {
            assert!(
                matches!(
                    page_order(bad.clone()),
                    Err(TradeError::InvalidParameter(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_product_has_its_product_code_rule() {
        assert!(order_of(Product::Wap, json!({})).is_ok());
        let wrong = json!({"product_code": "FAST_INSTANT_TRADE_PAY"});
        for product in Product::ALL {
            let refused = order_of(product, wrong.clone()).is_err();
            assert_eq!(refused, product != Product::Page, "{product}");
        }
        for optional in [Product::Qr, Product::App] {
            assert!(order_of(optional, json!({"product_code": null})).is_ok());
            assert!(order_of(optional, json!({"product_code": ""})).is_ok());
        }
        assert!(order_of(Product::Wap, json!({"product_code": ""})).is_err());
    }

    #[test]
    fn quit_url_is_read_for_the_phone_cashier_only_and_bounded() {
        let quit = json!({"quit_url": "https://shop.example/cart"});
        let wap = order_of(Product::Wap, quit.clone()).unwrap();
        assert_eq!(wap.quit_url.as_deref(), Some("https://shop.example/cart"));
        assert_eq!(order_of(Product::Page, quit).unwrap().quit_url, None);
        let long = format!("https://shop.example/{}", "a".repeat(400));
        assert!(order_of(Product::Wap, json!({ "quit_url": long })).is_err());
    }

    #[test]
    fn biz_content_must_be_an_object() {
        assert!(parse("[1]").is_none() && parse("\"x\"").is_none() && parse("{").is_none());
        assert!(parse(r#"{"a":{"b":1}}"#).is_some());
    }

    #[test]
    fn one_c_means_the_end_of_the_beijing_day() {
        let at = timeout_express("1c", datetime!(2026-11-28 20:00 UTC)).unwrap();
        assert_eq!(at, datetime!(2026-11-29 16:00 UTC));
    }
}
