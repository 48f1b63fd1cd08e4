//! The notify path: from the raw body Alipay POSTs to a committed verdict. Nothing is trusted
//! before its signature is verified, and nothing verified changes an order unless it matches it.

use time::OffsetDateTime;

use crate::alipay::callback::{CallbackError, Verified};
use crate::alipay::form::{FormError, RawParams};
use crate::alipay::notification::Notification;
use crate::alipay::Alipay;
use crate::orders::{
    AnomalyReason, AuditEntry, OrderStore, Outcome, PaymentEvent, Source, StoreError, Verdict,
};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("content type is not application/x-www-form-urlencoded")]
    ContentType,
    #[error("malformed body")]
    Malformed(#[from] FormError),
    #[error("rejected: {0}")]
    Rejected(CallbackError),
    /// Genuine but inconsistent with our records; recorded, order untouched.
    #[error("anomaly: {reason}")]
    Anomaly {
        reason: AnomalyReason,
        out_trade_no: Option<String>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NotifyError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ContentType => "content_type",
            Self::Malformed(_) => "malformed",
            Self::Rejected(e) => e.reason(),
            Self::Anomaly { reason, .. } => reason.as_str(),
            Self::Store(_) => "database",
        }
    }
}

/// A notification whose effect is committed: the verdict, and what names it in the log.
#[derive(Debug)]
pub struct Handled {
    pub outcome: Outcome,
    pub out_trade_no: String,
    pub notify_id: Option<String>,
}

/// Verifies, checks and applies one notification body. `Ok` means its effect (or the fact that
/// it changes nothing) is committed and Alipay may be told `success`.
pub async fn handle(
    alipay: &Alipay,
    store: &dyn OrderStore,
    body: &[u8],
    received_at: OffsetDateTime,
) -> Result<Handled, NotifyError> {
    let raw = RawParams::parse(body)?;
    let verified = alipay.verify_callback(&raw).map_err(|e| match e {
        CallbackError::Form(form) => NotifyError::Malformed(form),
        other => NotifyError::Rejected(other),
    })?;
    let event = match check(alipay, &verified, body, received_at) {
        Ok(event) => event,
        Err(reason) => {
            let entry = audit_entry(&verified, body, received_at);
            store.record_anomaly(&entry, reason).await?;
            return Err(NotifyError::Anomaly {
                reason,
                out_trade_no: entry.out_trade_no,
            });
        }
    };
    let out_trade_no = event.out_trade_no.clone();
    let notify_id = event.notify_id.clone();
    let outcome = store.apply(event).await?;
    match (outcome.verdict, outcome.reason) {
        (Verdict::Anomaly, reason) => Err(NotifyError::Anomaly {
            reason: reason.unwrap_or(AnomalyReason::UnknownOrder),
            out_trade_no: Some(out_trade_no),
        }),
        _ => Ok(Handled {
            outcome,
            out_trade_no,
            notify_id,
        }),
    }
}

/// The checks Alipay requires of merchants that need no database: the message is complete, and
/// it is addressed to our app and (when configured) our seller account.
fn check(
    alipay: &Alipay,
    verified: &Verified,
    body: &[u8],
    received_at: OffsetDateTime,
) -> Result<PaymentEvent, AnomalyReason> {
    let notification =
        Notification::from_verified(verified).map_err(|_| AnomalyReason::IncompleteNotification)?;
    if notification.app_id != alipay.config.app_id {
        return Err(AnomalyReason::AppIdMismatch);
    }
    if let Some(seller) = &alipay.config.seller_id {
        if notification.seller_id.as_ref() != Some(seller) {
            return Err(AnomalyReason::SellerIdMismatch);
        }
    }
    Ok(PaymentEvent::from_notification(
        notification,
        body,
        received_at,
    ))
}

fn audit_entry(verified: &Verified, body: &[u8], received_at: OffsetDateTime) -> AuditEntry {
    let field = |key| verified.get(key).map(str::to_owned);
    AuditEntry {
        source: Source::Notify,
        notify_id: field("notify_id"),
        out_trade_no: field("out_trade_no"),
        trade_status: field("trade_status"),
        raw: body.to_vec(),
        received_at,
    }
}
