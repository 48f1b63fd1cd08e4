//! `alipay-notify-bench`: the whole notify path over real HTTP. Seeds pending orders in a fresh
//! database, starts the real service as a separate process, sends it signed `TRADE_SUCCESS`
//! notifications (with byte-identical repeats shuffled in) over keep-alive connections, and
//! reports throughput, latency and the service's peak memory; then checks that every order was
//! paid exactly once. `--target` runs the same load against a deployment that is already up.
//! By default a closed loop (each connection sends its next request when a reply comes back);
//! `--rate` offers a fixed rate instead (`open_loop`), to see queueing and overload, and where
//! not every notification was answered `success` checks what the `success` replies promised.

pub mod console_list;
mod database;
mod disk;
mod floor;
mod load;
pub mod notifications;
mod open_loop;
mod plan;
mod receiver;
mod report;
mod service;
mod target;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::SecretString;

use alipay_notify::alipay::keys::PrivateKey;
use database::FreshDatabase;
use load::Measured;
use notifications::{Merchant, SUBJECT};
use open_loop::schedule::{Phase, Schedule};
use plan::{Plan, Requests};
use report::{OrdersApi, Report, Run};
use service::{Service, ServiceConfig};

/// Notifications `--smoke` sends: enough to cross every path, quick enough for CI.
const SMOKE_ORDERS: usize = 300;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Orders to pay, one notification each.
    #[arg(long, default_value_t = 10_000)]
    orders: usize,
    /// Requests in flight at once, each on its own keep-alive connection. With --rate: the most
    /// connections opened (a request finding none free waits, and the wait is latency).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop: offer this many requests per second for --duration, each sent at its intended
    /// time whether or not earlier replies came back; latency runs from that intended time.
    #[arg(long, requires = "duration", conflicts_with = "smoke")]
    rate: Option<f64>,
    /// Seconds to offer --rate for; the requests are rate × duration, --duplicates of them repeats.
    #[arg(long, requires = "rate", conflicts_with = "orders")]
    duration: Option<f64>,
    /// A second phase straight after the first (e.g. under capacity after an overload, to see
    /// recovery); the schedule runs on without a gap.
    #[arg(long, requires_all = ["rate", "then_duration"])]
    then_rate: Option<f64>,
    /// Seconds of the second phase.
    #[arg(long, requires = "then_rate")]
    then_duration: Option<f64>,
    /// Byte-identical repeats to shuffle in, as a fraction of the orders (Alipay resends).
    #[arg(long, default_value_t = 0.2)]
    duplicates: f64,
    /// `postgres://…` (a new database on that server, dropped afterwards) or `sqlite:PATH` (a new
    /// file, kept); default a temp SQLite file. With --target: the deployment's database, to check.
    #[arg(long)]
    database: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// A few hundred notifications, for CI.
    #[arg(long, conflicts_with = "orders")]
    smoke: bool,
    /// The base URL of a running deployment to load instead of starting one here.
    #[arg(long, requires_all = ["alipay_private_key", "api_token"])]
    target: Option<url::Url>,
    /// With --target: the private half of the deployment's ALIPAY_PUBLIC_KEY (PEM or base64).
    #[arg(long, requires = "target")]
    alipay_private_key: Option<PathBuf>,
    /// With --target: the deployment's API_TOKEN, to create the orders through its API.
    #[arg(long, requires = "target")]
    api_token: Option<SecretString>,
    /// The app_id notifications carry (with --target, the deployment's ALIPAY_APP_ID).
    #[arg(long, default_value = "2021000000000001")]
    app_id: String,
    /// The seller_id notifications carry (with --target, the deployment's ALIPAY_SELLER_ID).
    #[arg(long, default_value = "2088000000000001")]
    seller_id: String,
    /// The `alipay-notify` binary to start and measure; default the one beside this binary
    /// (`cargo build --release` at the repository root builds both).
    #[arg(long, conflicts_with = "target")]
    service_binary: Option<PathBuf>,
    /// Deliver every event as a webhook to a fast receiver in this process, and report delivery
    /// throughput and the delay from commit to arrival.
    #[arg(long, conflicts_with = "target")]
    webhooks: bool,
    /// `RUST_LOG` for the service started here (any EnvFilter string, e.g. `warn`). Default:
    /// unset, so the service logs with its production filter (every notification at `info`).
    #[arg(long, conflicts_with = "target")]
    log_level: Option<String>,
}

