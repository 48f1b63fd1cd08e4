//! Loopback ports for processes we start but cannot hand a listener to.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A loopback address nobody listens on right now: the OS picks the port, and the listener is
/// closed again so that a child process can bind it. Another process (or an outgoing connection,
/// which takes its port from the same range) may take it in between: a child that then fails to
/// start with [`address_was_taken`] output is started again on a fresh one. In-process servers
/// bind port 0 themselves instead.
pub fn free_address() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// [`free_address`]'s port.
pub fn free_port() -> u16 {
    free_address().port()
}

/// Whether a child's output says the address it was told to listen on was taken first.
pub fn address_was_taken(output: &str) -> bool {
    output.contains("Address already in use")
}
