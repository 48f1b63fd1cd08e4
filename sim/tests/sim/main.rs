//! The simulated Alipay gateway, spoken to over HTTP the way a merchant's server, a buyer's browser
//! and Alipay's notify client would. Each test starts its own simulator on port 0 and, where it
//! needs one, a tiny notify_url receiver on port 0.

mod receiver;
mod support;

mod cashier;
mod certs;
mod faults;
mod notifications;
mod products;
mod refunds;
mod trades;
mod waiting;
