//! Starting and stopping the simulator: its shared state, the listener, the background tasks
//! (deliveries and expiry timers) that stop with it, the certificates of apps in certificate mode,
//! and the handle that tests hold.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::callbacks::Signer;
use super::config::{RegisteredApp, SimConfig};
use super::delivery::Delivery;
use super::faults::Faults;
use super::pki::{CertFiles, Pki, PkiError, Rotation};
use super::routes;
use super::trades::{Attempt, Trade, TradeBook};
use alipay_notify::alipay::keys::{PrivateKey, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the notification client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot certify the apps in certificate mode: {0}")]
    Certificates(#[from] PkiError),
}

/// Spawns tasks that end when the simulator stops (or its handle is dropped).
#[derive(Clone)]
pub(crate) struct Background {
    stop: watch::Receiver<bool>,
}

impl Background {
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                // Also resolves, with an error, once the handle and its sender are gone.
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

/// Everything the routes and background tasks share.
pub(crate) struct Shared {
    /// `http://ADDR` of the bound listener: QR codes point at pages under it.
    pub base_url: String,
    pub apps: HashMap<String, RegisteredApp>,
    pub alipay_key: PrivateKey,
    /// Present when an app is in certificate mode (or a hierarchy was configured).
    pub pki: Option<Pki>,
    pub book: TradeBook,
    pub faults: Faults,
    pub delivery: Delivery,
    pub background: Background,
}

impl Shared {
    /// Who signs what goes back to `app`: Alipay's current certificate key in certificate mode,
    /// the plain Alipay key otherwise.
    pub fn signer(&self, app: &RegisteredApp) -> Signer<'_> {
        match self.pki.as_ref().filter(|_| app.is_cert_mode()) {
            Some(pki) => Signer::Cert(pki.signer()),
            None => Signer::Plain(&self.alipay_key),
        }
    }
}

/// The hierarchy, with a certificate for every app in certificate mode; generated over the
/// Alipay key when such an app needs one and none was configured.
fn certify(
    pki: Option<Pki>,
    apps: &[RegisteredApp],
    alipay_key: &PrivateKey,
) -> Result<Option<Pki>, PkiError> {
    let cert_mode: Vec<(&str, &[u8])> = apps
        .iter()
        .filter_map(|app| Some((app.app_id.as_str(), app.cert_mode_key.as_deref()?)))
        .collect();
    if cert_mode.is_empty() {
        return Ok(pki);
    }
    let mut pki = match pki {
        Some(pki) => pki,
        None => Pki::generate(alipay_key)?,
    };
    for (app_id, key) in cert_mode {
        pki.certify_app(app_id, key)?;
    }
    Ok(Some(pki))
}

/// How the simulator names itself in links: its address, with a wildcard bind (`0.0.0.0`, `::`)
/// written as loopback, which is where a browser on the same machine finds it.
fn base_url(address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, address.port()))
}

/// A simulator bound to its address, not yet serving.
pub struct Simulator {
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl Simulator {
    /// Checks the configuration and binds the listen address (port 0 picks a free port).
    pub async fn bind(config: SimConfig) -> Result<Self, SimError> {
        if let Some(problem) = config.problems() {
            return Err(SimError::Config(problem));
        }
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| SimError::Bind {
                address: config.bind,
                source,
            })?;
        let base_url = listener
            .local_addr()
            .map(base_url)
            .map_err(|source| SimError::Bind {
                address: config.bind,
                source,
            })?;
        let (stop, stopped) = watch::channel(false);
        let background = Background { stop: stopped };
        let book = TradeBook::default();
        let delivery = Delivery::new(
            config.delivery_timeout,
            book.clone(),
            config.time_scale,
            background.clone(),
        )?;
        let pki = certify(config.pki, &config.apps, &config.alipay_key)?;
        let apps = config
            .apps
            .into_iter()
            .map(|app| (app.app_id.clone(), app))
            .collect();
        let shared = Arc::new(Shared {
            base_url,
            apps,
            alipay_key: config.alipay_key,
            pki,
            book,
            faults: config.faults,
            delivery,
            background,
        });
        Ok(Self {
            listener,
            shared,
            stop,
        })
    }

    /// Binds and starts serving in the background.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        Ok(Self::bind(config).await?.spawn())
    }

    pub fn spawn(self) -> SimHandle {
        let address = self
            .listener
            .local_addr()
            .expect("a bound listener has an address");
        let mut stopped = self.stop.subscribe();
        let app = routes::router(self.shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                })
                .await
        });
        tracing::info!(%address, "Alipay simulator listening");
        SimHandle {
            address,
            shared: self.shared,
            stop: self.stop,
            server,
        }
    }
}

/// A running simulator. Dropping it stops the simulator too, without waiting.
pub struct SimHandle {
    address: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

impl SimHandle {
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDR`, where the `/sim/…` routes live.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `http://ADDR/gateway.do`: what a merchant configures as its Alipay gateway.
    pub fn gateway_url(&self) -> String {
        format!("{}/gateway.do", self.base_url())
    }

