//! alipay-notify: take Alipay page payments safely.
//!
//! A reading guide:
//! - [`alipay`]: the protocol. Keys, sign strings, signed page-pay URLs, verified callbacks.
//! - [`money`]: amounts as integer fen.
//! - [`orders`]: the order model, its state machine, and the Postgres and SQLite stores.
//! - [`notify`]: the notify path, from raw body to committed verdict.
//! - [`reconcile`], [`refunds`]: asking Alipay about pending orders; refunding paid ones.
//! - [`webhooks`]: events delivered to the merchant's endpoints, signed (Standard Webhooks).
//! - [`http`]: routes, state and middleware; errors become responses in one place.
//! - [`metrics`]: Prometheus counters and histograms for ops.
//! - [`config`], [`startup`], [`telemetry`], [`cli`]: settings, wiring and the command line;
//!   [`report`] prints an error with its causes, each once.
//!
//! The simulated Alipay and the demo live in the `alipay-sim` crate (`sim/`), the load generator
//! in `alipay-notify-bench` (`bench/`): neither is compiled into the service.

#![forbid(unsafe_code)]

pub mod alipay;
pub mod cli;
pub mod config;
pub mod http;
pub(crate) mod metrics;
pub mod money;
pub(crate) mod notify;
pub mod orders;
pub mod reconcile;
pub mod refunds;
pub mod report;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
