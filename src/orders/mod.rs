//! Orders: the model, the state machine that moves them, and the stores that keep them.

mod batch;
pub mod input;
pub mod model;
mod postgres;
pub mod repository;
mod sqlite;
pub mod state;

pub use model::{
    AnomalyReason, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent, Refund,
    RefundStatus, Source, Verdict,
};
pub use repository::{
    connect, connect_existing, AuditEntry, Created, OrderStore, RefundRefused, RefundStart,
    StoreError,
};
