//! alipay-notify: take Alipay page payments safely.
//!
//! A reading guide:
//! - [`alipay`]: the protocol. Keys, sign strings, signed page-pay URLs, verified callbacks.
//! - [`money`]: amounts as integer fen.
//! - [`orders`]: the order model, its state machine, and the Postgres and SQLite stores.
//! - [`notify`]: the notify path, from raw body to committed verdict.
//! - [`reconcile`], [`refunds`]: asking Alipay about pending orders; refunding paid ones.
//! - [`http`]: routes, state and middleware; errors become responses in one place.
//! - [`metrics`]: Prometheus counters and histograms for ops.
//! - [`config`], [`startup`], [`telemetry`], [`cli`]: settings, wiring and the command line.
//! - [`sim`]: a simulated Alipay gateway for tests and local development (`alipay-notify sim`).
//! - [`bench`]: the load benchmark of the whole notify path (`alipay-notify bench`).

pub mod alipay;
pub mod bench;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod orders;
pub mod reconcile;
pub mod refunds;
pub mod sim;
pub mod startup;
pub mod telemetry;
