//! The demo in a real browser, as a new user meets it: the shop, the simulated Alipay cashier, and
//! the return page that turns to "Payment received" once Alipay's notification is in, then
//! "Order fulfilled" once the shop's webhook endpoint has it. Headless
//! Chromium through chromedriver (Debian's `chromium` and `chromium-driver`); where they are
//! missing, build.rs leaves `has_chromium` unset and the test reports itself ignored.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alipay_notify::orders::{self, OrderStatus};
use alipay_test_support::net::free_address;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest any one step may take, the wait for Alipay's notification included.
const WAIT: Duration = Duration::from_secs(20);
const PAID: &str = r#"h1#status[data-status="paid"]"#;

#[tokio::test]
#[cfg_attr(
    not(has_chromium),
    ignore = "needs Debian's chromium and chromium-driver"
)]
async fn a_buyer_pays_in_the_demo_and_sees_payment_received_and_the_shop_told() {
    let demo = Demo::start().await;
    let browser = Browser::start().await;

    browser.goto(&format!("http://{}/", demo.addr)).await;
    browser.click("#pay").await; // the shop's "Pay with Alipay"
    browser.wait_for("#cancel").await; // only the cashier has Cancel
    let cashier = browser.url().await;
    browser.click("#pay").await; // the cashier's Pay
    let status = browser.wait_for(PAID).await;

    assert_ne!(
        cashier.port(),
        Some(demo.addr.port()),
        "cashier not at the simulator: {cashier}"
    );
    let page = browser.url().await;
    assert_eq!(
        page.port(),
        Some(demo.addr.port()),
        "not back at the service: {page}"
    );
    assert_eq!(page.path(), "/payment/success");
    assert_eq!(status.text().await.unwrap(), "Payment received");
    // The page keeps refreshing until the shop's webhook endpoint has verified and taken the
    // order.paid event.
    let fulfilled = browser.wait_for("#fulfilled").await;
    assert_eq!(
        fulfilled.text().await.unwrap(),
        "Order fulfilled (webhook received)"
    );
    assert_eq!(browser.text("#amount").await, "¥88.00");
    let out_trade_no = browser.text("#out_trade_no").await;
    save_screenshot(&browser.client.screenshot().await.unwrap());
    browser.close().await;

    let store = orders::connect(&demo.database_url(), 1, Default::default())
        .await
        .unwrap();
    let order = store.order(&out_trade_no).await.unwrap();
    let order = order.unwrap_or_else(|| panic!("order {out_trade_no} is not in the database"));
    assert_eq!(order.status, OrderStatus::Paid, "{order:?}");
    assert_eq!(order.total_amount.to_string(), "88.00");
    assert!(
        order.trade_no.is_some() && order.paid_at.is_some(),
        "{order:?}"
    );
}

/// Saved with the build (target/tmp/demo-paid.png). `UPDATE_DOCS=1` also refreshes the copy the
/// README shows, docs/demo-paid.png, so that ordinary test runs leave the checkout clean.
fn save_screenshot(png: &[u8]) {
    let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-paid.png");
    std::fs::write(&build, png).unwrap();
    println!("screenshot: {}", build.display());
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("demo-paid.png"), png).unwrap();
    }
}

/// `alipay-demo` as a child process on a free port, its keys and database in a temporary
/// directory. Its output goes to demo.log there, printed if the test fails.
struct Demo {
    addr: SocketAddr,
    data: TempDir,
    _process: KillOnDrop,
}

impl Demo {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let addr = free_address();
        let log = File::create(data.path().join("demo.log")).unwrap();
        let mut process = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_alipay-demo"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .args(["--listen", &addr.to_string(), "--data-dir"])
                .arg(data.path())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("alipay-demo should start"),
        );
        wait_until_answers(&format!("http://{addr}/"), &mut process.0).await;
        Self {
            addr,
            data,
            _process: process,
        }
    }

    fn database_url(&self) -> String {
        format!("sqlite:{}", self.data.path().join("demo.db").display())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.data.path().join("demo.log"));
            eprintln!("--- alipay-demo output ---\n{}", log.unwrap_or_default());
        }
    }
}

/// chromedriver on a free port, driving headless Chromium with a fresh profile.
struct Browser {
    client: Client,
    _driver: Driver,
    _profile: TempDir,
}

impl Browser {
    async fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let addr = free_address();
        let mut process = KillOnDrop(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={}", addr.port()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver should start"),
        );
        wait_until_answers(&format!("http://{addr}/status"), &mut process.0).await;
        let driver = Driver { addr, process };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(chrome_options(profile.path()))
            .connect(&format!("http://{addr}"))
            .await
            .expect("chromedriver should start a Chromium session");
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// Polls for `css` (pages reload and navigate meanwhile); on time-out, fails with the page.
    async fn wait_for(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.client.find(Locator::Css(css)).await;
            match found {
                Ok(element) => return element,
                Err(_) if Instant::now() < deadline => {}
                Err(error) => {
                    let url = self.client.current_url().await.map(String::from);
                    let source = self.client.source().await.unwrap_or_default();
                    panic!("no {css} within {WAIT:?} ({error}) at {url:?}; page:\n{source}");
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ends the session, which quits Chromium.
    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

fn chrome_options(profile: &Path) -> serde_json::Map<String, serde_json::Value> {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1000,800",
    ];
    let mut args: Vec<String> = args.map(String::from).into();
    args.push(format!("--user-data-dir={}", profile.display()));
    let options = json!({ "goog:chromeOptions": { "binary": CHROMIUM, "args": args } });
    options.as_object().unwrap().clone()
}

/// Killing chromedriver would leave its Chromium running, so a test that fails before `close`
/// asks chromedriver to quit its browsers and exit.
struct Driver {
    addr: SocketAddr,
    process: KillOnDrop,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let timeout = Some(Duration::from_secs(5));
        if let Ok(mut stream) = TcpStream::connect(self.addr) {
            let _ = stream.set_read_timeout(timeout);
            let request = format!("GET /shutdown HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
            let _ = stream.write_all(request.as_bytes());
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + WAIT;
        while matches!(self.process.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A child process killed when dropped, so a failing test leaves nothing running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `url` until it answers 2xx, failing early if the process behind it has exited.
async fn wait_until_answers(url: &str, process: &mut Child) {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = http.get(url).send().await {
            if response.status().is_success() {
                return;
            }
        }
        if let Some(status) = process.try_wait().unwrap() {
            panic!("{url} never answered: its process exited ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
