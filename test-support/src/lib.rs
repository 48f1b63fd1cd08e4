//! What more than one test crate needs, written once. A dev-dependency only: nothing here may
//! reach the service's production dependency tree.
//!
//! - [`keys`]: RSA keys for the app, "Alipay" and a forger, generated once per test binary.
//! - [`form`]: form bodies as Alipay and browsers encode them, and signed the way Alipay signs.
//! - [`html`]: reading the simulator's cashier page.
//! - [`webhooks`]: checking a delivery's Standard Webhooks signature as a receiver would.
//! - [`net`]: loopback ports for child processes that must be told where to listen.
//! - [`tools`]: the openssl CLI (and any required tool), for signatures made without our code.

pub mod form;
pub mod html;
pub mod keys;
pub mod net;
pub mod tools;
pub mod webhooks;
