//! Settings, in sections (`database`, `http`, `alipay`, `checkout`, `api`, `console`, `reconcile`,
//! `webhooks`, `log`):
//! `config/default.toml` (compiled in: the one place defaults are written), then that file in the
//! working directory if present, then an optional profile file, then environment variables
//! (which win; their names are flat, e.g. `DATABASE_URL`, see [`ENVIRONMENT`]). Secrets are
//! wrapped so that no `Debug` or error message can print them, the database password included.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::alipay::keys::{KeyError, PrivateKey, PublicKey};
use crate::alipay::product::Product;
use crate::alipay::trust::{CertFile, CertMode, CertModeError};
use crate::alipay::{Alipay, AlipayConfig};

/// The defaults, as shipped in the repository's `config/default.toml`.
const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub alipay: AlipaySettings,
    pub checkout: CheckoutSettings,
    pub api: ApiSettings,
    pub console: ConsoleSettings,
    pub reconcile: ReconcileSettings,
    pub webhooks: WebhookSettings,
    pub notify: NotifySettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite:PATH` or `postgres://…`.
    pub url: DatabaseUrl,
    /// Postgres pool size; above 2, two connections stay with the notify writers.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub listen_addr: SocketAddr,
    /// The external base URL; notify_url and return_url hang off it.
    pub public_url: String,
    /// Seconds a request may take once its head has arrived, body included.
    pub request_timeout_seconds: u64,
    /// Seconds from the first byte of a request to the end of its head (slow clients).
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection may wait for its next request (or its first).
    pub keep_alive_timeout_seconds: u64,
    /// Client connections served at once (lowered to what the open files limit allows).
    pub max_connections: usize,
    /// Seconds a stopping service waits for requests in progress.
    pub shutdown_drain_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlipaySettings {
    pub app_id: Option<String>,
    pub app_private_key: Option<SecretString>,
    pub app_private_key_file: Option<PathBuf>,
    pub public_key: Option<String>,
    pub public_key_file: Option<PathBuf>,
    /// Certificate mode: the app's public-key certificate (`appCertPublicKey_<app_id>.crt`).
    pub app_cert_file: Option<PathBuf>,
    /// Certificate mode: Alipay's certificate and its CA (`alipayCertPublicKey_RSA2.crt`).
    pub cert_file: Option<PathBuf>,
    /// Certificate mode: Alipay's root bundle (`alipayRootCert.crt`).
    pub root_cert_file: Option<PathBuf>,
    pub seller_id: Option<String>,
    pub gateway: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckoutSettings {
    /// Whether a browser form may create an order at its own price (demo shops only).
    pub open: bool,
    /// How long a buyer has to pay (`time_expire`).
    pub order_expiry_minutes: u32,
    /// The products orders may use, comma-separated (`page,wap,qr,app`).
    pub enabled_products: String,
    /// Where the phone cashier's "back" goes; default the service's own front page.
    pub quit_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Bearer token for `/api/*`; unset or empty disables the API.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// One operator (named `admin`, role `operator`); unset, with no `operators`, disables the
    /// console.
    pub token: Option<SecretString>,
    /// Named operators, each with their own token and role.
    #[serde(default)]
    pub operators: Vec<OperatorSettings>,
    /// How long a login lasts.
    pub session_hours: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub name: String,
    pub token: SecretString,
    pub role: Role,
}

/// What an operator may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything; acts on nothing.
    Viewer,
    /// Reads and acts: refunds, closes, asks Alipay, redelivers, marks anomalies reviewed.
    Operator,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Seconds between reconciliation runs; 0 turns reconciliation off.
    pub interval_seconds: u64,
    /// Pending orders younger than this are left to their notification.
    pub grace_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// One endpoint (named `default`) that gets every event.
    pub url: Option<String>,
    pub secret: Option<SecretString>,
    /// More endpoints, each with its own secret and optional event types.
    #[serde(default)]
    pub endpoints: Vec<EndpointSettings>,
    /// Waits before each attempt (`0s`, `5s`, `5m`, `2h`, …); after the last, `failed`.
    pub retry_schedule: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSettings {
    pub name: String,
    pub url: String,
    pub secret: SecretString,
    /// Event types to send (`order.paid`, …); every type when absent.
    pub types: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// Notifications verified or waiting for their commit at once; more are answered `fail`
    /// straight away (Alipay resends). 0: no limit.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A database URL whose password never reaches `Debug` or `Display`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, to connect with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                f.write_str(url.as_str())
            }
            Ok(_) => f.write_str(&self.0),
            Err(_) => f.write_str("(unparseable database URL)"),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Whether an environment variable is parsed (numbers, booleans) or taken verbatim as text (an
/// all-digit app_id or token must stay text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Parsed,
    Text,
}

/// Every environment variable, the setting it sets, and how its value is read.
pub(crate) const ENVIRONMENT: [(&str, &str, Kind); 32] = [
    ("DATABASE_URL", "database.url", Kind::Text),
    (
        "DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
        Kind::Parsed,
    ),
    ("LISTEN_ADDR", "http.listen_addr", Kind::Text),
    ("PUBLIC_URL", "http.public_url", Kind::Text),
    (
        "REQUEST_TIMEOUT_SECONDS",
        "http.request_timeout_seconds",
        Kind::Parsed,
    ),
    (
        "HEADER_READ_TIMEOUT_SECONDS",
        "http.header_read_timeout_seconds",
        Kind::Parsed,
    ),
    (
        "KEEP_ALIVE_TIMEOUT_SECONDS",
        "http.keep_alive_timeout_seconds",
        Kind::Parsed,
    ),
    ("HTTP_MAX_CONNECTIONS", "http.max_connections", Kind::Parsed),
    (
        "SHUTDOWN_DRAIN_SECONDS",
        "http.shutdown_drain_seconds",
        Kind::Parsed,
    ),
    ("ALIPAY_APP_ID", "alipay.app_id", Kind::Text),
    (
        "ALIPAY_APP_PRIVATE_KEY",
        "alipay.app_private_key",
        Kind::Text,
    ),
    (
        "ALIPAY_APP_PRIVATE_KEY_FILE",
        "alipay.app_private_key_file",
        Kind::Text,
    ),
    ("ALIPAY_PUBLIC_KEY", "alipay.public_key", Kind::Text),
    (
        "ALIPAY_PUBLIC_KEY_FILE",
        "alipay.public_key_file",
        Kind::Text,
    ),
    ("ALIPAY_APP_CERT_FILE", "alipay.app_cert_file", Kind::Text),
    ("ALIPAY_CERT_FILE", "alipay.cert_file", Kind::Text),
    ("ALIPAY_ROOT_CERT_FILE", "alipay.root_cert_file", Kind::Text),
    ("ALIPAY_SELLER_ID", "alipay.seller_id", Kind::Text),
    ("ALIPAY_GATEWAY", "alipay.gateway", Kind::Text),
    ("CHECKOUT_OPEN", "checkout.open", Kind::Parsed),
    (
        "ORDER_EXPIRY_MINUTES",
        "checkout.order_expiry_minutes",
        Kind::Parsed,
    ),
    ("ENABLED_PRODUCTS", "checkout.enabled_products", Kind::Text),
    ("QUIT_URL", "checkout.quit_url", Kind::Text),
    ("API_TOKEN", "api.token", Kind::Text),
    ("CONSOLE_TOKEN", "console.token", Kind::Text),
    (
        "CONSOLE_SESSION_HOURS",
        "console.session_hours",
        Kind::Parsed,
    ),
    (
        "RECONCILE_INTERVAL_SECONDS",
        "reconcile.interval_seconds",
        Kind::Parsed,
    ),
    (
        "RECONCILE_GRACE_SECONDS",
        "reconcile.grace_seconds",
        Kind::Parsed,
    ),
    ("WEBHOOK_URL", "webhooks.url", Kind::Text),
    ("WEBHOOK_SECRET", "webhooks.secret", Kind::Text),
    ("NOTIFY_MAX_IN_FLIGHT", "notify.max_in_flight", Kind::Parsed),
    ("LOG_FORMAT", "log.format", Kind::Text),
];

/// What `serve` cannot start without (for `serve --help` and the README).
pub(crate) const REQUIRED: &str =
    "ALIPAY_APP_ID, ALIPAY_APP_PRIVATE_KEY (or ALIPAY_APP_PRIVATE_KEY_FILE), \
ALIPAY_PUBLIC_KEY (or ALIPAY_PUBLIC_KEY_FILE), or in certificate mode ALIPAY_APP_CERT_FILE, \
ALIPAY_CERT_FILE and ALIPAY_ROOT_CERT_FILE instead of the public key";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration")]
    Load(#[from] Box<figment::Error>),
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{setting}_FILE: cannot read {path}")]
    Unreadable {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{setting}")]
    BadKey {
        setting: &'static str,
        source: KeyError,
    },
    #[error(
        "ENABLED_PRODUCTS must list one or more of page, wap, qr, app (comma-separated), not {0:?}"
    )]
    Products(String),
    #[error(
        "both ALIPAY_PUBLIC_KEY (or ALIPAY_PUBLIC_KEY_FILE) and certificate files ({0}) are set: \
an app signs with plain keys or in certificate mode, as set up in Alipay's console; \
keep the public key or the three certificate files"
    )]
    KeyAndCertificates(String),
    #[error("certificate mode needs all three of ALIPAY_APP_CERT_FILE, ALIPAY_CERT_FILE and ALIPAY_ROOT_CERT_FILE; {0} is not set")]
    MissingCertificate(&'static str),
    #[error("{setting}: cannot read {path}")]
    UnreadableCertificate {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{setting} ({path})")]
    BadCertificate {
        setting: &'static str,
        path: PathBuf,
        source: CertModeError,
    },
    #[error("{setting} is not a valid URL")]
    InvalidUrl {
        setting: &'static str,
        source: url::ParseError,
    },
}

impl Settings {
    /// Loads the compiled-in defaults, `config/default.toml` in the working directory (if there),
    /// then `profile`, then the environment.
    pub fn load(profile: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment =
            Figment::from(Toml::string(DEFAULTS)).merge(Toml::file("config/default.toml"));
        if let Some(profile) = profile {
            figment = figment.merge(Toml::file_exact(profile));
        }
        for (name, setting, kind) in ENVIRONMENT {
            let Ok(text) = std::env::var(name) else {
                continue;
            };
            figment = match kind {
                Kind::Text => figment.merge(Serialized::default(setting, text)),
                Kind::Parsed => {
                    let value: figment::value::Value = text.parse().expect("parsing is infallible");
                    figment.merge(Serialized::default(setting, value))
                }
            };
        }
        figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// The compiled-in defaults alone, ignoring files and the environment (tests, embedding).
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .expect("config/default.toml is valid")
    }

    /// The enabled products, in the order configured, each once.
    pub fn products(&self) -> Result<Vec<Product>, ConfigError> {
        let text = &self.checkout.enabled_products;
        let mut products = Vec::new();
        for name in text.split(',').map(str::trim) {
            let product =
                Product::parse(name).ok_or_else(|| ConfigError::Products(text.clone()))?;
            if !products.contains(&product) {
                products.push(product);
            }
        }
        Ok(products)
    }

    /// The external base URL, checked.
    pub fn public_url(&self) -> Result<url::Url, ConfigError> {
        url::Url::parse(&self.http.public_url).map_err(|source| ConfigError::InvalidUrl {
            setting: "PUBLIC_URL",
            source,
        })
    }

    /// Where the phone cashier's "back" goes: QUIT_URL, or the service's front page.
    pub fn quit_url(&self) -> Result<String, ConfigError> {
        match self.checkout.quit_url.as_deref().filter(|u| !u.is_empty()) {
            Some(given) => {
                url::Url::parse(given)
                    .map(String::from)
                    .map_err(|source| ConfigError::InvalidUrl {
                        setting: "QUIT_URL",
                        source,
                    })
            }
            None => Ok(self
                .public_url()?
                .join("/")
                .map(String::from)
                .unwrap_or_default()),
        }
    }

    /// The merchant's Alipay integration, with both keys parsed and checked.
    pub fn alipay(&self) -> Result<Alipay, ConfigError> {
        let settings = &self.alipay;
        let app_id = settings
            .app_id
            .clone()
            .ok_or(ConfigError::Missing("ALIPAY_APP_ID"))?;
        let private = read_secret(
            "ALIPAY_APP_PRIVATE_KEY",
            settings.app_private_key.as_ref(),
            settings.app_private_key_file.as_deref(),
        )?;
        let app_key =
            PrivateKey::parse(private.expose_secret()).map_err(|source| ConfigError::BadKey {
                setting: "ALIPAY_APP_PRIVATE_KEY",
                source,
            })?;
        let invalid = |source| ConfigError::InvalidUrl {
            setting: "PUBLIC_URL",
            source,
        };
        let base = self.public_url()?;
        let join = |path: &str| base.join(path).map(String::from).map_err(invalid);
        let config = AlipayConfig {
            app_id,
            seller_id: settings.seller_id.clone().filter(|s| !s.is_empty()),
            gateway: settings.gateway.clone(),
            notify_url: join("alipay/notify")?,
            return_url: join("payment/success")?,
        };
        match self.certificate_files()? {
            Some(files) => {
                let certs = load_certificates(&files, &app_key)?;
                Ok(Alipay::with_certificates(config, app_key, certs))
            }
            None => {
                let public = read_secret(
                    "ALIPAY_PUBLIC_KEY",
                    settings.public_key.clone().map(SecretString::from).as_ref(),
                    settings.public_key_file.as_deref(),
                )?;
                let alipay_key = PublicKey::parse(public.expose_secret()).map_err(|source| {
                    ConfigError::BadKey {
                        setting: "ALIPAY_PUBLIC_KEY",
                        source,
                    }
                })?;
                Ok(Alipay::new(config, app_key, alipay_key))
            }
        }
    }

    /// The three certificate files when any is set (certificate mode), each with its file.
    fn certificate_files(&self) -> Result<Option<CertificateFiles<'_>>, ConfigError> {
        let settings = &self.alipay;
        let given = [
            (CertFile::App, settings.app_cert_file.as_deref()),
            (CertFile::Alipay, settings.cert_file.as_deref()),
            (CertFile::Root, settings.root_cert_file.as_deref()),
        ]
        .map(|(file, path)| (file, path.filter(|p| !p.as_os_str().is_empty())));
        let set: Vec<&str> = given
            .iter()
            .filter(|(_, path)| path.is_some())
            .map(|(file, _)| file.setting())
            .collect();
        if set.is_empty() {
            return Ok(None);
        }
        let public_key_set = settings
            .public_key
            .as_deref()
            .is_some_and(|k| !k.trim().is_empty())
            || settings
                .public_key_file
                .as_deref()
                .is_some_and(|p| !p.as_os_str().is_empty());
        if public_key_set {
            return Err(ConfigError::KeyAndCertificates(set.join(", ")));
        }
        let [app, alipay, root] =
            given.map(|(file, path)| path.ok_or(ConfigError::MissingCertificate(file.setting())));
        Ok(Some(CertificateFiles {
            app: app?,
            alipay: alipay?,
            root: root?,
        }))
    }
}

