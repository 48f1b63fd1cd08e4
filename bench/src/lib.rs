//! `alipay-notify-bench`: the whole notify path over real HTTP. Seeds pending orders in a fresh
//! database, starts the real service as a separate process, sends it signed `TRADE_SUCCESS`
//! notifications (with byte-identical repeats shuffled in) over keep-alive connections, and
//! reports throughput, latency and the service's peak memory; then checks that every order was
//! paid exactly once. `--target` runs the same load against a deployment that is already up;
//! `--peer seed-flask` against the seed's Flask stack, started here, for side-by-side figures.
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
mod peer;
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
use peer::{Peer, SeedConfig, SeedFlask};
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
    /// With --rate: write and fdatasync 4 KiB every 10 ms in this folder while the load runs (put
    /// it on the database's disk), and report the disk's stalls beside the slow requests.
    #[arg(long, requires = "rate")]
    disk_probe: Option<PathBuf>,
    /// `RUST_LOG` for the service started here (any EnvFilter string, e.g. `warn`). Default:
    /// unset, so the service logs with its production filter (every notification at `info`).
    #[arg(long, conflicts_with = "target")]
    log_level: Option<String>,
    /// Load a peer stack instead of ours, started here on a fresh database of the Postgres server
    /// named by --database, its orders inserted into its own schema: the same plan, the same
    /// pre-signed bodies, the same closed loop. Its processes' CPU and peak RSS are summed.
    #[arg(
        long,
        value_enum,
        requires = "database",
        conflicts_with_all = ["target", "service_binary", "webhooks", "log_level", "rate"]
    )]
    peer: Option<Peer>,
    /// The peer's folder (seed-flask: its serve.sh and schema.sql); default
    /// `../shared/peers/seed-flask`, where it sits beside a checkout. serve.sh builds its venv
    /// under $SEED_VENV on first use (pip), before the clock starts.
    #[arg(long, requires = "peer")]
    peer_dir: Option<PathBuf>,
    /// gunicorn workers for the peer (its README: 4 was fastest on 2 cores).
    #[arg(long, requires = "peer", value_parser = clap::value_parser!(u16).range(1..))]
    peer_workers: Option<u16>,
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
        let report = match (&self.target, self.peer) {
            (Some(target), _) => self.run_against(target, &plan).await?,
            (None, Some(Peer::SeedFlask)) => self.run_seed(&plan).await?,
            (None, None) => self.run_local(&plan).await?,
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
            .await?;
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
            .await?;
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

    /// The same load against the seed peer (Flask + python-alipay-sdk under gunicorn), started
    /// here on a fresh Postgres database that is dropped afterwards.
    async fn run_seed(&self, plan: &Plan) -> anyhow::Result<Report> {
        let dir = peer::seed_dir(
            self.peer_dir
                .as_deref()
                .unwrap_or(Path::new(peer::DEFAULT_SEED_DIR)),
        )?;
        let admin_url = peer::postgres_url(self.database.as_deref())?;
        let database = FreshDatabase::create(Some(admin_url)).await?;
        let report = self.run_seed_on(&dir, &database, plan).await;
        let removed = database.remove().await;
        let report = report?;
        removed.context("dropping the seed's benchmark database")?;
        Ok(report)
    }

    async fn run_seed_on(
        &self,
        dir: &Path,
        database: &FreshDatabase,
        plan: &Plan,
    ) -> anyhow::Result<Report> {
        database::seed::prepare(&database.url, &dir.join("schema.sql"), plan).await?;
        let alipay_key = Arc::new(PrivateKey::generate());
        let (requests, presign_seconds) = self.presign(plan, &alipay_key).await?;

        let work_dir = tempfile::tempdir()?;
        let client = load::client(self.concurrency)?;
        let workers = self.peer_workers.map_or(peer::DEFAULT_WORKERS, usize::from);
        let mut seed = SeedFlask::start(&SeedConfig {
            dir,
            workers,
            database_url: &database.url,
            alipay_public_key_der: &alipay_key.public_key_spki_der(),
            app_id: &self.app_id,
            work_dir: work_dir.path(),
        })?;
        seed.wait_ready(&client, peer::READY_TIMEOUT).await?;
        let notify_url = format!("http://{}/alipay/notify", seed.address);
        peer::warm_up(&client, &notify_url, workers, self.concurrency).await?;
        let bare_verify_us = {
            let key = alipay_key.clone();
            tokio::task::spawn_blocking(move || floor::bare_verify_us(&key)).await?
        };
        let load_average = report::load_average();
        let cpu_before = (seed.cpu_seconds(), service::cpu_seconds("/proc/self/stat"));
        let measured = self.load(&client, &notify_url, &requests, plan).await?;
        let cpu_after = (seed.cpu_seconds(), service::cpu_seconds("/proc/self/stat"));

        let load = &measured.load;
        let peak_rss_kib = seed.peak_rss_kib();
        let log = seed.log.clone();
        // Stopped before its log is read: Python buffers stdout, and flushes it on exit.
        seed.stop(Duration::from_secs(10)).await?;
        if load.success < load.requests() {
            eprintln!("seed log (last lines):\n{}", service::log_tail(&log, 10));
        }
        let checks = database::seed::check(&database.url, &plan.scope(true), plan).await?;
        let run = Run {
            against: format!("seed-flask (gunicorn sync, {workers} workers), postgres"),
            orders: plan.sent.len(),
            duplicates: plan.duplicates,
            concurrency: self.concurrency,
            presign_seconds,
            peak_rss_kib,
            service_log_lines: Some(service::log_lines(&log)),
            service_log_filter: Some("a print() per notification, gunicorn warning".into()),
            load_average,
            fsync_ms: None,
            service_cpu_seconds: service::cpu_used(cpu_before.0, cpu_after.0),
            bench_cpu_seconds: service::cpu_used(cpu_before.1, cpu_after.1),
            bare_verify_us: Some(bare_verify_us),
            rows_per_commit: None,
            // Its orders were inserted straight into its table: it has no order API.
            orders_api: None,
            webhooks: None,
        };
        Ok(Report::new(run, load, measured.open_loop, Some(checks)))
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
    ) -> anyhow::Result<Measured> {
        let bodies = requests.bodies.clone();
        let bar = self.bar(bodies.len(), "notify");
        let measured = match &plan.schedule {
            None => Measured::closed(
                load::send_all(client, notify_url, bodies, self.concurrency, &bar).await,
            ),
            Some(schedule) => {
                let probe = match &self.disk_probe {
                    Some(dir) => Some((
                        dir,
                        disk::Probe::start(dir).with_context(|| {
                            format!("starting the disk probe in {}", dir.display())
                        })?,
                    )),
                    None => None,
                };
                let start = Instant::now();
                let outcomes = open_loop::run(
                    start,
                    client,
                    notify_url,
                    bodies,
                    schedule,
                    self.concurrency,
                    &bar,
                )
                .await;
                let mut measured = Measured::open(schedule, &outcomes);
                if let Some((dir, probe)) = probe {
                    let syncs = probe.finish(start).context("the disk probe")?;
                    measured.open_loop = measured.open_loop.map(|figures| {
                        figures.with_disk_probe(dir.display().to_string(), &syncs, &outcomes)
                    });
                }
                measured
            }
        };
        bar.finish_and_clear();
        Ok(measured)
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

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn the_disk_probe_goes_with_the_open_loop() {
        let error = parse(&["--disk-probe", "/tmp"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);

        let args = parse(&["--rate", "10", "--duration", "1", "--disk-probe", "/tmp"]).unwrap();
        assert_eq!(args.disk_probe, Some(PathBuf::from("/tmp")));
    }

    #[test]
    fn a_peer_runs_on_a_database() {
        let error = parse(&["--peer", "seed-flask"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);

        let args = parse(&["--peer", "seed-flask", "--database", POSTGRES, "--smoke"]).unwrap();
        assert_eq!(args.peer, Some(Peer::SeedFlask));
        assert_eq!(args.peer_workers, None);
    }

    #[test]
    fn a_peer_excludes_what_only_our_service_or_the_open_loop_has() {
        let peer = ["--peer", "seed-flask", "--database", POSTGRES];
        for extra in [
            &["--webhooks"][..],
            &["--log-level", "warn"],
            &["--service-binary", "/bin/true"],
            &["--rate", "100", "--duration", "1"],
            &[
                "--target",
                "http://127.0.0.1:1/",
                "--alipay-private-key",
                "k.pem",
                "--api-token",
                "t",
            ],
        ] {
            let error = parse(&[&peer[..], extra].concat()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::ArgumentConflict, "{extra:?}");
        }
    }

    #[test]
    fn peer_options_need_a_peer_and_at_least_one_worker() {
        let error = parse(&["--peer-workers", "2"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        let error = parse(&["--peer-dir", "/tmp"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);

        let peer = ["--peer", "seed-flask", "--database", POSTGRES];
        let error = parse(&[&peer[..], &["--peer-workers", "0"]].concat()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
        let args = parse(&[&peer[..], &["--peer-workers", "8"]].concat()).unwrap();
        assert_eq!(args.peer_workers, Some(8));
    }

    /// The whole seed path (start, warm-up, load, check, stop, drop the database) on a small
    /// plan. Needs the seed's folder beside the checkout and its venv (`.ci/run` and
    /// `bench/seed-side-by-side.sh` build it with pip); fails loudly without them.
    #[tokio::test]
    async fn the_seed_peer_pays_every_order_once() {
        let venv = std::env::var("SEED_VENV").unwrap_or_else(|_| "/tmp/seed-flask-venv".into());
        let dir = peer::seed_dir_for_tests().expect("no seed-flask folder (set SEED_FLASK_DIR)");
        assert!(
            Path::new(&venv).join("bin/gunicorn").is_file(),
            "no seed venv at {venv}: run bench/seed-side-by-side.sh once"
        );
        let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| POSTGRES.into());
        let dir = dir.to_str().unwrap();
        let args = parse(&[
            "--peer",
            "seed-flask",
            "--peer-dir",
            dir,
            "--peer-workers",
            "2",
            "--database",
            &admin,
            "--concurrency",
            "8",
            "--json",
        ])
        .unwrap();
        let plan = Plan::new(200, 0.2).unwrap();

        let report = args.run_seed(&plan).await.unwrap();

        assert!(report.passed, "{}", report.table());
        assert_eq!((report.success, report.non_success), (240, 0));
        assert!(report.service_cpu_us_per_request.is_some_and(|us| us > 0.0));
    }
}
