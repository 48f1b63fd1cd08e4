//! `alipay-demo`: the whole payment flow on one machine with no configuration. The
//! service (open checkout, SQLite under the data directory) and the simulated Alipay gateway run
//! side by side, configured to trust each other exactly as a merchant configures production, and
//! the shop's back end receives the service's signed webhooks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use tokio::net::TcpListener;

use crate::shop::Shop;
use crate::{keystore, pki, RegisteredApp, SimConfig, Simulator};
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};
use alipay_notify::config::{DatabaseUrl, OperatorSettings, Role, Settings};
use alipay_notify::startup::{shutdown_signal, Application};

const DEMO_APP_ID: &str = "2021000000000000";
const DEMO_SELLER_ID: &str = "2088000000000000";

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where the service listens (the shop is at its root); the simulator takes another free
    /// loopback port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Keys and the SQLite database are kept here between runs.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Run the app in public-key certificate mode: the simulated Alipay issues the certificates
    /// (kept under the data directory) and the service is given the three files instead of
    /// Alipay's public key.
    #[arg(long, env = "DEMO_CERT_MODE")]
    cert_mode: bool,
    /// Also let a console viewer (reads everything, acts on nothing) in with this token (16
    /// characters or more), to try the viewer role.
    #[arg(long, env = "DEMO_CONSOLE_VIEWER_TOKEN")]
    console_viewer_token: Option<String>,
}

impl DemoArgs {
    pub async fn run(self) -> anyhow::Result<()> {
        let sim_dir = self.data_dir.join("sim");
        let (alipay_key, _) = keystore::load_or_generate(&sim_dir)?;
        let app_key = app_key(&self.data_dir.join("demo").join("app_private_key.pem"))?;
        let app_public = PublicKey::parse(&app_key.public_key_base64())?;

        let mut app = RegisteredApp::new(DEMO_APP_ID, app_public, DEMO_SELLER_ID);
        let hierarchy = if self.cert_mode {
            app = app.in_cert_mode(app_key.public_key_spki_der());
            Some(pki::load_or_generate(&sim_dir, &alipay_key)?)
        } else {
            None
        };
        let mut sim_config = SimConfig::new(alipay_key).with_app(app);
        sim_config.pki = hierarchy;
        sim_config.time_scale = 1.0;
        let sim = Simulator::start(sim_config).await?;

        let listener = TcpListener::bind(self.listen).await.with_context(|| {
            format!(
                "cannot listen on {} (in use? pick another with --listen or LISTEN_ADDR)",
                self.listen
            )
        })?;
        let api_token = random_token();
        let console_token = random_token();
        let shop = Shop::start()
            .await
            .context("cannot start the demo shop's back end")?;
        let mut settings = self.settings(
            &app_key,
            &sim.alipay_public_key_base64(),
            &sim.gateway_url(),
            &api_token,
        );
        settings.console.token = Some(SecretString::from(console_token.clone()));
        if let Some(token) = &self.console_viewer_token {
            settings.console.operators.push(OperatorSettings {
                name: "viewer".into(),
                token: SecretString::from(token.clone()),
                role: Role::Viewer,
            });
        }
        settings.webhooks.url = Some(shop.webhook_url());
        settings.webhooks.secret = Some(SecretString::from(shop.secret.clone()));
        if self.cert_mode {
            let files = sim.write_cert_files(DEMO_APP_ID, &self.data_dir.join("certs"))?;
            settings.alipay.public_key = None;
            settings.alipay.app_cert_file = Some(files.app_cert);
            settings.alipay.cert_file = Some(files.alipay_cert);
            settings.alipay.root_cert_file = Some(files.root_cert);
        }
        let app = Application::build_on(&settings, listener).await?;

        println!("alipay-notify demo");
        println!(
            "  shop:              http://{}/   <- open this",
            self.listen
        );
        println!("  simulated Alipay:  {}", sim.gateway_url());
        if self.cert_mode {
            println!(
                "  certificate mode:  app_cert_sn {}, files in {}",
                sim.app_cert_sn(DEMO_APP_ID).unwrap_or_default(),
                self.data_dir.join("certs").display()
            );
        }
        println!("  shop webhooks:     {}", shop.webhook_url());
        println!("  database:          {}", settings.database.url);
        println!("  API token:         {api_token}");
        println!(
            "  console:           http://{}/console   token: {console_token}",
            self.listen
        );
        // `cargo run --bin alipay-demo` builds the demo only, so the hint builds the CLI too;
        // `--bin` because the workspace has several binaries. Run from where the demo was.
        let cli = format!(
            "DATABASE_URL={} cargo run --release --bin alipay-notify --",
            settings.database.url
        );
        println!("  orders:            {cli} orders list");
        println!("  one order's story: {cli} orders show <out_trade_no>");
        println!("Ctrl-C stops both.");
        app.run_until(shutdown_signal()).await?;
        sim.shutdown().await;
        Ok(())
    }

    fn settings(
        &self,
        app_key: &PrivateKey,
        alipay_public: &str,
        gateway: &str,
        token: &str,
    ) -> Settings {
        let mut settings = Settings::defaults();
        settings.database.url = DatabaseUrl::new(format!(
            "sqlite:{}",
            self.data_dir.join("demo.db").display()
        ));
        settings.http.listen_addr = self.listen;
        settings.http.public_url = format!("http://{}/", self.listen);
        settings.alipay.app_id = Some(DEMO_APP_ID.into());
        settings.alipay.seller_id = Some(DEMO_SELLER_ID.into());
        settings.alipay.app_private_key = Some(SecretString::from(app_key.to_pkcs8_pem()));
        settings.alipay.public_key = Some(alipay_public.into());
        settings.alipay.gateway = gateway.into();
        settings.api.token = Some(SecretString::from(token));
        settings.checkout.open = true;
        settings.reconcile.interval_seconds = Duration::from_secs(15).as_secs();
        settings.reconcile.grace_seconds = 30;
        settings
    }
}

/// The demo merchant's app key: generated on first run and kept (mode 0600) for the next.
fn app_key(path: &Path) -> anyhow::Result<PrivateKey> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return PrivateKey::parse(&text).with_context(|| format!("reading {}", path.display()));
    }
    let key = PrivateKey::generate();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    keystore::create_private(path, key.to_pkcs8_pem().as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