    /// Bare SPKI base64, as Alipay's console shows its public key.
    pub fn alipay_public_key_base64(&self) -> String {
        self.shared.alipay_key.public_key_base64()
    }

    pub fn alipay_public_key(&self) -> PublicKey {
        PublicKey::parse(&self.alipay_public_key_base64()).expect("our own key parses")
    }

    /// The certificate hierarchy, to issue test certificates (expired ones, ones for another key).
    ///
    /// # Panics
    /// When no app is in certificate mode (see `RegisteredApp::in_cert_mode`).
    pub fn pki(&self) -> &Pki {
        self.shared
            .pki
            .as_ref()
            .expect("no app in certificate mode: register one with RegisteredApp::in_cert_mode")
    }

    /// Writes the three files Alipay's console gives a cert-mode app into `dir` (the app's
    /// `appCertPublicKey_<app_id>.crt`, `alipayCertPublicKey_RSA2.crt` with Alipay's current
    /// certificate then its CA, and the root bundle `alipayRootCert.crt`) and returns their paths.
    pub fn write_cert_files(&self, app_id: &str, dir: &Path) -> Result<CertFiles, PkiError> {
        match &self.shared.pki {
            Some(pki) => pki.write_files(app_id, dir),
            None => Err(PkiError::NotInCertMode(app_id.to_owned())),
        }
    }

    /// The SN of the certificate Alipay signs cert-mode answers with now. Panics as [`Self::pki`].
    pub fn alipay_cert_sn(&self) -> String {
        self.pki().alipay_cert_sn()
    }

    /// The `alipay_root_cert_sn` a cert-mode request carries. Panics as [`Self::pki`].
    pub fn root_cert_sn(&self) -> String {
        self.pki().root_cert_sn()
    }

    /// The `app_cert_sn` of an app in certificate mode; `None` for any other app.
    pub fn app_cert_sn(&self, app_id: &str) -> Option<String> {
        let pki = self.shared.pki.as_ref()?;
        pki.app_cert_sn(app_id).map(str::to_owned)
    }

    /// Alipay rotates its certificate: a new key and certificate sign every cert-mode answer and
    /// notification from now on; the old ones stay downloadable. Returns the new SN. Generates RSA
    /// keys (slow in debug builds). Panics as [`Self::pki`], or if rcgen fails.
    pub fn rotate_alipay_cert(&self, rotation: Rotation) -> String {
        self.pki()
            .rotate_alipay_cert(rotation)
            .expect("rcgen issues a certificate from valid parameters")
    }

    /// Every trade, with its refunds and notifications, as of now.
    pub fn trades(&self) -> Vec<Trade> {
        self.shared.book.trades()
    }

    /// The trade with this number (of any app; the first when several apps use it).
    pub fn trade(&self, out_trade_no: &str) -> Option<Trade> {
        self.trades()
            .into_iter()
            .find(|t| t.out_trade_no == out_trade_no)
    }

    /// Every delivery attempt about this trade, oldest first.
    pub fn attempts(&self, out_trade_no: &str) -> Vec<Attempt> {
        self.trade(out_trade_no)
            .map(|t| t.attempts())
            .unwrap_or_default()
    }

    /// Faults for notifications about `out_trade_no`, replacing the global ones; set before Pay.
    pub fn set_faults(&self, out_trade_no: &str, faults: Faults) {
        self.shared.book.set_faults(out_trade_no, faults);
    }

    /// Polls the trade book until `condition` holds or `timeout` passes; says which.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&[Trade]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if condition(&self.trades()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The trade's attempts once there are at least `count` (or whatever there is at `timeout`).
    pub async fn wait_for_attempts(
        &self,
        out_trade_no: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<Attempt> {
        self.wait_for(timeout, |trades| {
            trades
                .iter()
                .filter(|t| t.out_trade_no == out_trade_no)
                .map(|t| t.attempts().len())
                .sum::<usize>()
                >= count
        })
        .await;
        self.attempts(out_trade_no)
    }

    /// The trade's attempts once there are exactly `count` and no more arrive for `quiet`: an
    /// attempt is recorded only after its reply is read, so a count read once may be one short,
    /// and one more attempt after that would be a resend. Panics with what there is otherwise.
    pub async fn settled_attempts(
        &self,
        out_trade_no: &str,
        count: usize,
        timeout: Duration,
        quiet: Duration,
    ) -> Vec<Attempt> {
        let reached = self.wait_for_attempts(out_trade_no, count, timeout).await;
        assert!(
            reached.len() >= count,
            "{out_trade_no}: {} attempts after {timeout:?}, not {count}: {reached:?}",
            reached.len()
        );
        tokio::time::sleep(quiet).await;
        let settled = self.attempts(out_trade_no);
        assert_eq!(
            settled.len(),
            count,
            "{out_trade_no}: {count} attempts expected, and no more: {settled:?}"
        );
        settled
    }

    /// Stops accepting requests, cancels pending deliveries and timers, and waits for the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        match self.server.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "simulator server ended with an error"),
            Err(error) => tracing::warn!(%error, "simulator server task failed"),
        }
    }
}
