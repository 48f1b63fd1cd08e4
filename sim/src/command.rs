//! `alipay-sim`: the simulated Alipay gateway for local development, with one registered
//! merchant app, with plain keys or in certificate mode. It is its own process, never mounted
//! inside `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use super::config::{RegisteredApp, SimConfig};
use super::keystore::{self, PUBLIC_KEY_FILE};
use super::pki;
use super::server::{SimHandle, Simulator};
use alipay_notify::alipay::keys::PublicKey;
use alipay_notify::startup::shutdown_signal;

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Where to listen. Keep it on loopback: the simulator POSTs to any notify_url that a signed
    /// request names.
    #[arg(long, env = "SIM_LISTEN", default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
    /// Directory holding the simulator's Alipay keypair; generated there on first start.
    #[arg(long, env = "SIM_KEY_DIR", default_value = "data/sim")]
    key_dir: PathBuf,
    /// The merchant app's id (the service's ALIPAY_APP_ID).
    #[arg(long, env = "SIM_APP_ID")]
    app_id: String,
    /// The merchant app's public key, PEM or bare base64, as uploaded to Alipay's console.
    #[arg(long, env = "SIM_APP_PUBLIC_KEY_FILE")]
    app_public_key_file: PathBuf,
    /// The merchant's PID, 2088 and 12 digits (the service's ALIPAY_SELLER_ID).
    #[arg(long, env = "SIM_SELLER_ID", default_value = "2088000000000001")]
    seller_id: String,
    /// Multiplies Alipay's notification retry schedule; 1.0 is real time.
    #[arg(long, env = "SIM_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Register the app in public-key certificate mode: the certificate hierarchy is kept in the
    /// key directory, and the app's three certificate files are written there.
    #[arg(long, env = "SIM_CERT_MODE")]
    cert_mode: bool,
}

impl SimArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let (alipay_key, generated) = keystore::load_or_generate(&self.key_dir)?;
        let text = std::fs::read_to_string(&self.app_public_key_file)
            .with_context(|| format!("reading {}", self.app_public_key_file.display()))?;
        let app_key = PublicKey::parse(&text)
            .with_context(|| format!("parsing {}", self.app_public_key_file.display()))?;
        let mut app = RegisteredApp::new(self.app_id.clone(), app_key, self.seller_id.clone());
        let hierarchy = if self.cert_mode {
            app = app.in_cert_mode(pki::public_key_spki_der(&text)?);
            Some(pki::load_or_generate(&self.key_dir, &alipay_key)?)
        } else {
            None
        };
        let mut config = SimConfig::new(alipay_key).with_app(app);
        config.pki = hierarchy;
        config.bind = self.listen;
        config.time_scale = self.time_scale;
        if !self.listen.ip().is_loopback() {
            tracing::warn!(listen = %self.listen, "the simulator listens beyond loopback");
        }
        let handle = Simulator::start(config).await?;
        if generated {
            println!(
                "generated a new Alipay keypair in {}",
                self.key_dir.display()
            );
        }
        let saved = self.key_dir.join(PUBLIC_KEY_FILE);
        println!(
            "Alipay public key (bare base64, also in {}):",
            saved.display()
        );
        println!("{}", handle.alipay_public_key_base64());
        if self.cert_mode {
            self.print_cert_files(&handle)?;
        }
        println!("gateway: {}", handle.gateway_url());
        shutdown_signal().await;
        handle.shutdown().await;
        Ok(())
    }

    /// Writes the app's certificate files to the key directory and says which settings name them.
    fn print_cert_files(&self, handle: &SimHandle) -> anyhow::Result<()> {
        let files = handle.write_cert_files(&self.app_id, &self.key_dir)?;
        println!("certificate mode: the service's certificate files (also in the key directory):");
        println!("ALIPAY_APP_CERT_FILE={}", files.app_cert.display());
        println!("ALIPAY_CERT_FILE={}", files.alipay_cert.display());
        println!("ALIPAY_ROOT_CERT_FILE={}", files.root_cert.display());
        if let Some(sn) = handle.app_cert_sn(&self.app_id) {
            println!("app_cert_sn: {sn}");
        }
        println!("alipay_root_cert_sn: {}", handle.root_cert_sn());
        println!("alipay_cert_sn: {}", handle.alipay_cert_sn());
        Ok(())
    }
}
