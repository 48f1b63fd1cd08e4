//! Interoperability of the signing module with Alipay's RSA2, proved against material made
//! independently of our code: the vectors in `tests/vectors/` (built by `make.sh` with the openssl
//! CLI and python3's standard library, `products.json` by a real Alipay SDK, `certs.json` by the JDK
//! and npm's alipay-sdk), and openssl and python3 run at test time.
//!
//! The openssl and python3 binaries are required. A missing one fails the test with a message; it
//! is never a reason to skip.

mod vectors;

mod callbacks;
mod certs;
mod keys;
mod page_pay;
mod precreate;
mod products;
mod responses;
mod sdk;
