//! Reading biz_content: the page-pay order, which trade an API call means, refund requests. A bad
//! field is ACQ.INVALID_PARAMETER ("参数无效：…"), as Alipay reports it.

use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

use super::trade_error::TradeError;
use super::trades::TradeRef;
use alipay_notify::alipay::clock::{parse_beijing, BEIJING};
use alipay_notify::money::Amount;

/// Alipay's default for a page-pay trade without time_expire or timeout_express.
pub const DEFAULT_EXPIRY: Duration = Duration::days(15);
const MAX_EXPIRY: Duration = Duration::days(15);

/// What a valid page-pay biz_content asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PagePayOrder {
    pub out_trade_no: String,
    pub total_amount: Amount,
    pub subject: String,
    pub body: Option<String>,
    pub passback_params: Option<String>,
    pub expires_at: OffsetDateTime,
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

/// A string field; Alipay also takes JSON numbers (SDK samples send `"total_amount":9.00`).
fn text(biz: &Map<String, Value>, key: &str) -> Result<Option<String>, TradeError> {
    match biz.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(invalid(format!("{key} 类型错误"))),
    }
}

fn required(biz: &Map<String, Value>, key: &str) -> Result<String, TradeError> {
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

pub(crate) fn page_pay_order(
    biz: &Map<String, Value>,
    now: OffsetDateTime,
) -> Result<PagePayOrder, TradeError> {
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
    if text(biz, "product_code")?.as_deref() != Some("FAST_INSTANT_TRADE_PAY") {
        return Err(invalid("product_code 必须为 FAST_INSTANT_TRADE_PAY"));
    }
    Ok(PagePayOrder {
        out_trade_no,
        total_amount,
        subject,
        body: bounded(text(biz, "body")?, "body", 128)?,
        passback_params: bounded(text(biz, "passback_params")?, "passback_params", 512)?,
        expires_at: expiry(biz, now)?,
    })
}

/// time_expire wins over timeout_express; without either the trade lives 15 days.
fn expiry(biz: &Map<String, Value>, now: OffsetDateTime) -> Result<OffsetDateTime, TradeError> {
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
pub(crate) fn trade_ref(biz: &Map<String, Value>) -> Result<TradeRef, TradeError> {
    let by = TradeRef {
        out_trade_no: text(biz, "out_trade_no")?,
        trade_no: text(biz, "trade_no")?,
    };
    if by.out_trade_no.is_none() && by.trade_no.is_none() {
        return Err(invalid("out_trade_no 和 trade_no 不能同时为空"));
    }
    Ok(by)
}

pub(crate) fn refund_request(biz: &Map<String, Value>) -> Result<RefundRequest, TradeError> {
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

pub(crate) fn refund_query(biz: &Map<String, Value>) -> Result<(TradeRef, String), TradeError> {
    Ok((trade_ref(biz)?, required(biz, "out_request_no")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn biz(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn order(extra: Value) -> Result<PagePayOrder, TradeError> {
        let mut fields = biz(json!({
            "out_trade_no": "T_1", "total_amount": "88.00", "subject": "Tea",
            "product_code": "FAST_INSTANT_TRADE_PAY"
        }));
        fields.extend(biz(extra));
        page_pay_order(&fields, datetime!(2026-11-28 04:00 UTC))
    }

    #[test]
    fn reads_a_page_pay_order_with_numbers_as_alipay_does() {
        let read = order(json!({"total_amount": 9.5, "timeout_express": "90m"})).unwrap();
        assert_eq!(read.total_amount.fen(), 950);
        assert_eq!(read.expires_at, datetime!(2026-11-28 05:30 UTC));
        let dated = order(json!({"time_expire": "2026-11-28 12:30"})).unwrap();
        assert_eq!(dated.expires_at, datetime!(2026-11-28 04:30 UTC));
    }

    #[test]
    fn refuses_bad_fields() {
        for bad in [
            json!({"total_amount": "0.001"}),
            json!({"total_amount": "100000000.01"}),
            json!({"out_trade_no": "a-b"}),
            json!({"subject": "a/b"}),
            json!({"product_code": "QUICK_WAP_WAY"}),
            json!({"timeout_express": "16d"}),
            json!({"timeout_express": "9223372036854775807d"}),
            json!({"timeout_express": "0m"}),
            json!({"time_expire": "2026-11-28 11:00:00"}),
        ] {
            assert!(
                matches!(order(bad.clone()), Err(TradeError::InvalidParameter(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn one_c_means_the_end_of_the_beijing_day() {
        let at = timeout_express("1c", datetime!(2026-11-28 20:00 UTC)).unwrap();
        assert_eq!(at, datetime!(2026-11-29 16:00 UTC));
    }
}
