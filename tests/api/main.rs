//! Integration tests: each starts the real service on a random port, on SQLite and on Postgres,
//! and talks HTTP to it.

mod helpers;

mod hostile;

mod certs;
mod checkout;
mod cli;
mod console;
mod events;
mod gateway;
mod notify;
mod ops;
mod orders_api;
mod payflow;
mod product_payments;
mod products;
mod reconcile;
mod refunds;
mod webhooks;
