//! Orders: the model, the state machine that moves them, and the stores that keep them.
//!
//! - [`model`]: orders, refunds and the events that move them; [`input`] checks what callers ask.
//! - [`state`]: the transition one event makes; `plan`: what a batch of events writes (pure).
//! - [`repository`]: the `OrderStore` trait, its errors and shared types, and `connect`.
//! - `postgres`, `sqlite`: each backend's own SQL next to its binds; `shared`: the statements
//!   both run alike, written once; `rows`: rows decoded into the model; `batch`: group commit.

mod batch;
pub(crate) mod input;
pub(crate) mod model;
mod plan;
mod postgres;
pub(crate) mod repository;
mod rows;
mod shared;
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
