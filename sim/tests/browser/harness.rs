//! The harness of the browser tests: `alipay-demo` as a child process, and headless Chromium
//! through chromedriver, on a desktop-sized window or as a 390 px phone.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alipay_test_support::net::free_address;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The longest any one step may take, the wait for Alipay's notification included.
pub const WAIT: Duration = Duration::from_secs(20);
pub const PAID: &str = r#"h1#status[data-status="paid"]"#;

/// The phone the tests hold: an iPhone-sized viewport with an iPhone's User-Agent.
pub const PHONE_WIDTH: u32 = 390;
const PHONE_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) \
AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";

/// Saved with the build (target/tmp/NAME). `UPDATE_DOCS=1` also refreshes the copy the README
/// shows, docs/NAME, so that ordinary test runs leave the checkout clean.
pub fn save_screenshot(name: &str, png: &[u8]) {
    let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&build, png).unwrap();
    println!("screenshot: {}", build.display());
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), png).unwrap();
    }
}

/// `alipay-demo` as a child process on a free port, its keys and database in a temporary
/// directory. Its output goes to demo.log there, printed if the test fails.
pub struct Demo {
    pub addr: SocketAddr,
    data: TempDir,
    _process: KillOnDrop,
}

impl Demo {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// With more flags, e.g. `--cert-mode`.
    pub async fn start_with(flags: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let addr = free_address();
        let log = File::create(data.path().join("demo.log")).unwrap();
        let mut process = KillOnDrop(
            Command::new(env!("CARGO_BIN_EXE_alipay-demo"))
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .args(["--listen", &addr.to_string(), "--data-dir"])
                .arg(data.path())
                .args(flags)
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

    /// What the demo printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.data.path().join("demo.log")).unwrap_or_default()
    }

    pub fn database_url(&self) -> String {
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
pub struct Browser {
    pub client: Client,
    _driver: Driver,
    _profile: TempDir,
}

impl Browser {
    /// A desktop-sized window.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A 390 px wide phone with an iPhone's User-Agent.
    pub async fn start_phone() -> Self {
        Self::start_with(Some(PHONE_WIDTH)).await
    }

    async fn start_with(phone_width: Option<u32>) -> Self {
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
            .capabilities(chrome_options(profile.path(), phone_width))
            .connect(&format!("http://{addr}"))
            .await
            .expect("chromedriver should start a Chromium session");
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.unwrap();
    }

    /// Types `text` into the field at `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        self.wait_for(css).await.send_keys(text).await.unwrap();
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap()
    }

    /// Polls for `css` (pages reload and navigate meanwhile); on time-out, fails with the page.
    pub async fn wait_for(&self, css: &str) -> Element {
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

    /// Whether the page fits the window's width: nothing makes it scroll sideways.
    pub async fn fits_width(&self) -> (bool, String) {
        let script = "return [document.documentElement.scrollWidth, window.innerWidth]";
        let widths = self.client.execute(script, vec![]).await.unwrap();
        let (scroll, inner) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        let url = self.url().await;
        (
            scroll <= inner,
            format!("{url}: {scroll} px wide in a {inner} px window"),
        )
    }

    /// Ends the session, which quits Chromium.
    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

fn chrome_options(
    profile: &Path,
    phone_width: Option<u32>,
) -> serde_json::Map<String, serde_json::Value> {
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
    let mut chrome = json!({ "binary": CHROMIUM, "args": args });
    if let Some(width) = phone_width {
        chrome["mobileEmulation"] = json!({
            "deviceMetrics": { "width": width, "height": 844, "pixelRatio": 2.0, "touch": true },
            "userAgent": PHONE_AGENT,
        });
    }
    let options = json!({ "goog:chromeOptions": chrome });
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