/// Where the three files of certificate mode are.
struct CertificateFiles<'a> {
    app: &'a Path,
    alipay: &'a Path,
    root: &'a Path,
}

impl CertificateFiles<'_> {
    fn path(&self, file: CertFile) -> &Path {
        match file {
            CertFile::App => self.app,
            CertFile::Alipay => self.alipay,
            CertFile::Root => self.root,
        }
    }
}

/// Reads the certificate files and checks them against each other and the app key, at now.
fn load_certificates(
    files: &CertificateFiles<'_>,
    app_key: &PrivateKey,
) -> Result<CertMode, ConfigError> {
    // Bytes, not text: a binary (DER) file is then reported as "no PEM certificate in it".
    let read = |file: CertFile| {
        std::fs::read(files.path(file))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|source| ConfigError::UnreadableCertificate {
                setting: file.setting(),
                path: files.path(file).to_owned(),
                source,
            })
    };
    CertMode::load(
        &read(CertFile::App)?,
        &read(CertFile::Alipay)?,
        &read(CertFile::Root)?,
        app_key,
        time::OffsetDateTime::now_utc(),
    )
    .map_err(|(file, source)| ConfigError::BadCertificate {
        setting: file.setting(),
        path: files.path(file).to_owned(),
        source,
    })
}

