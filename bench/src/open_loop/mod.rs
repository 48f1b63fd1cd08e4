//! The open loop (`--rate`): each request is sent at its intended time from the schedule whether
//! or not earlier replies came back, and its latency runs from that intended time to the end of
//! its reply. A closed loop sends the next request only when a reply frees its worker, so while
//! the service stalls it stops sending and the stall shows up in one request's latency instead
//! of every request that would have arrived meanwhile ("coordinated omission"); here waiting for
//! a free connection, or for the generator itself, counts as the request's latency too.

mod connections;
pub mod figures;
pub mod schedule;
mod stalls;
#[cfg(test)]
mod tests;
mod timeline;

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::task::JoinHandle;

use crate::load::TIMEOUT;
use connections::Connections;
use schedule::{Schedule, Slot};

/// What happened to one request; times are from the start of the run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When it was meant to be sent.
    pub intended: Duration,
    /// When the generator got round to it (late if the generator itself fell behind).
    pub dispatched: Duration,
    /// When it got a connection and went out; `None` if it never got one.
    pub sent: Option<Duration>,
    /// When its reply had been read, or it failed.
    pub done: Duration,
    pub reply: Reply,
}

impl Outcome {
    /// From the intended send time to the end of the reply.
    pub fn latency(&self) -> Duration {
        self.done.saturating_sub(self.intended)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `200 success`.
    Success,
    /// Any other reply, as `status body` (the body cut to 40 characters).
    Other(String),
    /// No reply: a transport error or a timeout, by kind.
    Error(String),
}

/// Sends `bodies[i]` at slot `i` of `schedule` (timed from `start`) to `url`, over at most
/// `connections` keep-alive connections, and waits for every reply (or its timeout, 30 s after
/// its intended time). Outcomes come back in schedule order.
pub async fn run(
    start: Instant,
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<Vec<Arc<[u8]>>>,
    schedule: &Schedule,
    connections: usize,
    progress: &ProgressBar,
) -> Vec<Outcome> {
    debug_assert_eq!(bodies.len(), schedule.requests());
    let pacer = Pacer {
        runtime: tokio::runtime::Handle::current(),
        connections: Connections::new(client, url, connections),
        progress: progress.clone(),
        start,
    };
    let slots: Vec<Slot> = schedule.slots().collect();
    let requests = tokio::task::spawn_blocking(move || pacer.send_all(&slots, &bodies))
        .await
        .expect("the pacer does not panic");
    let mut outcomes = Vec::with_capacity(requests.len());
    for (request, slot) in requests.into_iter().zip(schedule.slots()) {
        outcomes.push(request.await.unwrap_or_else(|error| Outcome {
            intended: slot.at,
            dispatched: slot.at,
            sent: None,
            done: start.elapsed(),
            reply: Reply::Error(format!("request task: {error}")),
        }));
    }
    outcomes
}

/// Starts each request at its time, from a thread of its own: a thread's sleep wakes within
/// tens of microseconds, tokio's timer only on its next millisecond, which would add about a
/// millisecond of the generator's own lag to every latency.
struct Pacer {
    runtime: tokio::runtime::Handle,
    connections: Arc<Connections>,
    progress: ProgressBar,
    start: Instant,
}

impl Pacer {
    fn send_all(&self, slots: &[Slot], bodies: &[Arc<[u8]>]) -> Vec<JoinHandle<Outcome>> {
        let mut requests = Vec::with_capacity(slots.len());
        for (&slot, body) in slots.iter().zip(bodies) {
            let wait = (self.start + slot.at).saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            let (start, connections, body, progress) = (
                self.start,
                self.connections.clone(),
                body.clone(),
                self.progress.clone(),
            );
            requests.push(self.runtime.spawn(async move {
                let outcome = send(start, slot, &connections, &body).await;
                progress.inc(1);
                outcome
            }));
        }
        requests
    }
}

/// One request: a connection, the exchange, the verdict; all within `TIMEOUT` of its slot.
async fn send(start: Instant, slot: Slot, connections: &Arc<Connections>, body: &[u8]) -> Outcome {
    let dispatched = start.elapsed();
    let deadline = tokio::time::Instant::from_std(start + slot.at + TIMEOUT);
    let mut sent = None;
    let reply = match tokio::time::timeout_at(deadline, connections.lease()).await {
        Err(_) => Reply::Error("timeout waiting for a connection".into()),
        Ok(lease) => {
            sent = Some(start.elapsed());
            match tokio::time::timeout_at(deadline, lease.post(body)).await {
                Err(_) => Reply::Error(format!(
                    "timeout ({} s) awaiting the reply",
                    TIMEOUT.as_secs()
                )),
                Ok(Err(failure)) => Reply::Error(failure.kind()),
                Ok(Ok((200, text))) if text == "success" => Reply::Success,
                Ok(Ok((status, text))) => Reply::Other(format!(
                    "{status} {}",
                    text.chars().take(40).collect::<String>()
                )),
            }
        }
    };
    Outcome {
        intended: slot.at,
        dispatched,
        sent,
        done: start.elapsed(),
        reply,
    }
}
