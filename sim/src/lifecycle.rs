//! The simulated Alipay's business rules: a page.pay, wap.pay, precreate or app.pay request opens
//! (or re-opens) a trade; the buyer's Log in (or Scan), Pay and Cancel, expiry, the close API and
//! refunds move it along; each step that Alipay reports sends a signed notification (waiting for
//! payment is not one of them). Every change happens under the trade book's lock; deliveries start
//! after.

use std::sync::Arc;

use time::OffsetDateTime;

use super::biz::{self, Order};
use super::callbacks::{self, Event};
use super::config::RegisteredApp;
use super::delivery::Job;
use super::faults::Faults;
use super::gateway::GatewayRequest;
use super::ids;
use super::server::Shared;
pub(crate) use super::trade_error::TradeError;
use super::trades::{
    Book, Buyer, DeliveryState, NotificationKind, NotificationRecord, Trade, TradeRef,
};
use alipay_notify::alipay::notification::TradeStatus;
use alipay_notify::alipay::product::Product;

/// Where the trade-creating request wants answers, in which charset.
#[derive(Debug, Clone)]
struct Reply {
    pub charset: String,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
}

/// Opens the trade a checked page.pay, wap.pay, precreate or app.pay request asks for. Only the
/// products that send the buyer's browser back to the merchant keep a return_url.
pub(crate) fn create(
    shared: &Arc<Shared>,
    request: &GatewayRequest<'_>,
    product: Product,
    now: OffsetDateTime,
) -> Result<Trade, TradeError> {
    let order = biz::order(product, &request.biz, now)?;
    let reply = Reply {
        charset: request.charset.clone(),
        notify_url: request.param("notify_url").map(str::to_owned),
        return_url: request
            .param("return_url")
            .filter(|_| product.redirects())
            .map(str::to_owned),
    };
    open(shared, request.app, order, reply, now)
}

/// The trade a valid trade-creating request is for: new, or the unpaid one with this out_trade_no
/// (which must ask for the same amount).
fn open(
    shared: &Arc<Shared>,
    app: &RegisteredApp,
    order: Order,
    reply: Reply,
    now: OffsetDateTime,
) -> Result<Trade, TradeError> {
    let (trade, created) = shared.book.with(|book| {
        if let Some(trade) = book.find_mut(&app.app_id, &order.out_trade_no) {
            return reopen(trade, &order, reply, now).map(|t| (t.clone(), false));
        }
        let trade = Trade {
            app_id: app.app_id.clone(),
            out_trade_no: order.out_trade_no,
            product: order.product,
            subject: order.subject,
            body: order.body,
            total_amount: order.total_amount,
            charset: reply.charset,
            notify_url: reply.notify_url,
            return_url: reply.return_url,
            quit_url: order.quit_url,
            passback_params: order.passback_params,
            status: None,
            trade_no: None,
            buyer: None,
            created_at: now,
            expires_at: order.expires_at,
            paid_at: None,
            closed_at: None,
            refunds: Vec::new(),
            notifications: Vec::new(),
            cashier_id: ids::cashier_id(),
        };
        book.insert(trade.clone());
        Ok((trade, true))
    })?;
    if created {
        schedule_expiry(shared, &trade, now);
    }
    Ok(trade)
}

fn reopen<'t>(
    trade: &'t mut Trade,
    order: &Order,
    reply: Reply,
    now: OffsetDateTime,
) -> Result<&'t Trade, TradeError> {
    unpaid(trade, now)?;
    if trade.total_amount != order.total_amount {
        return Err(TradeError::ContextInconsistent);
    }
    // The latest request says how the buyer pays and where the merchant wants answers now.
    trade.product = order.product;
    trade.quit_url = order.quit_url.clone();
    trade.charset = reply.charset;
    trade.notify_url = reply.notify_url;
    trade.return_url = reply.return_url;
    Ok(trade)
}

/// Refuses a trade that can no longer be paid: paid already, closed, or out of time.
fn unpaid(trade: &Trade, now: OffsetDateTime) -> Result<(), TradeError> {
    match trade.status {
        Some(status) if status.is_paid() => Err(TradeError::HasSuccess),
        _ if !trade.payable(now) => Err(TradeError::HasClose),
        _ => Ok(()),
    }
}

