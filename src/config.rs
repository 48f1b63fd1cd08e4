//! Settings: `config/default.toml`, then an optional profile file, then environment variables
//! (which win). Secrets are wrapped so that no `Debug` or error message can print them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::alipay::keys::{KeyError, PrivateKey, PublicKey};
use crate::alipay::{Alipay, AlipayConfig, PRODUCTION_GATEWAY};

/// Every setting, by the lower-case form of its environment variable name.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database_url: String,
    #[serde(default = "default_max_connections")]
    pub database_max_connections: u32,
    pub listen_addr: SocketAddr,
    pub public_url: String,
    pub alipay_app_id: Option<String>,
    pub alipay_app_private_key: Option<SecretString>,
    pub alipay_app_private_key_file: Option<PathBuf>,
    pub alipay_public_key: Option<String>,
    pub alipay_public_key_file: Option<PathBuf>,
    pub alipay_seller_id: Option<String>,
    #[serde(default = "default_gateway")]
    pub alipay_gateway: String,
    pub api_token: Option<SecretString>,
    #[serde(default)]
    pub checkout_open: bool,
    #[serde(default = "default_expiry")]
    pub order_expiry_minutes: u32,
    /// Seconds a request may take, body included, before it is answered 408.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Seconds from the first byte of a request to the end of its head (slow clients).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection may wait for its next request (or its first).
    #[serde(default = "default_keep_alive_timeout")]
    pub keep_alive_timeout_seconds: u64,
    /// Client connections served at once (lowered to what the open files limit allows).
    #[serde(default = "default_http_max_connections")]
    pub http_max_connections: usize,
    /// Seconds a stopping service waits for requests in progress.
    #[serde(default = "default_shutdown_drain")]
    pub shutdown_drain_seconds: u64,
    /// Seconds between reconciliation runs; 0 turns reconciliation off.
    #[serde(default = "default_reconcile_interval")]
    pub reconcile_interval_seconds: u64,
    /// Pending orders younger than this are left to their notification.
    #[serde(default = "default_reconcile_grace")]
    pub reconcile_grace_seconds: u64,
    #[serde(default)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

fn default_max_connections() -> u32 {
    10
}
fn default_gateway() -> String {
    PRODUCTION_GATEWAY.to_owned()
}
fn default_request_timeout() -> u64 {
    10
}
fn default_header_read_timeout() -> u64 {
    10
}
/// Longer than the 60 s idle timeout of common load balancers and nginx's upstream keepalive,
/// so that the proxy, not us, closes an idle connection (else it may reuse one we just closed).
fn default_keep_alive_timeout() -> u64 {
    75
}
fn default_http_max_connections() -> usize {
    10_000
}
fn default_shutdown_drain() -> u64 {
    10
}
fn default_reconcile_interval() -> u64 {
    60
}
fn default_reconcile_grace() -> u64 {
    120
}
fn default_expiry() -> u32 {
    30
}

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
    #[error("{setting} is not a valid URL")]
    InvalidUrl {
        setting: &'static str,
        source: url::ParseError,
    },
}

impl Settings {
    /// Loads built-in defaults, `config/default.toml` (relative to the working directory), then
    /// `profile`, then the environment.
    pub fn load(profile: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment =
            Figment::from(Toml::string(BUILT_IN_DEFAULTS)).merge(Toml::file("config/default.toml"));
        if let Some(profile) = profile {
            figment = figment.merge(Toml::file_exact(profile));
        }
        figment = figment.merge(Env::raw().only(&TYPED_ENV));
        for name in TEXT_ENV {
            if let Ok(value) = std::env::var(name) {
                // Merged as text: Env would read an all-digit app_id or token as a number.
                figment = figment.merge((name.to_ascii_lowercase(), value));
            }
        }
        figment
            .extract()
            .map_err(|e| ConfigError::Load(Box::new(e)))
    }

    /// The built-in defaults alone, ignoring files and the environment (tests, embedding).
    pub fn defaults() -> Self {
        Figment::from(Toml::string(BUILT_IN_DEFAULTS))
            .extract()
            .expect("built-in defaults are valid")
    }