impl BenchArgs {
    fn service_binary(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.service_binary {
            return Ok(path.clone());
        }
        let here = std::env::current_exe().context("locating this binary")?;
        let beside = here.with_file_name("alipay-notify");
        anyhow::ensure!(
            beside.is_file(),
            "{} not found: build the service first (`cargo build --release` at the repository \
             root builds it beside this binary) or name it with --service-binary",
            beside.display()
        );
        Ok(beside)
    }

    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let plan = match self.schedule()? {
            Some(schedule) => Plan::open_loop(schedule, self.duplicates)?,
            None if self.smoke => Plan::new(SMOKE_ORDERS, self.duplicates)?,
            None => Plan::new(self.orders, self.duplicates)?,
        };
        let report = match &self.target {
            None => self.run_local(&plan).await?,
            Some(target) => self.run_against(target, &plan).await?,
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("{}", report.table());
        }
        Ok(if report.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// The open loop's phases, with --rate.
    fn schedule(&self) -> anyhow::Result<Option<Schedule>> {
        let (Some(rate), Some(seconds)) = (self.rate, self.duration) else {
            return Ok(None);
        };
        let mut phases = vec![Phase::new(rate, seconds)?];
        if let (Some(rate), Some(seconds)) = (self.then_rate, self.then_duration) {
            phases.push(Phase::new(rate, seconds)?);
        }
        Ok(Some(Schedule::new(phases)))
    }

    /// The service's log filter as the report names it.
    fn log_filter(&self) -> String {
        match &self.log_level {
            Some(filter) => format!("RUST_LOG={filter}"),
            None => "production default (RUST_LOG unset)".into(),
        }
    }

    fn merchant(&self) -> Merchant {
        Merchant {
            app_id: self.app_id.clone(),
            seller_id: self.seller_id.clone(),
        }
    }

    /// A fresh database and the service started here on it; the database goes afterwards.
    async fn run_local(&self, plan: &Plan) -> anyhow::Result<Report> {
        let database = FreshDatabase::create(self.database.as_deref()).await?;
        let report = self.run_local_on(&database, plan).await;
        let removed = database.remove().await;
        let report = report?;
        removed.context("dropping the benchmark database")?;
        Ok(report)
    }

    async fn run_local_on(&self, database: &FreshDatabase, plan: &Plan) -> anyhow::Result<Report> {
        let alipay_key = Arc::new(PrivateKey::generate());
        let (requests, presign_seconds) = self.presign(plan, &alipay_key).await?;

        let log_dir = tempfile::tempdir()?;
        let client = load::client(self.concurrency)?;
        let api_token = SecretString::from(format!("bench-{:016x}", fastrand::u64(..)));
        let receiver = match self.webhooks {
            true => Some(receiver::Receiver::start()?),
            false => None,
        };
        let service = self
            .start_service(
                &database.url,
                &alipay_key,
                &api_token,
                log_dir.path(),
                &client,
                receiver.as_ref(),
            )
            .await?;
        let base = url::Url::parse(&format!("http://{}/", service.address))?;
        let cpu_before = service.cpu_seconds();
        let orders_api = self
            .create_orders(&client, &base, &api_token, plan)
            .await?
            .with_service_cpu(service::cpu_used(cpu_before, service.cpu_seconds()));
        let notify_url = base.join("alipay/notify")?;
        let fsync_ms = database
            .sqlite_dir()
            .and_then(|dir| disk::fsync_median_ms(&dir, 30));
        let bare_verify_us = {
            let key = alipay_key.clone();
            tokio::task::spawn_blocking(move || floor::bare_verify_us(&key)).await?
        };
        let load_average = report::load_average();
        let cpu_before = (
            service.cpu_seconds(),
            service::cpu_seconds("/proc/self/stat"),
        );
        let measured = self
            .load(&client, notify_url.as_str(), &requests, plan)
            .await;
        let cpu_after = (
            service.cpu_seconds(),
            service::cpu_seconds("/proc/self/stat"),
        );

        let load = &measured.load;
        let answered = requests.answered(plan, measured.answered.as_deref());
        // Orders never answered `success` may be paid too, so with refusals this waits for fewer.
        let events = answered.as_ref().map_or(plan.sent.len(), HashSet::len);
        let webhooks = match &receiver {
            Some(receiver) => Some(receiver.report(events, Duration::from_secs(120)).await),
            None => None,
        };
        let peak_rss_kib = service.peak_rss_kib();
        let log_lines = service.log_lines();
        let incomplete = webhooks.as_ref().is_some_and(|w| !w.complete);
        if load.success < load.requests() || incomplete {
            eprintln!("service log (last lines):\n{}", service.log_tail(10));
        }
        service.stop(Duration::from_secs(10)).await?;
        let checks =
            database::check_run(&database.url, &plan.scope(true), plan, load, answered).await?;
        let rows_per_commit = database::rows_per_commit(&database.url, &plan.scope(true)).await?;
        let run = Run {
            against: database.kind.clone(),
            orders: plan.sent.len(),
            duplicates: plan.duplicates,
            concurrency: self.concurrency,
            presign_seconds,
            peak_rss_kib,
            service_log_lines: Some(log_lines),
            service_log_filter: Some(self.log_filter()),
            load_average,
            fsync_ms,
            service_cpu_seconds: service::cpu_used(cpu_before.0, cpu_after.0),
            bench_cpu_seconds: service::cpu_used(cpu_before.1, cpu_after.1),
            bare_verify_us: Some(bare_verify_us),
            rows_per_commit,
            orders_api: Some(orders_api),
            webhooks,
        };
        Ok(Report::new(run, load, measured.open_loop, Some(checks)))
    }

    /// `alipay-notify serve` on `database_url`, trusting `alipay_key`, once it is ready.
    async fn start_service(
        &self,
        database_url: &str,
        alipay_key: &PrivateKey,
        api_token: &SecretString,
        log_dir: &Path,
        client: &reqwest::Client,
        receiver: Option<&receiver::Receiver>,
    ) -> anyhow::Result<Service> {
        let app_key = PrivateKey::generate();
        let mut service = Service::start(&ServiceConfig {
            database_url,
            app_id: &self.app_id,
            seller_id: &self.seller_id,
            app_private_key_pem: &app_key.to_pkcs8_pem(),
            alipay_public_key_base64: &alipay_key.public_key_base64(),
            api_token,
            log_dir,
            binary: &self.service_binary()?,
            webhook: receiver.map(|r| (r.url.as_str(), r.secret.as_str())),
            log_level: self.log_level.as_deref(),
        })?;
        service.wait_ready(client, Duration::from_secs(60)).await?;
        Ok(service)
    }

    /// The same load against a deployment that is already running; orders through its API.
    async fn run_against(&self, target: &url::Url, plan: &Plan) -> anyhow::Result<Report> {
        let (Some(key_file), Some(token)) = (&self.alipay_private_key, &self.api_token) else {
            anyhow::bail!("--target needs --alipay-private-key and --api-token");
        };
        let key_text = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading {}", key_file.display()))?;
        let key = Arc::new(PrivateKey::parse(&key_text).context("--alipay-private-key")?);
        let (requests, presign_seconds) = self.presign(plan, &key).await?;

        let client = load::client(self.concurrency)?;
        let orders_api = self.create_orders(&client, target, token, plan).await?;
        let notify_url = target.join("alipay/notify")?;
        let load_average = report::load_average();
        let cpu_before = service::cpu_seconds("/proc/self/stat");
        let measured = self
            .load(&client, notify_url.as_str(), &requests, plan)
            .await;
        let bench_cpu_seconds =
            service::cpu_used(cpu_before, service::cpu_seconds("/proc/self/stat"));

        let load = &measured.load;
        let answered = requests.answered(plan, measured.answered.as_deref());
        let checks = match &self.database {
            Some(url) => {
                Some(database::check_run(url, &plan.scope(false), plan, load, answered).await?)
            }
            None => None,
        };
        let run = Run {
            against: target.to_string(),
            orders: plan.sent.len(),
            duplicates: plan.duplicates,
            concurrency: self.concurrency,
            presign_seconds,
            peak_rss_kib: None,
            service_log_lines: None,
            service_log_filter: None,
            load_average,
            fsync_ms: None,
            service_cpu_seconds: None,
            bench_cpu_seconds,
            // Only a ratio to the service's CPU would use it, which a target does not give.
            bare_verify_us: None,
            rows_per_commit: None,
            orders_api: Some(orders_api),
            webhooks: None,
        };
        Ok(Report::new(run, load, measured.open_loop, checks))
    }

    /// Every order of the plan through `POST /api/orders`, as a merchant's back end creates them
    /// (each answer carries a freshly signed page-pay URL), timed.
    async fn create_orders(
        &self,
        client: &reqwest::Client,
        base: &url::Url,
        token: &SecretString,
        plan: &Plan,
    ) -> anyhow::Result<OrdersApi> {
        let orders = plan.all_orders();
        let creating = self.bar(orders.len(), "orders");
        let started = Instant::now();
        target::create_orders(
            client,
            base,
            token,
            &orders,
            SUBJECT,
            self.concurrency,
            &creating,
        )
        .await?;
        creating.finish_and_clear();
        Ok(OrdersApi::new(orders.len(), started.elapsed()))
    }

    /// Signs every notification before the clock starts, and shuffles the repeats in.
    async fn presign(&self, plan: &Plan, key: &Arc<PrivateKey>) -> anyhow::Result<(Requests, f64)> {
        let started = Instant::now();
        let bar = self.bar(plan.sent.len(), "signing");
        let (merchant, orders, key, counter) =
            (self.merchant(), plan.sent.clone(), key.clone(), bar.clone());
        let bodies = tokio::task::spawn_blocking(move || {
            notifications::sign_all(&merchant, &orders, &key, &|| counter.inc(1))
        })
        .await?;
        bar.finish_and_clear();
        let requests = Requests::shuffled(bodies, plan.duplicates);
        debug_assert_eq!(requests.bodies.len(), plan.requests());
        Ok((requests, started.elapsed().as_secs_f64()))
    }

    /// Sends every request: as fast as `concurrency` connections allow, or on the plan's schedule.
    async fn load(
        &self,
        client: &reqwest::Client,
        notify_url: &str,
        requests: &Requests,
        plan: &Plan,
    ) -> Measured {
        let bodies = requests.bodies.clone();
        let bar = self.bar(bodies.len(), "notify");
        let measured = match &plan.schedule {
            None => Measured::closed(
                load::send_all(client, notify_url, bodies, self.concurrency, &bar).await,
            ),
            Some(schedule) => {
                let outcomes =
                    open_loop::run(client, notify_url, bodies, schedule, self.concurrency, &bar)
                        .await;
                Measured::open(schedule, &outcomes)
            }
        };
        bar.finish_and_clear();
        measured
    }

    /// A progress bar on stderr; hidden with --json (and by indicatif when stderr is no terminal).
    fn bar(&self, len: usize, what: &'static str) -> ProgressBar {
        if self.json {
            return ProgressBar::hidden();
        }
        let style =
            ProgressStyle::with_template("{msg:<8} [{bar:40}] {pos}/{len} {per_sec:>12} eta {eta}")
                .expect("a valid template")
                .progress_chars("=> ");
        ProgressBar::new(len as u64)
            .with_style(style)
            .with_message(what)
    }
}
