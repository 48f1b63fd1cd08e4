//! The public edge under abuse (issue 11): connections that never finish a request, a low open
//! files limit, SIGTERM with unfinished connections, and the writer's Postgres backends killed.
//! Each test prints the figures it saw.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::postgres::SharedDatabase;
use crate::service::{client, Options, Service};
use crate::traffic::{create_orders, deliver, notification, order_numbers, Reply};

/// The test itself holds thousands of sockets.
fn raise_own_open_files_limit(at_least: u64) {
    let raised = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open files limit");
    assert!(
        raised >= at_least,
        "this test needs {at_least} open files; the hard limit allows {raised}"
    );
}

async fn open_idle(port: u16, count: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect an idle client");
        streams.push(stream);
    }
    streams
}

/// Whether the server has closed its end: a read finds EOF (or a reset) at once.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// A slowloris client: the request line, then one header line a second, never the blank line.
/// Returns how long after it started the server closed it (`None`: still open at `give_up`).
async fn slowloris(port: u16, give_up: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"POST /alipay/notify HTTP/1.1\r\nhost: x\r\n")
        .await
        .ok()?;
    let mut byte = [0u8; 1];
    while started.elapsed() < give_up {
        tokio::select! {
            read = stream.read(&mut byte) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return Some(started.elapsed());
                }
            }
            () = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.write_all(b"x-slow: 1\r\n").await.is_err() {
                    return Some(started.elapsed());
                }
            }
        }
    }
    None
}

