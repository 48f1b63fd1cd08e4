//! Reconciliation: notifications get lost (a deploy at the wrong second, a firewall, a retry
//! window that ran out), so pending orders are also asked about (`alipay.trade.query`). What
//! the query says goes through the same idempotent transition as a notification.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::alipay::gateway::{GatewayClient, GatewayError, TradeQuery};
use crate::alipay::notification::TradeStatus;
use crate::alipay::response::Signed;
use crate::alipay::Alipay;
use crate::metrics::Metrics;
use crate::money::Amount;
use crate::orders::{Order, OrderStore, Outcome, PaymentEvent, StoreError, Verdict};
use crate::report::Report;

/// How often and how eagerly pending orders are reconciled.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub interval: Duration,
    /// Orders younger than this are left to their notification.
    pub grace: Duration,
    pub batch: i64,
}

/// What reconciling one order found and did.
#[derive(Debug)]
pub enum Reconciled {
    /// Alipay's answer went through the transition (paid, closed or already known).
    Applied(Box<Outcome>),
    /// Not paid yet and not expired: nothing to do until next time.
    Waiting(&'static str),
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Alipay reported an unknown trade status `{0}`")]
    UnknownStatus(String),
    #[error("Alipay reported an unreadable total_amount `{0}`")]
    BadAmount(String),
    #[error("Alipay answered about another order, `{0}`")]
    OtherOrder(String),
}

pub struct Reconciler {
    pub alipay: Arc<Alipay>,
    pub store: Arc<dyn OrderStore>,
    pub gateway: Arc<GatewayClient>,
    pub metrics: Arc<Metrics>,
}

impl Reconciler {
    /// Runs every `schedule.interval` until `shutdown` resolves.
    pub async fn run(self, schedule: Schedule, shutdown: impl std::future::Future<Output = ()>) {
        let mut ticker = tokio::time::interval(schedule.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = ticker.tick() => {}
            }
            // Stopping mid-run is safe: each order's update is one transaction.
            tokio::select! {
                _ = &mut shutdown => return,
                result = self.run_once(schedule) => {
                    if let Err(error) = result {
                        self.metrics.database_error("reconcile");
                        tracing::error!(error = ?error, "reconciliation run failed");
                    }
                }
            }
        }
    }

    /// Claims a batch of stale pending orders (leased for one interval, so another instance
    /// skips them) and reconciles each.
    pub(crate) async fn run_once(&self, schedule: Schedule) -> Result<usize, StoreError> {
        let now = OffsetDateTime::now_utc();
        let orders = self
            .store
            .claim_for_reconciliation(
                now,
                now - schedule.grace,
                now + schedule.interval,
                schedule.batch,
            )
            .await?;
        self.metrics.reconcile_run();
        for order in &orders {
            let outcome = self.reconcile(order).await;
            self.record(order, &outcome);
        }
        self.metrics
            .reconcile_finished(OffsetDateTime::now_utc(), orders.len());
        Ok(orders.len())
    }

    /// Logs and counts what reconciling `order` came to.
    fn record(&self, order: &Order, result: &Result<Reconciled, ReconcileError>) {
        let no = &order.out_trade_no;
        match result {
            Ok(Reconciled::Applied(outcome)) => {
                let status = outcome.order.as_ref().map(|o| o.status.as_str());
                let verdict = outcome.verdict.as_str();
                tracing::info!(out_trade_no = %no, verdict, status, "reconciled");
                self.metrics.reconciled(verdict);
                if let (Verdict::Applied, Some(status)) = (outcome.verdict, status) {
                    self.metrics.transition("query", status);
                }
            }
            Ok(Reconciled::Waiting(why)) => {
                tracing::debug!(out_trade_no = %no, why, "still pending");
                self.metrics.reconciled("waiting");
            }
            Err(error) => {
                tracing::warn!(out_trade_no = %no, error = %Report(error), "reconciliation failed");
                self.metrics.reconciled("error");
                if matches!(error, ReconcileError::Store(_)) {
                    self.metrics.database_error("reconcile");
                }
            }
        }
    }

    /// Asks Alipay about one order now and applies the answer; an expired unpaid one is closed.
    pub async fn reconcile(&self, order: &Order) -> Result<Reconciled, ReconcileError> {
        let expired = order.expires_at <= OffsetDateTime::now_utc();
        self.settle(order, expired).await
    }

    /// Closes a pending order before it expires (an operator's decision). Alipay is asked first:
    /// an order the buyer has paid meanwhile is marked paid, not closed.
    pub async fn close_now(&self, order: &Order) -> Result<Reconciled, ReconcileError> {
        self.settle(order, true).await
    }

    /// Applies Alipay's answer about `order`; an unpaid one is closed when `expired`.
    async fn settle(&self, order: &Order, expired: bool) -> Result<Reconciled, ReconcileError> {
        let query = match self.gateway.query(&self.alipay, &order.out_trade_no).await {
            Ok(query) => query,
            // The buyer never logged in to pay: no trade exists at Alipay yet.
            Err(error) if error.sub_code() == Some("ACQ.TRADE_NOT_EXIST") => {
                if !expired {
                    return Ok(Reconciled::Waiting("no trade at Alipay yet"));
                }
                return self.close(order, None).await;
            }
            Err(error) => return Err(error.into()),
        };
        let status = TradeStatus::parse(&query.value.trade_status)
            .ok_or_else(|| ReconcileError::UnknownStatus(query.value.trade_status.clone()))?;
        match status {
            TradeStatus::WaitBuyerPay if !expired => Ok(Reconciled::Waiting("buyer has not paid")),
            TradeStatus::WaitBuyerPay => self.close(order, Some(&query)).await,
            _ => Ok(Reconciled::Applied(Box::new(
                self.store
                    .apply(query_event(order, &query, status)?)
                    .await?,
            ))),
        }
    }

    /// Closes an expired trade at Alipay first (so it can no longer be paid), then the order.
    async fn close(
        &self,
        order: &Order,
        query: Option<&Signed<TradeQuery>>,
    ) -> Result<Reconciled, ReconcileError> {
        match self.gateway.close(&self.alipay, &order.out_trade_no).await {
            Ok(_) => {}
            Err(error) if error.sub_code() == Some("ACQ.TRADE_NOT_EXIST") => {}
            Err(error) => return Err(error.into()),
        }
        let event = match query {
            Some(query) => query_event(order, query, TradeStatus::TradeClosed)?,
            None => PaymentEvent::never_paid(order),
        };
        Ok(Reconciled::Applied(Box::new(
            self.store.apply(event).await?,
        )))
    }
}

fn query_event(
    order: &Order,
    query: &Signed<TradeQuery>,
    status: TradeStatus,
) -> Result<PaymentEvent, ReconcileError> {
    let trade = &query.value;
    // The signature covers the node, not the question: check it answers about this order.
    if trade.out_trade_no != order.out_trade_no {
        return Err(ReconcileError::OtherOrder(trade.out_trade_no.clone()));
    }
    let total_amount = Amount::parse(&trade.total_amount)
        .map_err(|_| ReconcileError::BadAmount(trade.total_amount.clone()))?;
    Ok(PaymentEvent::from_query(
        order,
        trade,
        status,
        total_amount,
        &query.raw,
    ))
}
