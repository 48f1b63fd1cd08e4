//! The open loop's connections: keep-alive connections opened as needed, at most `cap` at once.
//! A request first takes one of `cap` permits (waiting, first come first served, when all are
//! out), then an idle connection or a new one; the permit is returned with the connection, so
//! connections open never exceed the cap.

use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::load::{self, Plain};

pub struct Connections {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    how: How,
}

enum How {
    /// Bare hyper connections (plain `http://`, the cheap path, as the closed loop uses).
    Plain(Plain),
    /// Through reqwest (`https://`); the permits cap requests in flight, hence connections.
    Client {
        client: reqwest::Client,
        url: String,
    },
}

/// Why a request got no reply, by stage.
#[derive(Debug)]
pub enum Failure {
    Connect(anyhow::Error),
    Exchange(anyhow::Error),
}

impl Failure {
    /// A short kind for counting (`connect: connection refused`, `exchange: connection reset`,
    /// …), not the full message: under overload thousands differ only in addresses and ports.
    pub fn kind(&self) -> String {
        let (stage, error) = match self {
            Self::Connect(error) => ("connect", error),
            Self::Exchange(error) => ("exchange", error),
        };
        let io = error
            .chain()
            .find_map(|cause| cause.downcast_ref::<std::io::Error>());
        match io {
            Some(io) => format!("{stage}: {}", io.kind()),
            None => format!("{stage}: {error}"),
        }
    }
}

/// A permit to use one connection; the connection comes back to the idle list with it.
pub struct Lease {
    _permit: OwnedSemaphorePermit,
    connections: Arc<Connections>,
}

impl Connections {
    pub fn new(client: &reqwest::Client, url: &str, cap: usize) -> Arc<Self> {
        let how = match Plain::of(url) {
            Some(plain) => How::Plain(plain),
            None => How::Client {
                client: client.clone(),
                url: url.to_owned(),
            },
        };
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(cap.max(1))),
            idle: Mutex::new(Vec::new()),
            how,
        })
    }

    /// Waits for a free connection slot (in arrival order).
    pub async fn lease(self: &Arc<Self>) -> Lease {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Lease {
            _permit: permit,
            connections: self.clone(),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().expect("never poisoned");
        while let Some(sender) = idle.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }
}

impl Lease {
    /// POSTs `body` on an idle connection or a new one, and reads the whole reply. A connection
    /// that failed, or whose request was abandoned (this future dropped), is closed.
    pub async fn post(&self, body: &[u8]) -> Result<(u16, String), Failure> {
        let connections = &self.connections;
        match &connections.how {
            How::Plain(plain) => {
                let mut sender = match connections.take_idle() {
                    Some(sender) => sender,
                    None => load::connect(plain).await.map_err(Failure::Connect)?,
                };
                let exchange = load::post_form(&mut sender, plain, body)
                    .await
                    .map_err(Failure::Exchange)?;
                if exchange.keep_alive {
                    connections
                        .idle
                        .lock()
                        .expect("never poisoned")
                        .push(sender);
                }
                Ok((exchange.status, exchange.text))
            }
            How::Client { client, url } => load::post_reqwest(client, url, body.to_vec())
                .await
                .map_err(|error| match error.is_connect() {
                    true => Failure::Connect(error.into()),
                    false => Failure::Exchange(error.into()),
                }),
        }
    }
}
