//! Finding orders for people: filters, a search by any of an order's numbers, and keyset pages
//! (newest first) that cost the same on the first page and the ten-thousandth.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use time::OffsetDateTime;

use super::OrderStatus;
use crate::alipay::product::Product;

/// What a list of orders is narrowed to; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub product: Option<Product>,
    /// Created at or after.
    pub created_from: Option<OffsetDateTime>,
    /// Created before.
    pub created_to: Option<OffsetDateTime>,
    pub min_fen: Option<i64>,
    pub max_fen: Option<i64>,
    /// An out_trade_no, Alipay trade_no or buyer id, matched exactly.
    pub search: Option<String>,
}

/// Where a page ends: the last order shown, by (created_at, out_trade_no). The next page holds
/// the orders strictly before it in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: OffsetDateTime,
    pub out_trade_no: String,
}

impl Cursor {
    /// Opaque text for a URL: the time in nanoseconds and the order number.
    pub fn encode(&self) -> String {
        let text = format!(
            "{}:{}",
            self.created_at.unix_timestamp_nanos(),
            self.out_trade_no
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (nanos, out_trade_no) = text.split_once(':')?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
        Some(Self {
            created_at,
            out_trade_no: out_trade_no.to_owned(),
        })
    }
}

/// Which index serves an amount filter. Postgres keeps statistics and its planner chooses;
/// SQLite has none unless ANALYZE runs, and guessed wrong both ways (README, Performance:
/// "Console list on 1,000,000 orders"), so its store counts the range first and says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AmountPath {
    /// The planner decides.
    Planner,
    /// A rare range: fetch it through `payment_order_total` and sort what it holds.
    ByAmount,
    /// A common range: walk newest first and skip what it rejects; the amount index stays unused.
    ByTime,
}

/// One page of a filtered list.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub orders: Vec<super::Order>,
    /// Where the next page starts; `None` on the last.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_a_url_and_garbage_is_no_cursor() {
        let cursor = Cursor {
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_789)
                .unwrap(),
            out_trade_no: "T:1/2".into(),
        };
        let text = cursor.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text), Some(cursor));
        assert_eq!(Cursor::decode("not base64!"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("x:1")), None);
    }
}
