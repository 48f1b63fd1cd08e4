//! The benchmark's result: a table for people, JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

use super::database::Check;
use super::load::LoadResult;
use super::open_loop::figures::OpenLoop;
use super::receiver::WebhookReport;

#[derive(Debug, Serialize)]
pub struct Report {
    /// `sqlite (temp file)`, `postgres`, the target URL, or the peer (`seed-flask (…), postgres`).
    pub against: String,
    pub orders: usize,
    pub duplicates: usize,
    pub requests: u64,
    /// Closed loop: requests in flight at once; open loop: the most connections opened.
    pub concurrency: usize,
    /// Time to sign the notifications beforehand (not part of the load).
    pub presign_seconds: f64,
    /// Open loop: from the first intended send to the last reply.
    pub elapsed_seconds: f64,
    /// Requests over `elapsed_seconds` (open loop: see `open_loop` for rates sent and answered).
    pub requests_per_second: f64,
    /// Every reply's latency; open loop: from its intended send time, whatever the reply.
    pub latency_ms: Latency,
    pub success: u64,
    pub non_success: u64,
    /// Replies other than `200 success`, by status and body (or transport error).
    pub failures: BTreeMap<String, u64>,
    /// `VmHWM` of the service process (a peer: summed over its processes, pages they share
    /// counted in each); absent against a target.
    pub service_peak_rss_mib: Option<f64>,
    /// Lines the service logged, with `service_log_filter`; absent against a target.
    pub service_log_lines: Option<usize>,
    /// The service's `RUST_LOG` (`--log-level`), or its production default; absent against a
    /// target.
    pub service_log_filter: Option<String>,
    /// Absent when the database was not checked (a target without --database).
    pub database_checks: Option<Vec<Check>>,
    /// The machine's 1-minute load average when the load began: other work skews the figures.
    pub load_average: Option<f64>,
    /// Median 4 KiB write + fsync next to the SQLite file just before the load, in ms: SQLite's
    /// one writer commits with one fsync each, so its throughput follows this.
    pub disk_fsync_ms: Option<f64>,
    /// CPU time the service used during the load, per request, in µs (user + system; a peer:
    /// all its processes); absent against a target.
    pub service_cpu_us_per_request: Option<f64>,
    /// The same per `success` reply (refusals are cheap or free, so under overload this is the
    /// cost of the useful work).
    pub service_cpu_us_per_success: Option<f64>,
    /// CPU µs of one bare RSA-2048 verify (aws-lc-rs) on this machine, timed in this run.
    pub bare_verify_us: Option<f64>,
    /// Service CPU per `success` in bare verifies: how far the notify path is above its floor.
    pub service_cpu_in_verifies: Option<f64>,
    /// The same for this process, the load generator, which shares the machine.
    pub load_generator_cpu_us_per_request: Option<f64>,
    /// Notifications committed per transaction (group commit); Postgres only.
    pub notifications_per_commit: Option<f64>,
    /// Creating the orders beforehand through `POST /api/orders`.
    pub orders_api: Option<OrdersApi>,
    /// With --webhooks: what the local receiver got.
    pub webhooks: Option<WebhookReport>,
    /// With --rate: the open loop's figures.
    pub open_loop: Option<OpenLoop>,
    /// The database checks passed, and every reply was `success` (open loop: `success` or
    /// `503 fail`, the service shedding load); no transport error, no timeout.
    pub passed: bool,
}

/// How fast the service created the run's orders (each with a signed page-pay URL), over the
/// same number of connections; not part of the notify figures.
#[derive(Debug, Clone, Serialize)]
pub struct OrdersApi {
    pub orders: usize,
    pub orders_per_second: f64,
    /// Service CPU (user + system) per order, in µs; absent against a target.
    pub service_cpu_us_per_order: Option<f64>,
}

impl OrdersApi {
    pub fn new(orders: usize, elapsed: std::time::Duration) -> Self {
        Self {
            orders,
            orders_per_second: orders as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            service_cpu_us_per_order: None,
        }
    }

