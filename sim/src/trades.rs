//! The simulator's trade book: every trade a page.pay, wap.pay, precreate or app.pay request
//! opened, its refunds, and each notification sent about it with every delivery attempt. In
//! memory, behind one mutex that is never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use super::faults::Faults;
use alipay_notify::alipay::notification::TradeStatus;
use alipay_notify::alipay::product::Product;
use alipay_notify::money::Amount;

#[derive(Debug, Clone, Serialize)]
pub struct Trade {
    pub app_id: String,
    pub out_trade_no: String,
    /// How the buyer pays: the latest request for this out_trade_no says (`"wap"` in JSON).
    pub product: Product,
    pub subject: String,
    pub body: Option<String>,
    pub total_amount: Amount,
    /// The charset of the merchant's request; notifications and returns use it too.
    pub charset: String,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    /// Phone cashier only: where the buyer's "back" goes, and the way back to the shop.
    pub quit_url: Option<String>,
    pub passback_params: Option<String>,
    /// `None` while only the cashier has been shown (or the QR code not yet scanned): Alipay has
    /// no trade yet, and query answers ACQ.TRADE_NOT_EXIST. In JSON it reads `NOT_CREATED`. A
    /// buyer who logs in or scans makes it `WAIT_BUYER_PAY`.
    #[serde(serialize_with = "status_text")]
    pub status: Option<TradeStatus>,
    pub trade_no: Option<String>,
    pub buyer: Option<Buyer>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    pub refunds: Vec<Refund>,
    pub notifications: Vec<NotificationRecord>,
    /// Names the trade's cashier (and QR page) in `/sim/cashier/{id}/…` and `/sim/qr/{id}`.
    #[serde(skip)]
    pub(crate) cashier_id: String,
}

fn status_text<S: Serializer>(status: &Option<TradeStatus>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(status.map_or("NOT_CREATED", TradeStatus::as_str))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buyer {
    pub buyer_id: String,
    pub buyer_logon_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub out_request_no: String,
    pub amount: Amount,
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    Payment,
    Refund,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    /// A copy was answered with exactly `success`.
    Delivered,
    /// All eight attempts failed.
    GaveUp,
    /// The `never_deliver` fault: nothing was sent.
    Suppressed,
    /// The request named no notify_url.
    NoNotifyUrl,
}

/// One notification: the same body (and notify_id) on every attempt.
#[derive(Debug, Clone, Serialize)]
pub struct NotificationRecord {
    pub notify_id: String,
    pub kind: NotificationKind,
    pub trade_status: String,
    /// Every parameter as sent, `sign` included, as UTF-8 text.
    pub params: BTreeMap<String, String>,
    /// The exact `application/x-www-form-urlencoded` body POSTed.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
}

/// One POST (or one simulated loss) of a notification.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// 1 to 8: the place in Alipay's schedule.
    pub number: u32,
    /// 1 unless a duplicate or concurrent fault sent several copies of this attempt.
    pub copy: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub notify_id: String,
    pub outcome: AttemptOutcome,
    /// Whether the body was exactly `success`.
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// `body` is the start of the response body (lossy UTF-8, at most 200 characters).
    Response {
        status: u16,
        body: String,
    },
    NetworkError {
        error: String,
    },
}

impl Trade {
    pub fn refunded(&self) -> i64 {
        self.refunds.iter().map(|r| r.amount.fen()).sum()
    }

    /// Every attempt of every notification, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        let mut all: Vec<Attempt> = self
            .notifications
            .iter()
            .flat_map(|n| n.attempts.iter().cloned())
            .collect();
        all.sort_by_key(|a| a.at);
        all
    }

    /// Not paid and not closed: not created yet, or waiting for the buyer's payment.
    pub(crate) fn awaiting_payment(&self) -> bool {
        matches!(self.status, None | Some(TradeStatus::WaitBuyerPay))
    }

    /// Whether the cashier may still take a payment.
    pub(crate) fn payable(&self, now: OffsetDateTime) -> bool {
        self.awaiting_payment() && now < self.expires_at
    }
}

/// Which trade an API request means: by the merchant's number or Alipay's, scoped to one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TradeRef {
    pub out_trade_no: Option<String>,
    pub trade_no: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Book {
    trades: Vec<Trade>,
    faults: HashMap<String, Faults>,
}

impl Book {
    pub fn find_mut(&mut self, app_id: &str, out_trade_no: &str) -> Option<&mut Trade> {
        self.trades
            .iter_mut()
            .find(|t| t.app_id == app_id && t.out_trade_no == out_trade_no)
    }

    pub fn by_cashier_mut(&mut self, cashier_id: &str) -> Option<&mut Trade> {
        self.trades.iter_mut().find(|t| t.cashier_id == cashier_id)
    }

    /// Both numbers, when given, must name the same trade.
    pub fn by_ref_mut(&mut self, app_id: &str, by: &TradeRef) -> Option<&mut Trade> {
        self.trades.iter_mut().find(|t| {
            t.app_id == app_id
                && by
                    .out_trade_no
                    .as_ref()
                    .is_none_or(|no| *no == t.out_trade_no)
                && by
                    .trade_no
                    .as_ref()
                    .is_none_or(|no| Some(no) == t.trade_no.as_ref())
        })
    }

    pub fn insert(&mut self, trade: Trade) {
        self.trades.push(trade);
    }

    pub fn faults_for(&self, out_trade_no: &str) -> Option<Faults> {
        self.faults.get(out_trade_no).cloned()
    }

    fn notification_mut(&mut self, notify_id: &str) -> Option<&mut NotificationRecord> {
        self.trades
            .iter_mut()
            .flat_map(|t| t.notifications.iter_mut())
            .find(|n| n.notify_id == notify_id)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TradeBook(Arc<Mutex<Book>>);

impl TradeBook {
    /// Runs `change` under the lock. A panic elsewhere cannot leave a half-made change here
    /// (changes are single assignments), so a poisoned lock is still usable.
    pub fn with<R>(&self, change: impl FnOnce(&mut Book) -> R) -> R {
        let mut book = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut book)
    }

    pub fn trades(&self) -> Vec<Trade> {
        self.with(|book| book.trades.clone())
    }

    pub fn set_faults(&self, out_trade_no: &str, faults: Faults) {
        self.with(|book| book.faults.insert(out_trade_no.to_owned(), faults));
    }

    pub fn record_attempt(&self, attempt: Attempt) {
        self.with(|book| {
            if let Some(n) = book.notification_mut(&attempt.notify_id) {
                n.attempts.push(attempt);
            }
        });
    }

    pub fn set_state(&self, notify_id: &str, state: DeliveryState) {
        self.with(|book| {
            if let Some(n) = book.notification_mut(notify_id) {
                n.state = state;
            }
        });
    }
}
