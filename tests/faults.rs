//! Issue 5, "faults survived, nothing lost": the real `alipay-notify serve` binary as a child
//! process, configured only through its environment, spoken to over HTTP on 127.0.0.1, while its
//! database goes away, it is killed mid-flood, it is told to stop, or a second instance shares
//! its database. Afterwards every `success` it gave is backed by a committed row, and every order
//! is paid exactly once once Alipay's resends are answered.
//!
//! The Postgres tests fail, never skip, when Postgres is missing or unreachable.

#[path = "faults/ledger.rs"]
mod ledger;
#[path = "faults/postgres.rs"]
mod postgres;
#[path = "faults/service.rs"]
mod service;
#[path = "faults/traffic.rs"]
mod traffic;

#[path = "faults/crash.rs"]
mod crash;
#[path = "faults/edge.rs"]
mod edge;
#[path = "faults/hostile_text.rs"]
mod hostile_text;
#[path = "faults/instances.rs"]
mod instances;
#[path = "faults/outage.rs"]
mod outage;
#[path = "faults/shutdown.rs"]
mod shutdown;
#[path = "faults/webhooks.rs"]
mod webhooks;
