//! Orders: the model, the state machine that moves them, and the stores that keep them.
//!
//! - [`model`]: orders, refunds and the events that move them; [`input`] checks what callers ask.
//! - [`state`]: the transition one event makes; `plan`: what a batch of events writes (pure).
//! - [`actions`]: the audit trail of what operators did through the console.
//! - [`stats`]: counts, the most overdue order and anomalies for the console's overview.
//! - [`query`]: filters and keyset pages for lists people read.
//! - [`repository`]: the `OrderStore` trait, its errors and shared types, and `connect`.
//! - [`timeline`]: the story of one order (messages, refunds, webhooks) for the CLI and the
//!   console; `recorded`: what a message in the audit log said, read back from its bytes.
//! - [`events`]: what happened to an order, written in the same transaction (the outbox);
//!   [`outbox`]: the feed and webhook deliveries read back, the `EventStore` trait.
//! - `postgres`, `sqlite`: each backend's own SQL next to its binds; `shared`: the statements
//!   both run alike, written once; `rows`: rows decoded into the model; `batch`: group commit.

pub mod actions;
mod batch;
pub mod events;
pub(crate) mod input;
pub(crate) mod model;
pub mod outbox;
mod plan;
mod postgres;
pub mod query;
mod recorded;
pub(crate) mod repository;
mod rows;
mod shared;
mod sqlite;
pub(crate) mod state;
pub mod stats;
pub mod timeline;

pub use model::{
    AnomalyReason, NewOrder, NewRefund, Order, OrderDocument, OrderStatus, Outcome, PaymentEvent,
    Refund, RefundStatus, Source, Verdict,
};
pub use outbox::EventStore;
pub use repository::{
    connect, connect_existing, AuditEntry, Created, OrderStore, RefundRefused, RefundStart,
    StoreError,
};
pub use timeline::{OrderHistory, Timeline, TimelineEntry};
