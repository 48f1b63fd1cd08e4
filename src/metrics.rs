//! Prometheus metrics for ops: what notifications became, how long they took, how orders moved,
//! what reconciliation found, and how often the database failed us. Served at `GET /metrics`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

use crate::alipay::Alipay;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    /// applied, duplicate, ignored, rejected, anomaly, error or shed (refused under overload).
    verdict: &'static str,
    /// Why it was rejected or anomalous; empty otherwise.
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    source: &'static str,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    endpoint: String,
    /// delivered, retrying (will be tried again) or failed (given up).
    outcome: &'static str,
}

/// One registry per service instance, passed in state (no global registry).
pub struct Metrics {
    registry: Registry,
    notifications: Family<VerdictLabels, Counter>,
    notify_seconds: Histogram,
    notify_in_flight: Gauge,
    transitions: Family<TransitionLabels, Counter>,
    reconcile_runs: Counter,
    reconcile_last_run: Gauge<f64, std::sync::atomic::AtomicU64>,
    reconcile_last_claimed: Gauge,
    reconciled: Family<OutcomeLabels, Counter>,
    database_errors: Family<OperationLabels, Counter>,
    connections_open: Gauge,
    connections_closed: Family<ReasonLabels, Counter>,
    webhook_deliveries: Family<DeliveryLabels, Counter>,
    webhook_backlog: Gauge,
    webhook_oldest_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("alipay_notify");
        let notifications = Family::default();
        registry.register(
            "notifications",
            "Notifications received, by verdict and reason",
            notifications.clone(),
        );
        // 0.25 ms to about 4 s.
        let notify_seconds = Histogram::new(exponential_buckets(0.00025, 2.0, 15));
        registry.register(
            "notify_duration_seconds",
            "Time to answer a notification",
            notify_seconds.clone(),
        );
        let notify_in_flight = Gauge::default();
        registry.register(
            "notifications_in_flight",
            "Notifications being verified or waiting for their commit now (see NOTIFY_MAX_IN_FLIGHT)",
            notify_in_flight.clone(),
        );
        let transitions = Family::default();
        registry.register(
            "order_transitions",
            "Orders moved to a new status, by source of the news",
            transitions.clone(),
        );
        let reconcile_runs = Counter::default();
        registry.register(
            "reconcile_runs",
            "Reconciliation runs started",
            reconcile_runs.clone(),
        );
        let reconcile_last_run = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "reconcile_last_run_timestamp_seconds",
            "When this instance last finished a reconciliation run (Unix time)",
            reconcile_last_run.clone(),
        );
        let reconcile_last_claimed = Gauge::default();
        registry.register(
            "reconcile_last_run_orders",
            "Orders the last reconciliation run of this instance looked at",
            reconcile_last_claimed.clone(),
        );
        let reconciled = Family::default();
        registry.register(
            "reconciled_orders",
            "Orders reconciled, by outcome",
            reconciled.clone(),
        );
        let database_errors = Family::default();
        registry.register(
            "database_errors",
            "Database errors, by operation",
            database_errors.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "http_connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let connections_closed = Family::default();
        registry.register(
            "http_connections_closed_by_server",
            "Connections the server closed before the client did, by reason (timeouts, the cap, shutdown)",
            connections_closed.clone(),
        );
        let webhook_deliveries = Family::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by endpoint and outcome",
            webhook_deliveries.clone(),
        );
        let webhook_backlog = Gauge::default();
        registry.register(
            "webhook_backlog",
            "Webhook deliveries not yet made (pending), all endpoints",
            webhook_backlog.clone(),
        );
        let webhook_oldest_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "webhook_oldest_pending_seconds",
            "Age of the oldest event still waiting for a webhook delivery",
            webhook_oldest_seconds.clone(),
        );
        Self {
            registry,
            webhook_deliveries,
            webhook_backlog,
            webhook_oldest_seconds,
            connections_open,
            connections_closed,
            notifications,
            notify_seconds,
            notify_in_flight,
            transitions,
            reconcile_runs,
            reconcile_last_run,
            reconcile_last_claimed,
            reconciled,
            database_errors,
        }
    }
}

