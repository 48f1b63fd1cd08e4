//! Orders as the merchant sees them, and the payment events that move them.

use serde::Serialize;
use time::OffsetDateTime;

use crate::alipay::gateway::{TradeQuery, TradeRefund};
use crate::alipay::notification::{Notification, TradeStatus};
use crate::alipay::product::Product;
use crate::money::Amount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Paid,
    Closed,
    Refunded,
}

impl OrderStatus {
    pub(crate) const ALL: [Self; 4] = [Self::Pending, Self::Paid, Self::Closed, Self::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Closed => "closed",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub out_trade_no: String,
    pub subject: String,
    pub body: Option<String>,
    pub total_amount: Amount,
    /// How the buyer pays (the Alipay product the pay link opens).
    pub product: Product,
    pub status: OrderStatus,
    pub trade_no: Option<String>,
    pub buyer_id: Option<String>,
    pub alipay_trade_status: Option<TradeStatus>,
    /// Refunded so far, as Alipay last reported it (cumulative `refund_fee`).
    #[serde(
        rename = "refunded_amount",
        serialize_with = "crate::money::serialize_fen"
    )]
    pub refunded_fen: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

/// An order with its refunds: the document `GET /api/orders/{out_trade_no}` returns and every
/// event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderDocument {
    #[serde(flatten)]
    pub order: Order,
    pub refunds: Vec<Refund>,
}

/// A pending order about to be stored.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub out_trade_no: String,
    pub subject: String,
    pub body: Option<String>,
    pub total_amount: Amount,
    pub product: Product,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Where word of a trade came from: Alipay's notification, our query of the trade, or the
/// answer to our refund request. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Notify,
    Query,
    Refund,
}

impl Source {
    pub(crate) const ALL: [Self; 3] = [Self::Notify, Self::Query, Self::Refund];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Query => "query",
            Self::Refund => "refund",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the audit log keeps as the message of [`PaymentEvent::never_paid`]: Alipay's answer
/// was an error code, not a trade.
pub(crate) const NO_TRADE: &[u8] = b"ACQ.TRADE_NOT_EXIST";

/// A verified statement from Alipay about one trade.
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub source: Source,
    pub notify_id: Option<String>,
    pub out_trade_no: String,
    /// Absent only when Alipay has no trade for the order (it was never paid).
    pub trade_no: Option<String>,
    pub trade_status: TradeStatus,
    pub total_amount: Amount,
    pub buyer_id: Option<String>,
    pub paid_at: Option<OffsetDateTime>,
    /// Cumulative refunded amount, when the event reports refunds (`refund_fee`).
    pub refund_fee: Option<Amount>,
    /// The refund request this event settles (`out_biz_no` in notifications).
    pub out_request_no: Option<String>,
    pub raw: Vec<u8>,
    pub received_at: OffsetDateTime,
}

impl PaymentEvent {
    /// Alipay's notification, as verified and checked against our app.
    pub(crate) fn from_notification(
        notification: Notification,
        raw: &[u8],
        received_at: OffsetDateTime,
    ) -> Self {
        Self {
            source: Source::Notify,
            notify_id: Some(notification.notify_id),
            out_trade_no: notification.out_trade_no,
            trade_no: Some(notification.trade_no),
            trade_status: notification.trade_status,
            total_amount: notification.total_amount,
            buyer_id: notification.buyer_id,
            paid_at: notification.gmt_payment,
            refund_fee: notification.refund_fee,
            out_request_no: notification.out_biz_no,
            raw: raw.to_vec(),
            received_at,
        }
    }

    /// Whether the event reports a refund (it carries the cumulative `refund_fee`): the state
    /// machine applies it as one, and the timeline tells it as one.
    pub fn reports_refund(&self) -> bool {
        self.refund_fee.is_some()
    }