/// Closes the trade when its time is up, if nobody paid (in real time: the time scale is for
/// retries only, so that a tiny scale does not expire trades under a test's feet).
fn schedule_expiry(shared: &Arc<Shared>, trade: &Trade, now: OffsetDateTime) {
    let wait = std::time::Duration::try_from(trade.expires_at - now).unwrap_or_default();
    let (task_shared, app_id, out_trade_no) = (
        shared.clone(),
        trade.app_id.clone(),
        trade.out_trade_no.clone(),
    );
    shared.background.spawn(async move {
        tokio::time::sleep(wait).await;
        expire(
            &task_shared,
            &app_id,
            &out_trade_no,
            OffsetDateTime::now_utc(),
        );
    });
}

/// The faults for notifications about `out_trade_no`: its own, or the global ones.
pub(super) fn faults_for(shared: &Shared, book: &Book, out_trade_no: &str) -> Faults {
    book.faults_for(out_trade_no)
        .unwrap_or_else(|| shared.faults.clone())
}

/// The trade behind a cashier page, with the faults that apply to its notifications.
fn at_cashier<'b>(
    shared: &Shared,
    book: &'b mut Book,
    cashier_id: &str,
) -> Result<(Faults, &'b mut Trade), TradeError> {
    let trade = book
        .by_cashier_mut(cashier_id)
        .ok_or(TradeError::NotExist)?;
    let out_trade_no = trade.out_trade_no.clone();
    let faults = faults_for(shared, book, &out_trade_no);
    let trade = book
        .by_cashier_mut(cashier_id)
        .ok_or(TradeError::NotExist)?;
    Ok((faults, trade))
}

/// Records a signed notification on the trade and returns its delivery, if there is a notify_url.
pub(super) fn announce(
    shared: &Shared,
    trade: &mut Trade,
    kind: NotificationKind,
    event: Event,
    faults: &Faults,
    now: OffsetDateTime,
) -> Option<Job> {
    let app = shared.apps.get(&trade.app_id)?;
    let notify_id = ids::notify_id(now);
    let params = callbacks::notification(trade, app, &notify_id, &event, now);
    let signed = callbacks::sign(params, &trade.charset, shared.signer(app).key());
    let state = match trade.notify_url {
        Some(_) => DeliveryState::Pending,
        None => DeliveryState::NoNotifyUrl,
    };
    trade.notifications.push(NotificationRecord {
        notify_id: notify_id.clone(),
        kind,
        trade_status: signed
            .params
            .get("trade_status")
            .cloned()
            .unwrap_or_default(),
        params: signed.params,
        body: signed.encoded.clone(),
        state,
        attempts: Vec::new(),
    });
    Some(Job {
        notify_id,
        url: trade.notify_url.clone()?,
        body: signed.encoded,
        charset: trade.charset.clone(),
        faults: faults.clone(),
    })
}

fn new_buyer() -> Buyer {
    Buyer {
        buyer_id: ids::user_id(),
        buyer_logon_id: ids::buyer_logon_id(),
    }
}

/// The buyer logged in at the cashier or scanned the QR code: Alipay now has the trade, waiting
/// for payment (with a trade_no and a buyer, and no notification). Repeating it changes nothing.
pub(crate) fn login(
    shared: &Shared,
    cashier_id: &str,
    now: OffsetDateTime,
) -> Result<Trade, TradeError> {
    shared.book.with(|book| {
        let trade = book
            .by_cashier_mut(cashier_id)
            .ok_or(TradeError::NotExist)?;
        unpaid(trade, now)?;
        if trade.status.is_none() {
            trade.trade_no = Some(ids::trade_no(now));
            trade.buyer = Some(new_buyer());
            trade.status = Some(TradeStatus::WaitBuyerPay);
        }
        Ok(trade.clone())
    })
}

/// What a click on Pay did.
pub(crate) enum Paid {
    Now(Trade),
    /// A second click: nothing new happens, the buyer is sent back again.
    Already(Trade),
}