impl Metrics {
    pub fn notification(&self, verdict: &'static str, reason: &'static str, seconds: f64) {
        self.notifications
            .get_or_create(&VerdictLabels { verdict, reason })
            .inc();
        self.notify_seconds.observe(seconds);
    }

    /// The gauge of notifications in flight, which load shedding counts on.
    pub(crate) fn notify_in_flight(&self) -> Gauge {
        self.notify_in_flight.clone()
    }

    pub(crate) fn transition(&self, source: &'static str, to: &'static str) {
        self.transitions
            .get_or_create(&TransitionLabels { source, to })
            .inc();
    }

    pub(crate) fn reconcile_run(&self) {
        self.reconcile_runs.inc();
    }

    pub(crate) fn reconcile_finished(&self, at: OffsetDateTime, orders: usize) {
        self.reconcile_last_run.set(at.unix_timestamp() as f64);
        self.reconcile_last_claimed.set(orders as i64);
    }

    /// When this instance last finished a reconciliation run, and how many orders it took.
    pub fn last_reconcile_run(&self) -> Option<(OffsetDateTime, i64)> {
        let at = self.reconcile_last_run.get();
        (at > 0.0)
            .then(|| OffsetDateTime::from_unix_timestamp(at as i64).ok())
            .flatten()
            .map(|at| (at, self.reconcile_last_claimed.get()))
    }

    pub(crate) fn reconciled(&self, outcome: &'static str) {
        self.reconciled
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub(crate) fn database_error(&self, operation: &'static str) {
        self.database_errors
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_open.inc();
    }

    pub(crate) fn connection_ended(&self) {
        self.connections_open.dec();
    }

    pub(crate) fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub(crate) fn webhook_delivery(&self, endpoint: &str, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&DeliveryLabels {
                endpoint: endpoint.to_owned(),
                outcome,
            })
            .inc();
    }

    pub(crate) fn webhook_backlog(&self, pending: i64, oldest_seconds: f64) {
        self.webhook_backlog.set(pending);
        self.webhook_oldest_seconds.set(oldest_seconds);
    }

    /// In certificate mode: each certificate's time left and the rotations seen, read from
    /// `alipay` at every scrape.
    pub fn watch_certificates(&mut self, alipay: Arc<Alipay>) {
        if alipay.certificates().is_some() {
            self.registry
                .register_collector(Box::new(CertificateCollector(alipay)));
        }
    }

    /// The Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String");
        text
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    /// app, alipay or root.
    file: &'static str,
    sn: String,
}

/// Certificate mode's gauges, computed when scraped so they count down between scrapes.
#[derive(Debug)]
struct CertificateCollector(Arc<Alipay>);

impl Collector for CertificateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(certs) = self.0.certificates() else {
            return Ok(());
        };
        let now = OffsetDateTime::now_utc();
        let mut family = encoder.encode_descriptor(
            "alipay_certificate_expiry_seconds",
            "Seconds until each certificate of certificate mode expires (app, Alipay's current, roots)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for expiry in certs.expiries() {
            let labels = CertificateLabels {
                file: expiry.file.label(),
                sn: expiry.sn,
            };
            let seconds = (expiry.not_after - now).as_seconds_f64();
            ConstGauge::new(seconds).encode(family.encode_family(&labels)?)?;
        }
        let (installed, refused) = certs.rotations();
        let mut family = encoder.encode_descriptor(
            "alipay_certificate_rotations",
            "Alipay certificates fetched after a rotation: installed, or refused (not trusted)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (outcome, count) in [("installed", installed), ("refused", refused)] {
            ConstCounter::new(count).encode(family.encode_family(&OutcomeLabels { outcome })?)?;
        }
        Ok(())
    }
}