async fn notify_succeeds_promptly(service: &Service, no: &str) -> Duration {
    let sent = deliver(&client(), &service.base(), &notification(no)).await;
    let took = sent.sent_at.elapsed();
    assert_eq!(sent.reply, Reply::Success, "{no}: {:?}", sent.reply);
    assert!(took < Duration::from_secs(3), "{no}: success took {took:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_connections_are_closed_and_notify_still_answers() {
    raise_own_open_files_limit(4_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    let timeout = Duration::from_secs(2);
    let options = Options::default()
        .env("HEADER_READ_TIMEOUT_SECONDS", timeout.as_secs())
        .env("KEEP_ALIVE_TIMEOUT_SECONDS", timeout.as_secs())
        .env("REQUEST_TIMEOUT_SECONDS", 5);
    let service = Service::start_with(&url, options).await;
    let numbers = order_numbers("EDGE", 2);
    create_orders(&client(), &service.base(), &numbers).await;

    let attack_started = Instant::now();
    let slow: Vec<_> = (0..200)
        .map(|_| tokio::spawn(slowloris(service.port, Duration::from_secs(15))))
        .collect();
    let mut idle = open_idle(service.port, 2_000).await;
    let opened_in = attack_started.elapsed();
    let during = notify_succeeds_promptly(&service, &numbers[0]).await;

    // Every idle connection's deadline has passed by `opened_in + timeout`; allow a grace.
    tokio::time::sleep_until(
        (attack_started + opened_in + timeout + Duration::from_secs(2)).into(),
    )
    .await;
    let mut idle_closed = 0;
    for stream in &mut idle {
        idle_closed += usize::from(closed_by_server(stream).await);
    }
    let mut slow_closed = Vec::new();
    for task in slow {
        if let Some(after) = task.await.expect("slowloris task") {
            slow_closed.push(after);
        }
    }
    let latest_slow = slow_closed.iter().max().copied().unwrap_or_default();
    eprintln!(
        "2,000 idle opened in {opened_in:?}; notify during the attack: success in {during:?}; \
         {timeout:?} + 2 s grace after the last was opened: {idle_closed} of 2,000 idle and \
         {} of 200 slowloris connections closed by the server (slowest after {latest_slow:?})",
        slow_closed.len()
    );
    assert!(
        idle_closed >= 1_800,
        "only {idle_closed} of 2,000 idle closed"
    );
    assert!(
        slow_closed.len() >= 180,
        "only {} of 200 slowloris connections closed",
        slow_closed.len()
    );
    assert!(
        latest_slow <= opened_in + timeout + Duration::from_secs(2),
        "a slowloris connection was closed only after {latest_slow:?}"
    );
    let after = notify_succeeds_promptly(&service, &numbers[1]).await;
    eprintln!("notify after the attack: success in {after:?}");
    let metrics = client()
        .get(service.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for reason in ["keep_alive_timeout", "header_read_timeout"] {
        assert!(
            metrics.contains(&format!(
                "alipay_notify_http_connections_closed_by_server_total{{reason=\"{reason}\"}}"
            )),
            "no {reason} in the metrics:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_soft_open_files_limit_of_1024_the_notify_url_answers_1100_idle_clients() {
    raise_own_open_files_limit(2_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    let options = Options {
        soft_open_files: Some(1_024),
        ..Options::default()
    };
    let service = Service::start_with(&url, options).await;
    let numbers = order_numbers("NOFILE", 1);
    create_orders(&client(), &service.base(), &numbers).await;

    let idle = open_idle(service.port, 1_100).await;
    let took = notify_succeeds_promptly(&service, &numbers[0]).await;

    let log = service.log();
    let limits = log
        .lines()
        .find(|line| line.contains("connection limits"))
        .unwrap_or_else(|| panic!("no connection limits logged:\n{log}"));
    eprintln!("soft limit 1,024 at exec; {limits}; notify with 1,100 idle clients: {took:?}");
    assert!(
        !limits.contains("open_files=1024"),
        "the soft limit was not raised: {limits}"
    );
    assert!(
        !log.contains('\x1b'),
        "colour codes in a log written to a file:\n{log}"
    );
    drop(idle);
}

/// SIGTERM with a connection that sent half a request head and one that sent nothing: both are
/// closed at once (no request is in progress) and the process exits promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_unfinished_connections_and_exits_promptly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    let options = Options::default()
        .env("REQUEST_TIMEOUT_SECONDS", 60)
        .env("HEADER_READ_TIMEOUT_SECONDS", 60)
        .env("SHUTDOWN_DRAIN_SECONDS", 10);
    let mut service = Service::start_with(&url, options).await;
    let mut half_head = TcpStream::connect(("127.0.0.1", service.port))
        .await
        .expect("connect");
    half_head
        .write_all(b"POST /alipay/notify HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a head");
    let mut idle = TcpStream::connect(("127.0.0.1", service.port))
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_millis(200)).await;

    service.terminate();
    let terminated = Instant::now();
    let status = service.wait_exit(Duration::from_secs(5)).await;
    let exited_after = terminated.elapsed();
    eprintln!("SIGTERM with a half-sent head and an idle connection: exited after {exited_after:?} ({status:?})");
    assert!(
        status.is_some_and(|s| s.success()),
        "did not exit 0 within 5 s: {status:?}"
    );
    assert!(
        exited_after < Duration::from_secs(2),
        "exit took {exited_after:?}"
    );
    assert!(closed_by_server(&mut half_head).await);
    assert!(closed_by_server(&mut idle).await);
}

/// SIGTERM with a request whose body never finishes: it is in progress, so it gets the drain
/// period, and then the process exits anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_after_the_drain_period_when_a_request_never_finishes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("orders.db").display());
    let drain = Duration::from_secs(2);
    let options = Options::default()
        .env("REQUEST_TIMEOUT_SECONDS", 60)
        .env("SHUTDOWN_DRAIN_SECONDS", drain.as_secs());
    let mut service = Service::start_with(&url, options).await;
    let mut stuck = TcpStream::connect(("127.0.0.1", service.port))
        .await
        .expect("connect");
    stuck
        .write_all(
            b"POST /alipay/notify HTTP/1.1\r\nHost: x\r\n\
              content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\na=1",
        )
        .await
        .expect("a head and part of a body");
    tokio::time::sleep(Duration::from_millis(200)).await;

    service.terminate();
    let terminated = Instant::now();
    let status = service.wait_exit(drain + Duration::from_secs(5)).await;
    let exited_after = terminated.elapsed();
    eprintln!(
        "SIGTERM with a body that never finishes, drain {drain:?}: exited after {exited_after:?}"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "did not exit 0: {status:?}"
    );
    assert!(
        exited_after >= drain - Duration::from_millis(100),
        "exited before the drain period: {exited_after:?}"
    );
    assert!(
        exited_after < drain + Duration::from_secs(2),
        "exit took {exited_after:?}"
    );
    assert!(
        service.log().contains("drain period over"),
        "{}",
        service.log_tail(10)
    );
}

async fn terminate_backends(admin: &mut sqlx::PgConnection, database: &str) -> u64 {
    let terminated: Vec<(bool,)> = sqlx::query_as(
        "select pg_terminate_backend(pid) from pg_stat_activity \
         where datname = $1 and pid <> pg_backend_pid()",
    )
    .bind(database)
    .fetch_all(admin)
    .await
    .expect("pg_terminate_backend");
    terminated.into_iter().filter(|(done,)| *done).count() as u64
}

/// Every backend of the service's database is terminated (as a restart or failover would), then
/// sessions are given an idle timeout: the very next notification still gets `success`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_notification_after_backends_are_terminated_gets_success() {
    use sqlx::Connection;
    let database = SharedDatabase::create().await;
    let service = Service::start_with(
        &database.url,
        Options::default().env("DATABASE_MAX_CONNECTIONS", 10),
    )
    .await;
    let numbers = order_numbers("KILLED", 8);
    create_orders(&client(), &service.base(), &numbers).await;
    // Both writers hold a connection after a few concurrent notifications.
    let warm: Vec<_> = numbers[..4]
        .iter()
        .map(|no| {
            let (client, base) = (client(), service.base());
            let delivery = notification(no);
            tokio::spawn(async move { deliver(&client, &base, &delivery).await })
        })
        .collect();
    for sent in warm {
        assert_eq!(sent.await.expect("warm-up").reply, Reply::Success);
    }

    let mut admin = sqlx::PgConnection::connect(&database.url)
        .await
        .expect("admin connection");
    let name = database.url.rsplit('/').next().expect("database name");
    for no in &numbers[4..7] {
        let killed = terminate_backends(&mut admin, name).await;
        let took = notify_succeeds_promptly(&service, no).await;
        eprintln!("{killed} backends terminated; the next notification: success in {took:?}");
    }

    sqlx::query(&format!(
        "alter database {name} set idle_session_timeout = '500ms'"
    ))
    .execute(&mut admin)
    .await
    .expect("idle_session_timeout");
    terminate_backends(&mut admin, name).await; // new sessions take the setting
    drop(admin);
    let warm = notification(&numbers[7]);
    let first = deliver(&client(), &service.base(), &warm).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // every session has now timed out
    let again = notify_succeeds_promptly(&service, &numbers[7]).await;
    eprintln!(
        "idle_session_timeout 500 ms: first {:?}, after the sessions timed out: success in {again:?}",
        first.reply
    );
    assert!(
        !service.log().contains("database error"),
        "{}",
        service.log_tail(20)
    );
}
