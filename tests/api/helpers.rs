//! `spawn_app()` and friends: the real service on port 0 over a fresh database, plus an Alipay
//! key to sign notifications with, as Alipay would.

use std::sync::Arc;

use alipay_notify::alipay::callback::{self, CallbackError};
use alipay_notify::alipay::form::{FormError, RawParams};
use alipay_notify::alipay::keys::PrivateKey;
use alipay_notify::alipay::sign::{sign_content, CALLBACK_EXCLUDED};
use alipay_notify::config::{DatabaseUrl, Settings};
use alipay_notify::orders::{NewOrder, Order, OrderStore};
use alipay_notify::startup::Application;
use alipay_sim::{Faults, RegisteredApp, SimConfig, SimHandle, Simulator};
use alipay_test_support::form::{form_with_sign, signed_form};
pub use alipay_test_support::keys::keys;
use alipay_test_support::keys::{copy_of, public_of};
use alipay_test_support::tools::{openssl_sign, openssl_verifies, path_arg, run};
use base64::Engine;
use secrecy::SecretString;
use sqlx::Connection;

pub const APP_ID: &str = "2021000000000001";
pub const SELLER_ID: &str = "2088000000000001";
pub const API_TOKEN: &str = "test-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each listed test body once per database: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Db::Postgres).await
            }
        }
    )*};
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn OrderStore>,
    pub database_url: String,
    _database: TestDatabase,
}

/// Settings for a test service on `database_url`; tweak before `spawn_with`.
pub fn settings(database_url: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.database.url = DatabaseUrl::new(database_url);
    settings.database.max_connections = 20;
    settings.http.listen_addr = "127.0.0.1:0".parse().unwrap();
    settings.http.public_url = "https://shop.example.com/".into();
    settings.alipay.app_id = Some(APP_ID.into());
    settings.alipay.seller_id = Some(SELLER_ID.into());
    settings.alipay.app_private_key = Some(SecretString::from(keys().app.to_pkcs8_pem()));
    settings.alipay.public_key = Some(keys().alipay.public_key_base64());
    settings.alipay.gateway = "https://openapi.alipay.com/gateway.do".into();
    settings.api.token = Some(SecretString::from(API_TOKEN));
    settings
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_with(db, |_| {}).await
}

pub async fn spawn_with(db: Db, configure: impl FnOnce(&mut Settings)) -> TestApp {
    init_logs();
    let database = TestDatabase::create(db).await;
    let mut settings = settings(&database.url);
    configure(&mut settings);
    start(settings, loopback().await, database).await
}

/// A second service instance on the same database as `app` (several instances, one Postgres).
pub async fn spawn_sibling(app: &TestApp) -> TestApp {
    spawn_sibling_with(app, |_| {}).await
}

/// As `spawn_sibling`, with settings tweaked as `spawn_with` allows.
pub async fn spawn_sibling_with(app: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = settings(&app.database_url);
    configure(&mut settings);
    let database = TestDatabase::shared(&app.database_url);
    start(settings, loopback().await, database).await
}

/// The service and the simulated Alipay, configured to trust each other as a merchant would
/// configure production: the simulator's public key, its gateway URL, our reachable notify_url.
pub struct PayFlow {
    pub app: TestApp,
    pub sim: SimHandle,
}

pub async fn spawn_paying(
    db: Db,
    faults: Faults,
    configure: impl FnOnce(&mut Settings),
) -> PayFlow {
    spawn_paying_as(db, faults, false, configure).await
}

/// As [`spawn_paying`], with the app in public-key certificate mode on both sides: the
/// simulator issues the certificates, and the service is given its three files instead of
/// Alipay's public key.
pub async fn spawn_paying_in_cert_mode(
    db: Db,
    faults: Faults,
    configure: impl FnOnce(&mut Settings),
) -> PayFlow {
    spawn_paying_as(db, faults, true, configure).await
}

async fn spawn_paying_as(
    db: Db,
    faults: Faults,
    cert_mode: bool,
    configure: impl FnOnce(&mut Settings),
) -> PayFlow {
    init_logs();
    let alipay_key = copy_of(&keys().alipay);
    let app_public = public_of(&keys().app);
    let mut app = RegisteredApp::new(APP_ID, app_public, SELLER_ID);
    if cert_mode {
        app = app.in_cert_mode(keys().app.public_key_spki_der());
    }
    let mut config = SimConfig::new(alipay_key).with_app(app);
    config.time_scale = 0.0001;
    config.faults = faults;
    let sim = Simulator::start(config)
        .await
        .expect("the simulator starts");

    let database = TestDatabase::create(db).await;
    let listener = loopback().await;
    let mut settings = settings(&database.url);
    settings.http.public_url = format!("http://{}/", listener.local_addr().unwrap());
    settings.alipay.gateway = sim.gateway_url();
    // Read at start only: the directory may go once the service runs.
    let files = tempfile::tempdir().unwrap();
    if cert_mode {
        let written = sim.write_cert_files(APP_ID, files.path()).unwrap();
        settings.alipay.public_key = None;
        settings.alipay.app_cert_file = Some(written.app_cert);
        settings.alipay.cert_file = Some(written.alipay_cert);
        settings.alipay.root_cert_file = Some(written.root_cert);
    } else {
        settings.alipay.public_key = Some(sim.alipay_public_key_base64());
    }
    configure(&mut settings);
    let app = start(settings, listener, database).await;
    PayFlow { app, sim }
}

