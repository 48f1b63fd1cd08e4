//! `alipay-sim`: the simulated Alipay gateway for local development, with one registered
//! merchant app. It is its own process, never mounted inside `serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use super::config::{RegisteredApp, SimConfig};
use super::keystore::{self, PUBLIC_KEY_FILE};
use super::server::Simulator;
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
}

impl SimArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let (alipay_key, generated) = keystore::load_or_generate(&self.key_dir)?;
        let text = std::fs::read_to_string(&self.app_public_key_file)
            .with_context(|| format!("reading {}", self.app_public_key_file.display()))?;
        let app_key = PublicKey::parse(&text)
            .with_context(|| format!("parsing {}", self.app_public_key_file.display()))?;
        let mut config = SimConfig::new(alipay_key).with_app(RegisteredApp::new(
            self.app_id,
            app_key,
            self.seller_id,
        ));
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
        println!("gateway: {}", handle.gateway_url());
        shutdown_signal().await;
        handle.shutdown().await;
        Ok(())
    }
}
