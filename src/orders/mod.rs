//! Orders: the model, the state machine that moves them, and the stores that keep them.

mod batch;
pub(crate) mod input;
pub(crate) mod model;
mod postgres;
pub(crate) mod repository;
mod sqlite;
pub(crate) mod state;

pub use model::{
    AnomalyReason, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent, Refund,
    RefundStatus, Source, Verdict,
};
pub use repository::{
    connect, connect_existing, AuditEntry, Created, OrderStore, RefundRefused, RefundStart,
    StoreError,
};