    /// The merchant's Alipay integration, with both keys parsed and checked.
    pub fn alipay(&self) -> Result<Alipay, ConfigError> {
        let app_id = self
            .alipay_app_id
            .clone()
            .ok_or(ConfigError::Missing("ALIPAY_APP_ID"))?;
        let private = read_secret(
            "ALIPAY_APP_PRIVATE_KEY",
            self.alipay_app_private_key.as_ref(),
            self.alipay_app_private_key_file.as_deref(),
        )?;
        let app_key =
            PrivateKey::parse(private.expose_secret()).map_err(|source| ConfigError::BadKey {
                setting: "ALIPAY_APP_PRIVATE_KEY",
                source,
            })?;
        let public = read_secret(
            "ALIPAY_PUBLIC_KEY",
            self.alipay_public_key
                .clone()
                .map(SecretString::from)
                .as_ref(),
            self.alipay_public_key_file.as_deref(),
        )?;
        let alipay_key =
            PublicKey::parse(public.expose_secret()).map_err(|source| ConfigError::BadKey {
                setting: "ALIPAY_PUBLIC_KEY",
                source,
            })?;
        let invalid = |source| ConfigError::InvalidUrl {
            setting: "PUBLIC_URL",
            source,
        };
        let base = url::Url::parse(&self.public_url).map_err(invalid)?;
        let join = |path: &str| base.join(path).map(String::from).map_err(invalid);
        let config = AlipayConfig {
            app_id,
            seller_id: self.alipay_seller_id.clone().filter(|s| !s.is_empty()),
            gateway: self.alipay_gateway.clone(),
            notify_url: join("alipay/notify")?,
            return_url: join("payment/success")?,
        };
        Ok(Alipay::new(config, app_key, alipay_key))
    }
}

/// Keys used when `config/default.toml` is not around (e.g. the binary run from another folder).
const BUILT_IN_DEFAULTS: &str = r#"
database_url = "sqlite:data/alipay-notify.db"
listen_addr = "127.0.0.1:8000"
public_url = "http://127.0.0.1:8000"
"#;

/// Environment variables parsed as numbers or booleans.
const TYPED_ENV: [&str; 11] = [
    "REQUEST_TIMEOUT_SECONDS",
    "HEADER_READ_TIMEOUT_SECONDS",
    "KEEP_ALIVE_TIMEOUT_SECONDS",
    "HTTP_MAX_CONNECTIONS",
    "SHUTDOWN_DRAIN_SECONDS",
    "RECONCILE_INTERVAL_SECONDS",
    "RECONCILE_GRACE_SECONDS",
    "DATABASE_MAX_CONNECTIONS",
    "LISTEN_ADDR",
    "CHECKOUT_OPEN",
    "ORDER_EXPIRY_MINUTES",
];

/// Environment variables taken verbatim as text.
const TEXT_ENV: [&str; 11] = [
    "DATABASE_URL",
    "PUBLIC_URL",
    "ALIPAY_APP_ID",
    "ALIPAY_APP_PRIVATE_KEY",
    "ALIPAY_APP_PRIVATE_KEY_FILE",
    "ALIPAY_PUBLIC_KEY",
    "ALIPAY_PUBLIC_KEY_FILE",
    "ALIPAY_SELLER_ID",
    "ALIPAY_GATEWAY",
    "API_TOKEN",
    "LOG_FORMAT",
];

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
                "listen_addr = \"127.0.0.1:9000\"\npublic_url = \"https://a.example\"\ncheckout_open = false",
            )?;
            jail.create_file(
                "prod.toml",
                "public_url = \"https://b.example\"\ncheckout_open = true",
            )?;
            jail.set_env("PUBLIC_URL", "https://c.example");
            jail.set_env("ALIPAY_APP_ID", "2021000000000001");
            jail.set_env("API_TOKEN", "12345");

            let settings = Settings::load(Some(Path::new("prod.toml"))).expect("loads");

            assert_eq!(settings.listen_addr.port(), 9000);
            assert!(settings.checkout_open);
            assert_eq!(settings.public_url, "https://c.example");
            assert_eq!(settings.alipay_app_id.as_deref(), Some("2021000000000001"));
            assert_eq!(
                settings
                    .api_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
                Some("12345".into())
            );
            assert_eq!(settings.alipay_gateway, PRODUCTION_GATEWAY);
            assert!(settings.database_url.starts_with("sqlite:"));
            Ok(())
        });
    }

    #[test]
    fn secrets_do_not_debug_print() {
        Jail::expect_with(|jail| {
            jail.set_env("API_TOKEN", "hunter2-token");
            jail.set_env("ALIPAY_APP_PRIVATE_KEY", "MIIEsecretkeymaterial");
            let settings = Settings::load(None).expect("loads");
            let debug = format!("{settings:?}");
            assert!(
                !debug.contains("hunter2") && !debug.contains("secretkeymaterial"),
                "{debug}"
            );
            Ok(())
        });
    }
}
