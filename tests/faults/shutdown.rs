//! SIGTERM while notifications are in flight: accepted requests are answered, new connections
//! are refused, and the process exits 0 soon after.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ledger::{self, assert_whole, reply_counts, tally};
use crate::service::{client, Service};
use crate::traffic::{
    create_orders, flood, notification, order_numbers, reached, Delivery, Reply, Sent,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_accepted_requests_refuses_new_ones_and_exits_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    let client = client();
    let mut service = Service::start(&url).await;
    let numbers = order_numbers("TERM", 83);
    create_orders(&client, &service.base(), &numbers).await;
    let (slow_orders, flooded) = numbers.split_at(3);

    // Slow clients: the request head and half the body now, the rest after SIGTERM.
    let slow: Vec<SlowClient> = slow_orders
        .iter()
        .map(|no| SlowClient::open(service.port, notification(no)))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // And a flood in flight: 80 notifications, 16 connections at a time.
    let jobs = flooded.iter().map(|no| vec![notification(no)]).collect();
    let successes = Arc::new(AtomicUsize::new(0));
    let flooding = tokio::spawn({
        let (client, bases, successes) = (client.clone(), vec![service.base()], successes.clone());
        async move { flood(&client, &bases, jobs, 16, successes).await }
    });
    assert!(
        reached(&successes, 15, Duration::from_secs(30)).await,
        "the flood did not get going"
    );

    service.terminate();
    let terminated = Instant::now();
    let refused = refused_within(service.port, Duration::from_secs(3)).await;
    assert!(
        refused.is_some(),
        "new connections were still accepted 3 s after SIGTERM"
    );
    assert!(
        service.exited().is_none(),
        "the service exited with requests still being received"
    );
    let answers: Vec<(Delivery, String)> =
        tokio::task::block_in_place(|| slow.into_iter().map(SlowClient::finish).collect());
    let sent = flooding.await.expect("the flood");
    let status = service.wait_exit(Duration::from_secs(5)).await;
    let exited_after = terminated.elapsed();
    eprintln!(
        "shutdown: refused new connections {:?} after SIGTERM, exited {:?} after it with {status:?}; \
         flood {:?} success/fail/no answer",
        refused.unwrap_or_default(),
        exited_after,
        reply_counts(&sent)
    );

    for (delivery, answer) in &answers {
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("\r\n\r\nsuccess"),
            "slow request for {} was not answered `success`: {answer:?}",
            delivery.no
        );
    }
    let cut_short: Vec<_> = sent
        .iter()
        .filter(|s| matches!(s.reply, Reply::Refused { .. }))
        .map(|s| (&s.delivery.no, &s.reply))
        .collect();
    assert!(
        cut_short.is_empty(),
        "requests answered other than `success` during shutdown: {cut_short:?}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the service must exit 0 within 5 s of the last request; got {status:?}"
    );

    let slow_sent = answers.into_iter().map(|(delivery, _)| Sent {
        delivery,
        sent_at: terminated,
        reply: Reply::Success,
    });
    let unanswered: Vec<&String> = sent
        .iter()
        .filter(|s| matches!(s.reply, Reply::NoAnswer(_)))
        .map(|s| &s.delivery.no)
        .collect();
    let all: Vec<Sent> = sent.iter().cloned().chain(slow_sent).collect();
    let stored = ledger::read(&url, &numbers).await;
    assert_whole(&stored, &tally(&all));
    // A request without an answer must not have been accepted: had it been processed, its
    // answer was lost in the shutdown.
    let processed_unanswered: Vec<_> = unanswered
        .iter()
        .filter(|no| stored[**no].rows > 0)
        .collect();
    let errors: std::collections::BTreeSet<&str> = sent
        .iter()
        .filter_map(|s| match &s.reply {
            Reply::NoAnswer(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    eprintln!("shutdown: no-answer errors seen: {errors:?}");
    assert!(
        processed_unanswered.is_empty(),
        "requests processed (audit row written) whose answer never came: {processed_unanswered:?}"
    );
}

/// Polls until a connection attempt is refused; how long after the start that was.
async fn refused_within(port: u16, within: Duration) -> Option<Duration> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let started = Instant::now();
    while started.elapsed() < within {
        let attempt = TcpStream::connect_timeout(&address, Duration::from_millis(200));
        if matches!(&attempt, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused) {
            return Some(started.elapsed());
        }
        drop(attempt);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A client that sends its request head and half the body, then waits to be told to go on.
struct SlowClient {
    stream: TcpStream,
    delivery: Delivery,
}

impl SlowClient {
    fn open(port: u16, delivery: Delivery) -> Self {
        let body = delivery.body.as_bytes();
        let head = format!(
            "POST /alipay/notify HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("slow client connects");
        stream.write_all(head.as_bytes()).expect("send head");
        stream
            .write_all(&body[..body.len() / 2])
            .expect("send first half");
        Self { stream, delivery }
    }

    /// Sends the rest of the body and reads the whole response (bounded by a read timeout).
    fn finish(mut self) -> (Delivery, String) {
        let body = self.delivery.body.as_bytes();
        let rest = self.stream.write_all(&body[body.len() / 2..]);
        let mut response = Vec::new();
        if rest.is_ok() {
            let _ = self.stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = self.stream.read_to_end(&mut response);
        }
        let text = String::from_utf8_lossy(&response).into_owned();
        (self.delivery, text)
    }
}
