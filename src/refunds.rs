//! Refunds: recorded first (so the sum of refunds is checked against the paid amount in one
//! transaction), then requested from Alipay, then settled through the same transition as a
//! refund notification, whichever of the two arrives first.

use serde::Deserialize;
use time::OffsetDateTime;

use crate::alipay::gateway::{GatewayClient, GatewayError};
use crate::alipay::Alipay;
use crate::money::{Amount, AmountError};
use crate::orders::input::{has_control_characters, valid_out_trade_no};
use crate::orders::{
    NewRefund, OrderStore, PaymentEvent, Refund, RefundRefused, RefundStart, RefundStatus,
    StoreError,
};

/// A refund as the API receives it.
#[derive(Debug, Clone, Deserialize)]
pub struct RefundRequest {
    pub amount: String,
    pub reason: Option<String>,
    /// Makes retries idempotent; generated when absent (then a retry is a new refund).
    pub out_request_no: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("amount")]
    Amount(#[from] AmountError),
    #[error("out_request_no must be 1 to 64 letters, digits or underscores")]
    OutRequestNo,
    #[error("reason must be at most 256 characters, without control characters")]
    Reason,
    #[error(transparent)]
    Refused(#[from] RefundRefused),
    #[error("refund {0} was refused by Alipay earlier; use a new out_request_no")]
    AlreadyFailed(String),
    /// Alipay answered with a business error: the refund is marked failed.
    #[error("Alipay refused the refund: {0}")]
    Rejected(GatewayError),
    /// No verified answer: the refund stays pending; retrying with the same out_request_no is safe.
    #[error("refund outcome unknown ({0}); retry with the same out_request_no")]
    Unknown(GatewayError),
    /// A verified answer about another order: not believed; the refund stays pending.
    #[error("Alipay's refund answer is about order {0}; retry with the same out_request_no")]
    OtherOrder(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Requests a refund of `out_trade_no` and returns the refund as now recorded.
pub async fn refund(
    alipay: &Alipay,
    store: &dyn OrderStore,
    gateway: &GatewayClient,
    out_trade_no: &str,
    request: RefundRequest,
) -> Result<Refund, RefundError> {
    let new = validate(out_trade_no, request)?;
    let refund = match store.begin_refund(&new).await?? {
        RefundStart::Existing(refund) if refund.status == RefundStatus::Succeeded => {
            return Ok(refund)
        }
        RefundStart::Existing(refund) if refund.status == RefundStatus::Failed => {
            return Err(RefundError::AlreadyFailed(refund.out_request_no))
        }
        RefundStart::Existing(refund) | RefundStart::New(refund) => refund,
    };
    let amount = refund.amount.to_string();
    let reason = new.reason.as_deref();
    let answer = gateway
        .refund(
            alipay,
            out_trade_no,
            &amount,
            &refund.out_request_no,
            reason,
        )
        .await;
    let response = match answer {
        Ok(response) => response,
        Err(
            error @ GatewayError::Response(crate::alipay::response::ResponseError::Business {
                ..
            }),
        ) => {
            store
                .fail_refund(
                    out_trade_no,
                    &refund.out_request_no,
                    OffsetDateTime::now_utc(),
                )
                .await?;
            return Err(RefundError::Rejected(error));
        }
        Err(error) => return Err(RefundError::Unknown(error)),
    };
    let order = store
        .order(out_trade_no)
        .await?
        .ok_or(RefundRefused::NotFound)?;
    let event = PaymentEvent::from_refund(
        &order,
        &response.value,
        &refund.out_request_no,
        &response.raw,
    );
    let outcome = store.apply(event).await?;
    tracing::info!(
        out_trade_no,
        out_request_no = %refund.out_request_no,
        verdict = outcome.verdict.as_str(),
        "refund settled"
    );
    let refunds = store.refunds(out_trade_no).await?;
    Ok(refunds
        .into_iter()
        .find(|r| r.out_request_no == refund.out_request_no)
        .unwrap_or(refund))
}

fn validate(out_trade_no: &str, request: RefundRequest) -> Result<NewRefund, RefundError> {
    if !valid_out_trade_no(out_trade_no) {
        return Err(RefundRefused::NotFound.into());
    }
    let now = OffsetDateTime::now_utc();
    let out_request_no = match request.out_request_no.filter(|s| !s.is_empty()) {
        Some(given) if valid_out_trade_no(&given) => given,
        Some(_) => return Err(RefundError::OutRequestNo),
        None => format!("R{}", crate::orders::input::generate_out_trade_no(now)),
    };
    let reason = request.reason.filter(|r| !r.trim().is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 256 || has_control_characters(r))
    {
        return Err(RefundError::Reason);
    }
    Ok(NewRefund {
        out_trade_no: out_trade_no.to_owned(),
        out_request_no,
        amount: Amount::parse(request.amount.trim())?,
        reason,
        requested_at: now,
    })
}
