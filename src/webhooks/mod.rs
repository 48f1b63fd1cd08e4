//! Webhooks: events delivered to the merchant's endpoints, signed per the Standard Webhooks
//! specification (standardwebhooks.com), at least once, with retries that span about three days.
//!
//! - [`signature`]: `whsec_` secrets, and the `webhook-signature` header made and checked.
//! - [`endpoint`]: the configured endpoints and the retry schedule.
//! - [`dispatch`]: the task per endpoint that leases due deliveries, sends them and records
//!   every attempt.

pub mod dispatch;
pub mod endpoint;
pub mod signature;

pub use dispatch::Dispatcher;
pub use endpoint::{Endpoint, EndpointError, RetrySchedule};
pub use signature::{SignatureError, WebhookSecret};
