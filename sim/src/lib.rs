//! A simulated Alipay gateway, for tests and local development where nobody can reach the real
//! one. On the wire it behaves like Alipay, for all four ways a buyer pays (`Product`): it checks
//! signed requests as the gateway does; shows the desktop cashier (page pay), the phone cashier
//! (wap pay) and the app SDK's cashier for an order string (app pay) with Log in, Pay and Cancel;
//! answers precreate with a QR code whose phone page offers Scan, then Pay and Cancel; redirects to
//! return_url with signed parameters; and POSTs signed notifications to notify_url on Alipay's
//! retry schedule. Fault knobs make deliveries fail, repeat, race or arrive out of order on
//! purpose.
//!
//! Reading guide:
//! - [`config`] and [`faults`]: what a simulator starts with.
//! - `server`: [`Simulator`] and the [`SimHandle`] tests hold.
//! - `routes`: the HTTP surface; `gateway` checks requests, `biz` reads biz_content, `api`
//!   answers precreate, query, close and refund calls, `buyer` serves what a buyer's browser or
//!   phone asks for (cashier, app SDK, QR page, and their buttons).
//! - `layout` is the frame of every page; `cashier` draws the cashiers and the QR page,
//!   `notices` the error, closed and paid pages.
//! - `lifecycle` and `refunds`: the business rules, failing with a [`TradeError`]; `trades` the
//!   in-memory trade book.
//! - `callbacks` signs what goes back to the merchant; `delivery` sends notifications.
//! - [`pki`]: certificate mode (公钥证书模式): the simulated Alipay's CAs, its rotating certificate,
//!   the apps' certificates and the three files an app is given.
//! - [`command`]: the `alipay-sim` binary's flags; [`keystore`] keeps its keypair on disk.
//! - [`demo`]: `alipay-demo`, the service and the simulator side by side with no configuration;
//!   [`shop`]: the demo shop's webhook endpoint, which verifies what the service tells it.

mod api;
mod biz;
mod buyer;
mod callbacks;
mod cashier;
pub mod command;
pub mod config;
mod delivery;
pub mod demo;
pub mod faults;
mod gateway;
mod gateway_error;
mod ids;
pub mod keystore;
mod layout;
mod lifecycle;
mod notices;
pub mod pki;
mod refunds;
mod routes;
mod server;
pub mod shop;
mod trade_error;
mod trades;

pub use config::{RegisteredApp, SimConfig};
pub use delivery::{ATTEMPTS, RETRY_DELAYS};
pub use faults::Faults;
pub use gateway::{ApiMethod, TIMESTAMP_TOLERANCE};
pub use gateway_error::GatewayError;
pub use pki::{CertFiles, IssuedCert, Pki, PkiError, Rotation, Validity};
pub use server::{SimError, SimHandle, Simulator};
pub use trade_error::TradeError;
pub use trades::{
    Attempt, AttemptOutcome, Buyer, DeliveryState, NotificationKind, NotificationRecord, Refund,
    Trade,
};