pub(crate) fn pay(
    shared: &Shared,
    cashier_id: &str,
    now: OffsetDateTime,
) -> Result<Paid, TradeError> {
    let (paid, jobs) = shared.book.with(|book| {
        let (faults, trade) = at_cashier(shared, book, cashier_id)?;
        match unpaid(trade, now) {
            Err(TradeError::HasSuccess) => return Ok((Paid::Already(trade.clone()), Vec::new())),
            Err(error) => return Err(error),
            Ok(()) => {}
        }
        // A buyer who logged in (or scanned) keeps the trade_no and login Alipay gave them.
        trade.trade_no.get_or_insert_with(|| ids::trade_no(now));
        trade.buyer.get_or_insert_with(new_buyer);
        trade.paid_at = Some(now);
        let statuses = if faults.out_of_order {
            trade.closed_at = Some(now);
            vec![TradeStatus::TradeFinished, TradeStatus::TradeSuccess]
        } else {
            vec![TradeStatus::TradeSuccess]
        };
        trade.status = statuses.first().copied();
        let jobs = statuses
            .into_iter()
            .filter_map(|status| {
                announce(
                    shared,
                    trade,
                    NotificationKind::Payment,
                    Event::Paid(status),
                    &faults,
                    now,
                )
            })
            .collect();
        Ok((Paid::Now(trade.clone()), jobs))
    })?;
    shared.delivery.dispatch(jobs);
    Ok(paid)
}

/// The buyer gave up at the cashier (logged in by then, so Alipay has a trade to close).
pub(crate) fn cancel(
    shared: &Shared,
    cashier_id: &str,
    now: OffsetDateTime,
) -> Result<Trade, TradeError> {
    let (trade, jobs) = shared.book.with(|book| {
        let (faults, trade) = at_cashier(shared, book, cashier_id)?;
        match trade.status {
            Some(status) if status.is_paid() => Err(TradeError::HasSuccess),
            _ if trade.awaiting_payment() => {
                trade.buyer.get_or_insert_with(new_buyer);
                let jobs = close_unpaid(shared, trade, &faults, now);
                Ok((trade.clone(), jobs))
            }
            _ => Ok((trade.clone(), Vec::new())),
        }
    })?;
    shared.delivery.dispatch(jobs);
    Ok(trade)
}

/// Time is up for an unpaid trade, waiting for payment or never logged in to. Alipay has no trade
/// to close in the second case; the simulator closes and notifies anyway, so that merchants can
/// test expiry without playing the buyer.
pub(crate) fn expire(shared: &Shared, app_id: &str, out_trade_no: &str, now: OffsetDateTime) {
    let jobs = shared.book.with(|book| {
        let faults = faults_for(shared, book, out_trade_no);
        match book.find_mut(app_id, out_trade_no) {
            Some(trade) if trade.awaiting_payment() => close_unpaid(shared, trade, &faults, now),
            _ => Vec::new(),
        }
    });
    shared.delivery.dispatch(jobs);
}

fn close_unpaid(
    shared: &Shared,
    trade: &mut Trade,
    faults: &Faults,
    now: OffsetDateTime,
) -> Vec<Job> {
    trade.trade_no.get_or_insert_with(|| ids::trade_no(now));
    trade.status = Some(TradeStatus::TradeClosed);
    trade.closed_at = Some(now);
    announce(
        shared,
        trade,
        NotificationKind::Close,
        Event::Closed,
        faults,
        now,
    )
    .into_iter()
    .collect()
}

/// A trade Alipay knows of: one the buyer logged in to, scanned, paid or closed; not one only
/// shown at the cashier or as a QR code.
pub(crate) fn find(shared: &Shared, app_id: &str, by: &TradeRef) -> Result<Trade, TradeError> {
    shared.book.with(|book| {
        book.by_ref_mut(app_id, by)
            .filter(|t| t.status.is_some())
            .map(|t| t.clone())
            .ok_or(TradeError::NotExist)
    })
}

/// `alipay.trade.close`: only a trade waiting for payment can be closed. A trade nobody logged in
/// to (or scanned) does not exist yet, and stays payable (as at Alipay).
pub(crate) fn close(
    shared: &Shared,
    app_id: &str,
    by: &TradeRef,
    now: OffsetDateTime,
) -> Result<Trade, TradeError> {
    let (trade, jobs) = shared.book.with(|book| {
        let out_trade_no = book
            .by_ref_mut(app_id, by)
            .filter(|t| t.status.is_some())
            .ok_or(TradeError::NotExist)?
            .out_trade_no
            .clone();
        let faults = faults_for(shared, book, &out_trade_no);
        let trade = book.by_ref_mut(app_id, by).ok_or(TradeError::NotExist)?;
        if trade.status != Some(TradeStatus::WaitBuyerPay) {
            return Err(TradeError::StatusError);
        }
        let jobs = close_unpaid(shared, trade, &faults, now);
        Ok((trade.clone(), jobs))
    })?;
    shared.delivery.dispatch(jobs);
    Ok(trade)
}