    pub fn with_service_cpu(mut self, seconds: Option<f64>) -> Self {
        self.service_cpu_us_per_order = cpu_us_each(seconds, self.orders as u64);
        self
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Latency {
    fn of(load: &LoadResult) -> Self {
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64| ms(load.latency.value_at_quantile(q));
        Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p99_9: at(0.999),
            max: ms(load.latency.max()),
        }
    }
}

/// What the run was, besides what the load measured.
pub struct Run {
    pub against: String,
    pub orders: usize,
    pub duplicates: usize,
    pub concurrency: usize,
    pub presign_seconds: f64,
    pub peak_rss_kib: Option<u64>,
    pub service_log_lines: Option<usize>,
    pub service_log_filter: Option<String>,
    pub load_average: Option<f64>,
    pub fsync_ms: Option<f64>,
    pub service_cpu_seconds: Option<f64>,
    pub bench_cpu_seconds: Option<f64>,
    pub bare_verify_us: Option<f64>,
    pub rows_per_commit: Option<f64>,
    pub orders_api: Option<OrdersApi>,
    pub webhooks: Option<WebhookReport>,
}

impl Report {
    pub fn new(
        run: Run,
        load: &LoadResult,
        open_loop: Option<OpenLoop>,
        checks: Option<Vec<Check>>,
    ) -> Self {
        let requests = load.requests();
        let non_success = requests - load.success;
        let shed_only = open_loop.is_some() && load.failures.keys().all(|k| k == "503 fail");
        let seconds = load.elapsed.as_secs_f64();
        let checks_pass = checks.as_ref().is_none_or(|c| c.iter().all(Check::passed));
        let webhooks_pass = run
            .webhooks
            .as_ref()
            .is_none_or(|w| w.complete && w.bad_signatures == 0);
        Self {
            against: run.against,
            orders: run.orders,
            duplicates: run.duplicates,
            requests,
            concurrency: run.concurrency,
            presign_seconds: run.presign_seconds,
            elapsed_seconds: seconds,
            requests_per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency_ms: Latency::of(load),
            success: load.success,
            non_success,
            failures: load.failures.clone(),
            service_peak_rss_mib: run.peak_rss_kib.map(|kib| kib as f64 / 1024.0),
            service_log_lines: run.service_log_lines,
            service_log_filter: run.service_log_filter,
            load_average: run.load_average,
            disk_fsync_ms: run.fsync_ms,
            service_cpu_us_per_request: cpu_us_each(run.service_cpu_seconds, requests),
            service_cpu_us_per_success: cpu_us_each(run.service_cpu_seconds, load.success),
            bare_verify_us: run.bare_verify_us,
            service_cpu_in_verifies: cpu_us_each(run.service_cpu_seconds, load.success)
                .zip(run.bare_verify_us)
                .map(|(service, verify)| service / verify),
            load_generator_cpu_us_per_request: cpu_us_each(run.bench_cpu_seconds, requests),
            notifications_per_commit: run.rows_per_commit,
            orders_api: run.orders_api,
            webhooks: run.webhooks,
            open_loop,
            passed: (non_success == 0 || shed_only) && requests > 0 && checks_pass && webhooks_pass,
            database_checks: checks,
        }
    }

    pub fn table(&self) -> String {
        let mut out = Vec::new();
        let row = |name: &str, value: String| format!("  {name:<24} {value}");
        match &self.open_loop {
            None => {
                out.push(format!("alipay-notify-bench against {}", self.against));
                out.push(format!(
                    "  {} orders + {} duplicates = {} requests over {} connections",
                    self.orders, self.duplicates, self.requests, self.concurrency
                ));
                out.extend(self.closed_loop_lines());
            }
            Some(open_loop) => {
                out.push(format!(
                    "alipay-notify-bench against {}, open loop",
                    self.against
                ));
                out.push(format!(
                    "  {} orders + {} duplicates = {} requests, at most {} connections",
                    self.orders, self.duplicates, self.requests, self.concurrency
                ));
                out.push(row("elapsed", format!("{:.2} s", self.elapsed_seconds)));
                out.extend(open_loop.lines());
            }
        }
        if let Some(mib) = self.service_peak_rss_mib {
            out.push(row("service peak RSS", format!("{mib:.1} MiB")));
        }
        if let Some(us) = self.service_cpu_us_per_request {
            out.push(row("service CPU", format!("{us:.0} µs per request")));
        }
        if let (Some(us), true) = (self.service_cpu_us_per_success, self.non_success > 0) {
            out.push(row("service CPU", format!("{us:.0} µs per success")));
        }
        if let (Some(us), Some(times)) = (self.bare_verify_us, self.service_cpu_in_verifies) {
            out.push(row(
                "bare RSA verify",
                format!("{us:.1} µs (now, here): the service used {times:.1}× that per success"),
            ));
        }
        if let Some(us) = self.load_generator_cpu_us_per_request {
            out.push(row("load generator CPU", format!("{us:.0} µs per request")));
        }
        if let Some(n) = self.notifications_per_commit {
            out.push(row("notifications per commit", format!("{n:.1}")));
        }
        if let Some(lines) = self.service_log_lines {
            let filter = self.service_log_filter.as_deref().unwrap_or("?");
            out.push(row("service log lines", format!("{lines} ({filter})")));
        }
        if let Some(load) = self.load_average {
            out.push(row("machine load average", format!("{load:.2} (at start)")));
        }
        if let Some(ms) = self.disk_fsync_ms {
            out.push(row("disk fsync (probe)", format!("{ms:.2} ms median")));
        }
        if let Some(api) = &self.orders_api {
            out.push(row(
                "orders via API (before)",
                format!("{:.0} orders/s (POST /api/orders)", api.orders_per_second),
            ));
            if let Some(us) = api.service_cpu_us_per_order {
                out.push(row(
                    "service CPU per order",
                    format!("{us:.0} µs (≈ {:.0} orders/s per core)", 1e6 / us),
                ));
            }
        }
        if let Some(w) = &self.webhooks {
            out.push(row(
                "webhooks delivered",
                format!(
                    "{} events, {:.0} events/s, {} repeats, {} bad signatures{}",
                    w.events,
                    w.delivered_per_second,
                    w.repeats,
                    w.bad_signatures,
                    if w.complete { "" } else { " (INCOMPLETE)" }
                ),
            ));
            out.push(row(
                "commit to webhook",
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    w.delay_ms_p50, w.delay_ms_p99, w.delay_ms_max
                ),
            ));
        }
        out.push(row(
            "presigning (not timed)",
            format!("{:.2} s", self.presign_seconds),
        ));
        match &self.database_checks {
            None => out.push(row("database check", "skipped (no --database)".into())),
            Some(checks) => {
                let ok = checks.iter().all(Check::passed);
                out.push(row(
                    "database check",
                    if ok { "passed" } else { "FAILED" }.into(),
                ));
                for check in checks {
                    let mark = if check.passed() { "ok " } else { "BAD" };
                    out.push(format!(
                        "    {mark} {:<30} {:>8} (expected {})",
                        check.what,
                        check.actual,
                        check.expectation()
                    ));
                }
            }
        }
        out.push(row(
            "result",
            if self.passed { "PASS" } else { "FAIL" }.into(),
        ));
        out.join("\n")
    }

