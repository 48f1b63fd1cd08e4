//! `alipay.trade.refund`: partial and full refunds of a paid trade. An out_request_no is
//! idempotent, the refunded sum never exceeds the total, a full refund closes the trade, and each
//! new refund sends a notification (TRADE_SUCCESS with refund_fee, or TRADE_CLOSED when full).

use time::OffsetDateTime;

use super::biz::RefundRequest;
use super::callbacks::Event;
use super::lifecycle::{announce, faults_for};
use super::server::Shared;
use super::trade_error::TradeError;
use super::trades::{NotificationKind, Refund, Trade};
use alipay_notify::alipay::notification::TradeStatus;

pub(crate) struct Refunded {
    pub trade: Trade,
    pub refund: Refund,
    /// False when this out_request_no was already refunded: no money moved this time.
    pub fund_change: bool,
}

pub(crate) fn refund(
    shared: &Shared,
    app_id: &str,
    request: &RefundRequest,
    now: OffsetDateTime,
) -> Result<Refunded, TradeError> {
    let (refunded, job) = shared.book.with(|book| {
        let out_trade_no = book
            .by_ref_mut(app_id, &request.trade)
            .filter(|t| t.status.is_some())
            .ok_or(TradeError::NotExist)?
            .out_trade_no
            .clone();
        let faults = faults_for(shared, book, &out_trade_no);
        let trade = book
            .by_ref_mut(app_id, &request.trade)
            .ok_or(TradeError::NotExist)?;
        if let Some(previous) = repeated(trade, request)? {
            return Ok((previous, None));
        }
        let refund = apply(trade, request, now)?;
        let event = Event::Refunded(refund.clone());
        let job = announce(shared, trade, NotificationKind::Refund, event, &faults, now);
        let trade = trade.clone();
        let done = Refunded {
            trade,
            refund,
            fund_change: true,
        };
        Ok((done, job))
    })?;
    shared.delivery.dispatch(job.into_iter().collect());
    Ok(refunded)
}

/// The earlier answer to the same out_request_no, which must ask for the same amount. Checked
/// before the status, so that repeating the request that fully refunded (and closed) still works.
fn repeated(trade: &Trade, request: &RefundRequest) -> Result<Option<Refunded>, TradeError> {
    let Some(previous) = trade
        .refunds
        .iter()
        .find(|r| r.out_request_no == request.out_request_no)
    else {
        return Ok(None);
    };
    if previous.amount != request.amount {
        return Err(TradeError::DiscordantRepeat);
    }
    Ok(Some(Refunded {
        trade: trade.clone(),
        refund: previous.clone(),
        fund_change: false,
    }))
}

/// Records a new refund if the trade can take it; the one that reaches the total closes it.
fn apply(
    trade: &mut Trade,
    request: &RefundRequest,
    now: OffsetDateTime,
) -> Result<Refund, TradeError> {
    match trade.status {
        Some(TradeStatus::TradeSuccess) => {}
        Some(TradeStatus::TradeFinished) => return Err(TradeError::HasFinished),
        _ => return Err(TradeError::StatusError),
    }
    if trade.refunded() + request.amount.fen() > trade.total_amount.fen() {
        return Err(TradeError::RefundExceedsTotal);
    }
    let refund = Refund {
        out_request_no: request.out_request_no.clone(),
        amount: request.amount,
        reason: request.reason.clone(),
        at: now,
    };
    trade.refunds.push(refund.clone());
    if trade.refunded() == trade.total_amount.fen() {
        trade.status = Some(TradeStatus::TradeClosed);
        trade.closed_at = Some(now);
    }
    Ok(refund)
}