async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()
}

async fn start(
    settings: Settings,
    listener: tokio::net::TcpListener,
    database: TestDatabase,
) -> TestApp {
    let app = Application::build_on(&settings, listener)
        .await
        .expect("the service starts");
    let address = format!("http://{}", app.address());
    let store = app.store();
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        store,
        database_url: settings.database.url.expose().to_owned(),
        _database: database,
    }
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        alipay_notify::telemetry::init(alipay_notify::config::LogFormat::Text);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs a notification body as Alipay does; returns the status and the reply text.
    pub async fn notify(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .client
            .post(self.url("/alipay/notify"))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(body)
            .send()
            .await
            .expect("notify request");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Stores a pending order directly, as `POST /api/orders` would.
    pub async fn pending_order(&self, out_trade_no: &str, amount: &str) -> Order {
        let now = time::OffsetDateTime::now_utc();
        let new = NewOrder {
            out_trade_no: out_trade_no.into(),
            subject: "Oolong tea".into(),
            body: None,
            total_amount: amount.parse().unwrap(),
            product: alipay_notify::alipay::product::Product::Page,
            created_at: now,
            expires_at: now + time::Duration::minutes(30),
        };
        match self.store.create_order(&new).await.unwrap() {
            alipay_notify::orders::Created::New(order) => order,
            other => panic!("order {out_trade_no} already existed: {other:?}"),
        }
    }

    /// Stores an order created 31 minutes ago that expired a minute ago, nobody having paid.
    pub async fn expired_order(&self, out_trade_no: &str, amount: &str) {
        let past = time::OffsetDateTime::now_utc() - time::Duration::minutes(31);
        let new = NewOrder {
            out_trade_no: out_trade_no.into(),
            subject: "Tea".into(),
            body: None,
            total_amount: amount.parse().unwrap(),
            product: alipay_notify::alipay::product::Product::Page,
            created_at: past,
            expires_at: past + time::Duration::minutes(30),
        };
        self.store.create_order(&new).await.unwrap();
    }

    pub async fn order(&self, out_trade_no: &str) -> Order {
        self.store
            .order(out_trade_no)
            .await
            .unwrap()
            .expect("order exists")
    }

    /// How many notifications `/metrics` counts with this verdict and reason.
    pub async fn counted(&self, verdict: &str, reason: &str) -> u64 {
        let metrics = self.client.get(self.url("/metrics")).send().await.unwrap();
        let metrics = metrics.text().await.unwrap();
        let series = format!(
            "alipay_notify_notifications_total{{verdict=\"{verdict}\",reason=\"{reason}\"}} "
        );
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |count| count.parse().unwrap())
    }

    /// Waits (up to 10 s) until a line of `/metrics` reads exactly `line`.
    pub async fn wait_for_metric(&self, line: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let metrics = self.client.get(self.url("/metrics")).send().await.unwrap();
            let metrics = metrics.text().await.unwrap();
            if metrics.lines().any(|l| l == line) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {line:?} in /metrics:\n{metrics}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Verdicts of the audit rows for an order, oldest first.
    pub async fn verdicts(&self, out_trade_no: &str) -> Vec<String> {
        let log = self.store.audit_log(out_trade_no).await.unwrap();
        log.into_iter()
            .map(|entry| entry.verdict.to_string())
            .collect()
    }
}

