//! Building and running the service: store, keys, router and listener, with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;

use crate::alipay::gateway::{GatewayClient, RetryPolicy};
use crate::config::Settings;
use crate::http::console::auth::Operators;
use crate::http::console::Console;
use crate::http::notify;
use crate::http::server::{self, Limits};
use crate::http::{self, AppState, Checkout};
use crate::metrics::Metrics;
use crate::orders::{self, OrderStore};
use crate::reconcile::{Reconciler, Schedule};
use crate::webhooks::{self, Dispatcher, Endpoint, RetrySchedule};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    /// `None` when reconciliation is turned off.
    reconcile: Option<Schedule>,
    webhooks: Vec<Endpoint>,
    retry_schedule: RetrySchedule,
}

impl Application {
    /// Connects the database, applies migrations, parses keys and binds the listen address
    /// (port 0 picks a free port; ask `address()` which).
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.http.listen_addr).await?;
        Self::build_on(settings, listener).await
    }

    /// As `build`, on a listener bound beforehand (when PUBLIC_URL must name its port).
    pub async fn build_on(settings: &Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let alipay = Arc::new(settings.alipay()?);
        warn_of_expiring_certificates(&alipay);
        let checkout = Arc::new(Checkout {
            open: settings.checkout.open,
            order_expiry: time::Duration::minutes(settings.checkout.order_expiry_minutes.into()),
            products: settings.products()?,
            public_url: settings.public_url()?,
            quit_url: settings.quit_url()?,
        });
        let endpoints = webhooks::endpoint::endpoints(&settings.webhooks)?;
        let retry_schedule = RetrySchedule::parse(&settings.webhooks.retry_schedule)?;
        let store = orders::connect(
            settings.database.url.expose(),
            settings.database.max_connections,
            webhooks::endpoint::subscriptions(&endpoints),
        )
        .await?;
        store.migrate().await?;
        let api_token = settings
            .api
            .token
            .clone()
            .filter(|t| !t.expose_secret().is_empty())
            .map(Arc::new);
        if api_token.is_none() {
            tracing::warn!("API_TOKEN is not set: the JSON API answers 401 to every call");
        }
        let metrics = Arc::new({
            let mut metrics = Metrics::default();
            metrics.watch_certificates(alipay.clone());
            metrics
        });
        let state = AppState {
            store,
            alipay: alipay.clone(),
            api_token: api_token as Option<Arc<SecretString>>,
            checkout,
            gateway: Arc::new(GatewayClient::new(RetryPolicy::default())),
            notify_admission: Arc::new(notify::Admission::new(
                settings.notify.max_in_flight,
                metrics.notify_in_flight(),
            )),
            metrics,
            request_timeout: Duration::from_secs(settings.http.request_timeout_seconds),
            webhook_endpoints: Arc::new(endpoints.iter().map(|e| e.name.clone()).collect()),
            console: match Operators::from_settings(&settings.console)? {
                Some(operators) => Some(Arc::new(Console::new(operators, &settings.public_url()?))),
                None => None,
            },
        };
        let reconcile = (settings.reconcile.interval_seconds > 0).then(|| Schedule {
            interval: Duration::from_secs(settings.reconcile.interval_seconds),
            grace: Duration::from_secs(settings.reconcile.grace_seconds),
            batch: 100,
        });
        let limits = Limits {
            header_read_timeout: Duration::from_secs(settings.http.header_read_timeout_seconds),
            keep_alive_timeout: Duration::from_secs(settings.http.keep_alive_timeout_seconds),
            request_timeout: Duration::from_secs(settings.http.request_timeout_seconds),
            max_connections: server::fit_connection_cap(
                settings.http.max_connections,
                settings.database.max_connections,
            ),
            drain_timeout: Duration::from_secs(settings.http.shutdown_drain_seconds),
        };
        Ok(Self {
            listener,
            state,
            limits,
            reconcile,
            webhooks: endpoints,
            retry_schedule,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn store(&self) -> Arc<dyn OrderStore> {
        self.state.store.clone()
    }

    /// Serves (and reconciles, and delivers webhooks, when configured) until `shutdown` resolves,
    /// then stops accepting, closes idle connections, lets requests in progress finish within the
    /// drain period, and stops the reconciler and the dispatcher (attempts in flight finish;
    /// deliveries not yet made stay in the database for the next start).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.address(), "listening");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let reconciler = self.reconcile.map(|schedule| {
            let reconciler = Reconciler {
                alipay: self.state.alipay.clone(),
                store: self.state.store.clone(),
                gateway: self.state.gateway.clone(),
                metrics: self.state.metrics.clone(),
            };
            let mut stopped = stopped.clone();
            tokio::spawn(reconciler.run(schedule, async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        });
        let dispatcher = (!self.webhooks.is_empty()).then(|| {
            let dispatcher = Dispatcher {
                store: self.state.store.clone(),
                endpoints: self.webhooks,
                schedule: self.retry_schedule,
                metrics: self.state.metrics.clone(),
                client: Dispatcher::client(),
            };
            dispatcher.spawn_in_background(stopped.clone())
        });
        let dispatcher = dispatcher.transpose()?;
        let metrics = self.state.metrics.clone();
        let router = http::router(self.state);
        let served = server::serve(self.listener, router, self.limits, metrics, shutdown).await;
        let _ = stop.send(true);
        if let Some(reconciler) = reconciler {
            let _ = reconciler.await;
        }
        if let Some(dispatcher) = dispatcher {
            let _ = dispatcher.await;
        }
        served
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// How far ahead the log warns that a certificate of certificate mode expires.
const CERTIFICATE_WARNING: time::Duration = time::Duration::days(30);

/// Certificate mode: a warning per certificate that expires within [`CERTIFICATE_WARNING`]
/// (an expired one stops the start earlier). The metric counts down between starts.
fn warn_of_expiring_certificates(alipay: &crate::alipay::Alipay) {
    let Some(certs) = alipay.certificates() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc();
    for expiry in certs.expiries() {
        let left = expiry.not_after - now;
        if left < CERTIFICATE_WARNING {
            tracing::warn!(
                setting = expiry.file.setting(),
                sn = %expiry.sn,
                not_after = %expiry.not_after,
                days_left = left.whole_days(),
                "a certificate expires soon: download its successor from Alipay's console"
            );
        }
    }
}