    /// The answer of `alipay.trade.query` about `order` (checked by the caller to be about it),
    /// read as `status` with its amount already parsed.
    pub(crate) fn from_query(
        order: &Order,
        trade: &TradeQuery,
        status: TradeStatus,
        total_amount: Amount,
        raw: &str,
    ) -> Self {
        Self {
            source: Source::Query,
            notify_id: None,
            out_trade_no: order.out_trade_no.clone(),
            trade_no: Some(trade.trade_no.clone()),
            trade_status: status,
            total_amount,
            buyer_id: trade.buyer_user_id.clone(),
            paid_at: trade
                .send_pay_date
                .as_deref()
                .and_then(|t| crate::alipay::clock::parse_beijing(t).ok()),
            refund_fee: None,
            out_request_no: None,
            raw: raw.as_bytes().to_vec(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    /// Alipay has no trade for an expired `order` (`ACQ.TRADE_NOT_EXIST`): nobody paid it, and
    /// it closes.
    pub(crate) fn never_paid(order: &Order) -> Self {
        Self {
            source: Source::Query,
            notify_id: None,
            out_trade_no: order.out_trade_no.clone(),
            trade_no: None,
            trade_status: TradeStatus::TradeClosed,
            total_amount: order.total_amount,
            buyer_id: None,
            paid_at: None,
            refund_fee: None,
            out_request_no: None,
            raw: NO_TRADE.to_vec(),
            received_at: OffsetDateTime::now_utc(),
        }
    }

    /// The answer of `alipay.trade.refund` for our request `out_request_no` of `order`.
    pub(crate) fn from_refund(
        order: &Order,
        answer: &TradeRefund,
        out_request_no: &str,
        raw: &str,
    ) -> Self {
        Self {
            source: Source::Refund,
            notify_id: None,
            out_trade_no: order.out_trade_no.clone(),
            trade_no: Some(answer.trade_no.clone()),
            trade_status: TradeStatus::TradeSuccess,
            total_amount: order.total_amount,
            buyer_id: None,
            paid_at: None,
            // "0.00" refunds nothing; Amount refuses zero, so it reads as no refund.
            refund_fee: Amount::parse(&answer.refund_fee).ok(),
            out_request_no: Some(out_request_no.to_owned()),
            raw: raw.as_bytes().to_vec(),
            received_at: OffsetDateTime::now_utc(),
        }
    }
}

/// What became of an event; every verified event is recorded with one, as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The order changed.
    Applied,
    /// Already applied: nothing to do, and Alipay may stop resending.
    Duplicate,
    /// A status that changes nothing (WAIT_BUYER_PAY).
    Ignored,
    /// Genuine but inconsistent with our records: the order is untouched and ops must look.
    Anomaly,
}

impl Verdict {
    pub(crate) const ALL: [Self; 4] =
        [Self::Applied, Self::Duplicate, Self::Ignored, Self::Anomaly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Anomaly => "anomaly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a genuine Alipay message disagrees with our records (the order is left untouched and ops
/// must look). Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyReason {
    /// A required field is missing or unreadable.
    IncompleteNotification,
    AppIdMismatch,
    SellerIdMismatch,
    UnknownOrder,
    AmountMismatch,
    TradeNoMismatch,
    RefundExceedsTotal,
    PaidAfterClose,
}

impl AnomalyReason {
    pub(crate) const ALL: [Self; 8] = [
        Self::IncompleteNotification,
        Self::AppIdMismatch,
        Self::SellerIdMismatch,
        Self::UnknownOrder,
        Self::AmountMismatch,
        Self::TradeNoMismatch,
        Self::RefundExceedsTotal,
        Self::PaidAfterClose,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::IncompleteNotification => "incomplete_notification",
            Self::AppIdMismatch => "app_id_mismatch",
            Self::SellerIdMismatch => "seller_id_mismatch",
            Self::UnknownOrder => "unknown_order",
            Self::AmountMismatch => "amount_mismatch",
            Self::TradeNoMismatch => "trade_no_mismatch",
            Self::RefundExceedsTotal => "refund_exceeds_total",
            Self::PaidAfterClose => "paid_after_close",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The reason in plain words, for the people who must look (the CLI's and the console's
    /// timelines): what disagrees, not the stored name.
    pub fn explain(self) -> &'static str {
        match self {
            Self::IncompleteNotification => {
                "the message lacks a field Alipay always sends, or has one we cannot read"
            }
            Self::AppIdMismatch => "the message is for another Alipay app than ours",
            Self::SellerIdMismatch => "the message is for another seller account than ours",
            Self::UnknownOrder => "no order with this out_trade_no was ever created here",
            Self::AmountMismatch => "Alipay's amount differs from the order's amount",
            Self::TradeNoMismatch => {
                "Alipay names another trade than the one recorded for the order"
            }
            Self::RefundExceedsTotal => "the refunded amount reported exceeds the order's total",
            Self::PaidAfterClose => "Alipay reports a payment for an order we had closed",
        }
    }
}

impl std::fmt::Display for AnomalyReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the audit log: a verified message as received, with its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// The row's id: how a reader names the message (to show its raw bytes later).
    pub id: i64,
    pub source: Source,
    pub notify_id: Option<String>,
    pub out_trade_no: Option<String>,
    /// The `trade_status` the message carried, as received (an anomaly's may be unknown).
    pub trade_status: Option<String>,
    pub verdict: Verdict,
    pub reason: Option<AnomalyReason>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The message exactly as received (form bytes in their charset, or a response's JSON);
    /// left out of JSON, where it would be unreadable.
    #[serde(skip)]
    pub raw: Vec<u8>,
}

/// The result of applying an event: its verdict, why, and the order as it now stands.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: Option<AnomalyReason>,
    pub order: Option<Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One refund request of an order, identified by its `out_request_no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub out_request_no: String,
    pub amount: Amount,
    pub reason: Option<String>,
    pub status: RefundStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A refund about to be requested.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub out_trade_no: String,
    pub out_request_no: String,
    pub amount: Amount,
    pub reason: Option<String>,
    pub requested_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text stored in the database and shown in JSON is the text of earlier releases: rows
    /// written by them parse, and nothing needs migrating.
    #[test]
    fn enums_keep_their_stored_and_serialized_text() {
        fn json<T: Serialize>(value: &T) -> String {
            serde_json::to_string(value).unwrap()
        }
        let stored: Vec<(String, String)> = Source::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), json(s)))
            .chain(
                Verdict::ALL
                    .iter()
                    .map(|v| (v.as_str().to_owned(), json(v))),
            )
            .chain(
                AnomalyReason::ALL
                    .iter()
                    .map(|r| (r.as_str().to_owned(), json(r))),
            )
            .chain(
                OrderStatus::ALL
                    .iter()
                    .map(|s| (s.as_str().to_owned(), json(s))),
            )
            .collect();
        for (text, serialized) in &stored {
            assert_eq!(serialized, &format!("\"{text}\""));
        }
        let texts: Vec<&str> = stored.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            texts,
            [
                "notify",
                "query",
                "refund",
                "applied",
                "duplicate",
                "ignored",
                "anomaly",
                "incomplete_notification",
                "app_id_mismatch",
                "seller_id_mismatch",
                "unknown_order",
                "amount_mismatch",
                "trade_no_mismatch",
                "refund_exceeds_total",
                "paid_after_close",
                "pending",
                "paid",
                "closed",
                "refunded",
            ]
        );
        for source in Source::ALL {
            assert_eq!(Source::parse(source.as_str()), Some(source));
        }
        for verdict in Verdict::ALL {
            assert_eq!(Verdict::parse(verdict.as_str()), Some(verdict));
        }
        for reason in AnomalyReason::ALL {
            assert_eq!(AnomalyReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Verdict::parse("Applied"), None);
        assert_eq!(AnomalyReason::parse("anomaly"), None);
    }

    /// Every reason is explained in words of its own: ops reading a timeline learn what
    /// disagreed, not a stored name.
    #[test]
    fn every_anomaly_reason_is_explained_in_plain_words() {
        let explained: Vec<(AnomalyReason, &str)> = AnomalyReason::ALL
            .iter()
            .map(|r| (*r, r.explain()))
            .collect();
        assert_eq!(
            explained,
            [
                (
                    AnomalyReason::IncompleteNotification,
                    "the message lacks a field Alipay always sends, or has one we cannot read"
                ),
                (
                    AnomalyReason::AppIdMismatch,
                    "the message is for another Alipay app than ours"
                ),
                (
                    AnomalyReason::SellerIdMismatch,
                    "the message is for another seller account than ours"
                ),
                (
                    AnomalyReason::UnknownOrder,
                    "no order with this out_trade_no was ever created here"
                ),
                (
                    AnomalyReason::AmountMismatch,
                    "Alipay's amount differs from the order's amount"
                ),
                (
                    AnomalyReason::TradeNoMismatch,
                    "Alipay names another trade than the one recorded for the order"
                ),
                (
                    AnomalyReason::RefundExceedsTotal,
                    "the refunded amount reported exceeds the order's total"
                ),
                (
                    AnomalyReason::PaidAfterClose,
                    "Alipay reports a payment for an order we had closed"
                ),
            ]
        );
        let distinct: std::collections::HashSet<&str> =
            explained.iter().map(|(_, text)| *text).collect();
        assert_eq!(distinct.len(), AnomalyReason::ALL.len());
    }
}