/// A key given inline or as a file; the inline value wins. Errors name the setting only.
fn read_secret(
    setting: &'static str,
    inline: Option<&SecretString>,
    file: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    if let Some(value) = inline.filter(|v| !v.expose_secret().trim().is_empty()) {
        return Ok(value.clone());
    }
    let path = file.ok_or(ConfigError::Missing(setting))?;
    std::fs::read_to_string(path)
        .map(SecretString::from)
        .map_err(|source| ConfigError::Unreadable {
            setting,
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
// Jail's closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn environment_beats_profile_beats_default_file() {
        Jail::expect_with(|jail| {
            jail.create_dir("config")?;
            jail.create_file(
                "config/default.toml",
                "[http]\nlisten_addr = \"127.0.0.1:9000\"\npublic_url = \"https://a.example\"\n\
                 [checkout]\nopen = false",
            )?;
            jail.create_file(
                "prod.toml",
                "[http]\npublic_url = \"https://b.example\"\n[checkout]\nopen = true",
            )?;
            jail.set_env("PUBLIC_URL", "https://c.example");
            jail.set_env("ALIPAY_APP_ID", "2021000000000001");
            jail.set_env("API_TOKEN", "12345");
            jail.set_env("REQUEST_TIMEOUT_SECONDS", "3");

            let settings = Settings::load(Some(Path::new("prod.toml"))).expect("loads");

            assert_eq!(settings.http.listen_addr.port(), 9000);
            assert!(settings.checkout.open);
            assert_eq!(settings.http.public_url, "https://c.example");
            assert_eq!(settings.http.request_timeout_seconds, 3);
            assert_eq!(settings.alipay.app_id.as_deref(), Some("2021000000000001"));
            assert_eq!(
                settings
                    .api
                    .token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                Some("12345".into())
            );
            assert_eq!(
                settings.alipay.gateway,
                "https://openapi.alipay.com/gateway.do"
            );
            assert!(settings.database.url.expose().starts_with("sqlite:"));
            Ok(())
        });
    }

    #[test]
    fn every_setting_has_its_default_in_config_default_toml() {
        Jail::expect_with(|_| {
            let settings = Settings::load(None).expect("loads with no file and no environment");
            assert_eq!(settings.http.keep_alive_timeout_seconds, 75);
            assert_eq!(settings.reconcile.interval_seconds, 60);
            assert_eq!(settings.log.format, LogFormat::Text);
            Ok(())
        });
    }

    #[test]
    fn every_environment_variable_names_a_setting() {
        Jail::expect_with(|jail| {
            for (name, _, kind) in ENVIRONMENT {
                let value = match (name, kind) {
                    ("LISTEN_ADDR", _) => "127.0.0.1:1",
                    ("LOG_FORMAT", _) => "json",
                    ("CHECKOUT_OPEN", _) => "true",
                    (_, Kind::Parsed) => "7",
                    (_, Kind::Text) => "0123",
                };
                jail.set_env(name, value);
            }
            let settings = Settings::load(None).expect("loads");
            assert_eq!(settings.database.max_connections, 7);
            assert_eq!(settings.http.max_connections, 7);
            assert_eq!(settings.http.shutdown_drain_seconds, 7);
            assert_eq!(settings.notify.max_in_flight, 7);
            assert_eq!(settings.alipay.seller_id.as_deref(), Some("0123"));
            assert_eq!(settings.alipay.app_id.as_deref(), Some("0123"));
            assert_eq!(settings.log.format, LogFormat::Json);
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_debug_print() {
        Jail::expect_with(|jail| {
            jail.set_env("API_TOKEN", "hunter2-token");
            jail.set_env(
                "WEBHOOK_SECRET",
                "whsec_c2VjcmV0LXdlYmhvb2sta2V5LW1hdGVyaWFs",
            );
            jail.set_env("ALIPAY_APP_PRIVATE_KEY", "MIIEsecretkeymaterial");
            jail.set_env(
                "DATABASE_URL",
                "postgres://shop:pg-s3cret@db.internal:5432/shop",
            );
            let settings = Settings::load(None).expect("loads");
            let debug = format!("{settings:?}");
            assert!(
                !debug.contains("hunter2")
                    && !debug.contains("secretkeymaterial")
                    && !debug.contains("c2VjcmV0")
                    && !debug.contains("pg-s3cret"),
                "{debug}"
            );
            assert!(
                debug.contains("postgres://shop:***@db.internal:5432/shop"),
                "{debug}"
            );
            assert_eq!(
                settings.database.url.expose(),
                "postgres://shop:pg-s3cret@db.internal:5432/shop"
            );
            Ok(())
        });
    }

    fn vector(file: &str) -> String {
        format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"))
    }

    /// The app id, key and public URL, plus the environment given.
    fn alipay_with(jail: &mut Jail, env: &[(&str, String)]) -> Result<Alipay, ConfigError> {
        jail.set_env("ALIPAY_APP_ID", "2021000000000001");
        jail.set_env(
            "ALIPAY_APP_PRIVATE_KEY_FILE",
            vector("app_private_pkcs8.pem"),
        );
        for (name, value) in env {
            jail.set_env(name, value);
        }
        Settings::load(None).expect("loads").alipay()
    }

    fn cert_files() -> Vec<(&'static str, String)> {
        vec![
            ("ALIPAY_APP_CERT_FILE", vector("certs/app_cert.crt")),
            ("ALIPAY_CERT_FILE", vector("certs/alipay_cert_chain.crt")),
            ("ALIPAY_ROOT_CERT_FILE", vector("certs/root_bundle.crt")),
        ]
    }

    #[test]
    fn the_three_certificate_files_select_certificate_mode() {
        Jail::expect_with(|jail| {
            let alipay = alipay_with(jail, &cert_files()).expect("certificate mode");
            let certs = alipay.certificates().expect("in certificate mode");
            assert_eq!(
                certs.root_cert_sn(),
                "96cb8e0f1d1780cc185cbc05cbf33e41_093225e01f1ee64818776c7c4b3ca033"
            );
            Ok(())
        });
    }

    #[test]
    fn a_public_key_and_certificate_files_together_are_refused() {
        Jail::expect_with(|jail| {
            let mut env = cert_files();
            env.push(("ALIPAY_PUBLIC_KEY_FILE", vector("alipay_public_spki.pem")));
            let error = alipay_with(jail, &env).unwrap_err();
            assert!(
                matches!(error, ConfigError::KeyAndCertificates(_)),
                "{error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains("ALIPAY_PUBLIC_KEY") && message.contains("ALIPAY_CERT_FILE"),
                "{message}"
            );
            Ok(())
        });
    }

    #[test]
    fn certificate_mode_needs_all_three_files_and_names_the_bad_one() {
        Jail::expect_with(|jail| {
            let mut env = cert_files();
            env.pop();
            let error = alipay_with(jail, &env).unwrap_err();
            assert!(
                matches!(
                    error,
                    ConfigError::MissingCertificate("ALIPAY_ROOT_CERT_FILE")
                ),
                "{error:?}"
            );

            let mut env = cert_files();
            env[2].1 = vector("certs/root_bundle_ec_only.crt");
            let error = alipay_with(jail, &env).unwrap_err();
            let message = crate::report::Report(&error).to_string();
            assert!(
                message.contains("ALIPAY_ROOT_CERT_FILE")
                    && message.contains("root_bundle_ec_only.crt")
                    && message.contains("no RSA-signed root"),
                "{message}"
            );

            let mut env = cert_files();
            env[0].1 = vector("app_private_pkcs8.pem");
            let message = crate::report::Report(&alipay_with(jail, &env).unwrap_err()).to_string();
            assert!(
                message.contains("ALIPAY_APP_CERT_FILE") && message.contains("not valid PEM"),
                "{message}"
            );
            // A key file's content never reaches the message.
            assert!(!message.contains("MII"), "{message}");
            Ok(())
        });
    }
}