    /// Throughput, latency and replies of a closed-loop run.
    fn closed_loop_lines(&self) -> Vec<String> {
        let row = |name: &str, value: String| format!("  {name:<24} {value}");
        let mut out = Vec::new();
        out.push(row("elapsed", format!("{:.2} s", self.elapsed_seconds)));
        out.push(row(
            "throughput",
            format!("{:.0} requests/s", self.requests_per_second),
        ));
        let l = &self.latency_ms;
        for (name, value) in [
            ("latency p50", l.p50),
            ("latency p90", l.p90),
            ("latency p99", l.p99),
            ("latency p99.9", l.p99_9),
            ("latency max", l.max),
        ] {
            out.push(row(name, format!("{value:.2} ms")));
        }
        out.push(row("success", self.success.to_string()));
        out.push(row("non-success", self.non_success.to_string()));
        for (what, count) in &self.failures {
            out.push(format!("    {count:>8}  {what}"));
        }
        out
    }
}

/// CPU seconds spread over `count` requests or orders, in µs each.
fn cpu_us_each(seconds: Option<f64>, count: u64) -> Option<f64> {
    seconds
        .filter(|_| count > 0)
        .map(|seconds| seconds * 1e6 / count as f64)
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy one.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::load::new_histogram;
    use crate::open_loop::schedule::{Phase, Schedule};

    fn run() -> Run {
        Run {
            against: "test".into(),
            orders: 3,
            duplicates: 0,
            concurrency: 1,
            presign_seconds: 0.0,
            peak_rss_kib: None,
            service_log_lines: None,
            service_log_filter: None,
            load_average: None,
            fsync_ms: None,
            service_cpu_seconds: None,
            bench_cpu_seconds: None,
            bare_verify_us: None,
            rows_per_commit: None,
            orders_api: None,
            webhooks: None,
        }
    }

    /// One `success` and two other replies, as `failure`.
    fn load(failure: &str) -> LoadResult {
        LoadResult {
            latency: new_histogram(),
            elapsed: Duration::from_secs(1),
            success: 1,
            failures: BTreeMap::from([(failure.to_owned(), 2)]),
        }
    }

    fn open_loop() -> Option<OpenLoop> {
        let schedule = Schedule::new(vec![Phase::new(3.0, 1.0).unwrap()]);
        Some(OpenLoop::new(&schedule, &[]))
    }

    #[test]
    fn an_open_loop_passes_with_load_shed_as_503_fail() {
        let report = Report::new(run(), &load("503 fail"), open_loop(), None);
        assert!(report.passed);
    }

    #[test]
    fn an_open_loop_fails_on_timeouts_and_other_replies() {
        for failure in ["transport: timeout (30 s) awaiting the reply", "500 fail"] {
            let report = Report::new(run(), &load(failure), open_loop(), None);
            assert!(!report.passed, "{failure}");
        }
    }

    #[test]
    fn a_closed_loop_fails_on_any_refusal() {
        let report = Report::new(run(), &load("503 fail"), None, None);
        assert!(!report.passed);
    }
}