/// The parameters of a page-pay TRADE_SUCCESS notification for `out_trade_no`.
pub fn trade_success(out_trade_no: &str, amount: &str) -> Vec<(String, String)> {
    [
        ("notify_time", "2026-11-28 23:10:05"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", &format!("2026112800222231005{out_trade_no}")),
        ("app_id", APP_ID),
        ("auth_app_id", APP_ID),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("sign_type", "RSA2"),
        ("trade_no", &format!("2026112822001{out_trade_no}")),
        ("out_trade_no", out_trade_no),
        ("buyer_id", "2088102177846880"),
        ("buyer_logon_id", "abc***@example.com"),
        ("seller_id", SELLER_ID),
        ("seller_email", "shop@example.com"),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", amount),
        ("receipt_amount", amount),
        ("buyer_pay_amount", amount),
        ("point_amount", "0.00"),
        ("subject", "Oolong tea"),
        ("gmt_create", "2026-11-28 23:09:50"),
        ("gmt_payment", "2026-11-28 23:10:04"),
        (
            "fund_bill_list",
            &format!("[{{\"amount\":\"{amount}\",\"fundChannel\":\"ALIPAYACCOUNT\"}}]"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Replaces (or adds) a parameter.
pub fn with(mut params: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    match params.iter_mut().find(|(k, _)| k == key) {
        Some(pair) => pair.1 = value.to_owned(),
        None => params.push((key.to_owned(), value.to_owned())),
    }
    params
}

/// Signs like Alipay (everything but sign and sign_type, sorted, empty dropped) with `key`, and
/// encodes the form body; values are taken as bytes in whatever charset the caller chose.
pub fn signed_body_bytes(params: &[(String, Vec<u8>)], key: &PrivateKey) -> Vec<u8> {
    signed_form(params, key, CALLBACK_EXCLUDED)
}

pub fn signed_body(params: &[(String, String)], key: &PrivateKey) -> String {
    String::from_utf8(signed_form(params, key, CALLBACK_EXCLUDED)).unwrap()
}

/// Signed by Alipay's key: a genuine notification.
pub fn genuine(params: &[(String, String)]) -> String {
    signed_body(params, &keys().alipay)
}

/// A genuine notification in `charset` whose `subject` is `bytes` that are not valid in it,
/// signed over those raw bytes: only decoding can refuse it. Checked: it parses (no repeated
/// key), and verifying it with Alipay's public key fails at decoding, not at the signature.
pub fn genuine_undecodable(params: &[(String, String)], charset: &str, bytes: &[u8]) -> Vec<u8> {
    let params: Vec<(String, Vec<u8>)> = with(params.to_vec(), "charset", charset)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "subject" => (k, bytes.to_vec()),
            _ => (k, v.into_bytes()),
        })
        .collect();
    let body = signed_body_bytes(&params, &keys().alipay);
    let raw = RawParams::parse(&body).expect("a signed body with no repeated key parses");
    assert!(
        matches!(
            callback::verify(&raw, &public_of(&keys().alipay)),
            Err(CallbackError::Form(FormError::Encoding(_)))
        ),
        "the signature must verify and the {charset} decoding fail"
    );
    body
}

/// `params` with `sign_type=RSA` and a genuine RSA-SHA1 signature made by the openssl CLI with
/// Alipay's key over the sign string: what a downgrade would accept, so only refusing
/// `sign_type=RSA` refuses it. Checked: openssl verifies it with SHA-1.
pub fn downgraded_to_sha1(params: &[(String, String)]) -> String {
    let params = with(params.to_vec(), "sign_type", "RSA");
    let content = sign_content(
        params.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
        CALLBACK_EXCLUDED,
    );
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (dir.path().join("key.pem"), dir.path().join("public.pem"));
    std::fs::write(&private, keys().alipay.to_pkcs8_pem()).unwrap();
    let args = [
        "pkey",
        "-in",
        path_arg(&private),
        "-pubout",
        "-out",
        path_arg(&public),
    ];
    assert!(
        run("openssl", &args).status.success(),
        "openssl pkey -pubout"
    );
    let signature = openssl_sign("sha1", &private, &content);
    assert!(openssl_verifies("sha1", &public, &content, &signature));
    let sign = base64::engine::general_purpose::STANDARD.encode(signature);
    String::from_utf8(form_with_sign(&params, &sign)).unwrap()
}

/// A database of its own for one test: a SQLite file in a temp dir, or a fresh Postgres database
/// dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    cleanup: Option<Cleanup>,
}

enum Cleanup {
    SqliteDir(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// The Postgres server the tests use. Unreachable is a failure, never a skip.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDatabase {
    pub async fn create(db: Db) -> Self {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite:{}", dir.path().join("test.db").display());
                Self {
                    url,
                    cleanup: Some(Cleanup::SqliteDir(dir)),
                }
            }
            Db::Postgres => {
                let admin_url = postgres_admin_url();
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                        "Postgres tests need a server at TEST_DATABASE_URL ({admin_url}): {e}. \
                         Start it (see README) — these tests fail rather than skip."
                    )
                    });
                let name = format!("alipay_notify_test_{}", uuid_like());
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin_url).unwrap();
                url.set_path(&name);
                Self {
                    url: url.into(),
                    cleanup: Some(Cleanup::Postgres { admin_url, name }),
                }
            }
        }
    }

    fn shared(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            cleanup: None,
        }
    }
}

fn uuid_like() -> String {
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(Cleanup::Postgres { admin_url, name }) = self.cleanup.take() {
            // Drop runs inside the test's runtime; use a thread with its own to wait for the drop.
            let dropper = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                        let sql = format!("drop database if exists {name} with (force)");
                        let _ = sqlx::query(&sql).execute(&mut admin).await;
                    }
                });
            });
            let _ = dropper.join();
        }
    }
}
