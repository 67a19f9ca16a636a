//! Headless Chromium over WebDriver for the browser tests: starts Debian's `chromedriver` on a
//! free port of 127.0.0.1 (installing `chromium` and `chromium-driver` with
//! `scripts/browser-setup` if they are missing) and opens a session with a fresh profile.
//!
//! When Chromium cannot be installed or started, [`Browser::start`] panics with the reason: the
//! browser tests fail, they never skip.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

/// A running chromedriver and one browser session.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

/// Where the browser tests save screenshots: `target/test-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let dir = target.join("test-screenshots");
    std::fs::create_dir_all(&dir).expect("creating target/test-screenshots");
    dir
}

/// The paths of `chromium` and `chromedriver`, installing them first if needed. The tests of a
/// binary run side by side: one of them installs while the others wait here.
pub fn ensure_installed() -> (PathBuf, PathBuf) {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let (Some(c), Some(d), Some(_)) = (
        on_path("chromium"),
        on_path("chromedriver"),
        on_path("pdftotext"),
    ) {
        return (c, d);
    }
    let script = workspace_root().join("scripts/browser-setup");
    let status = Command::new("bash").arg(&script).status();
    match (status, on_path("chromium"), on_path("chromedriver")) {
        (Ok(s), Some(c), Some(d)) if s.success() => (c, d),
        (status, _, _) => panic!(
            "the browser tests need Debian's chromium, chromium-driver and poppler-utils; {} failed ({status:?}). \
             Install them (apt-get install chromium chromium-driver poppler-utils) and run the tests again.",
            script.display()
        ),
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (phone-sized window) that trusts
    /// exactly `server`'s self-signed certificate (by its public key).
    pub async fn start(server: &crate::TestServer) -> Browser {
        let spki = fieldcase_server::http::tls::spki_pin(server.dir.path())
            .expect("reading the server's public key");
        let (chromium, chromedriver) = ensure_installed();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("finding a free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on 127.0.0.1:{port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("creating a browser profile folder");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    // The test server's certificate is self-signed and made fresh for each
                    // test: trust its public key and no other untrusted certificate.
                    format!("--ignore-certificate-errors-spki-list={spki}"),
                    "--window-size=420,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                let mut driver = driver;
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("headless Chromium did not start through chromedriver: {e}")
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// The element `locator` finds on the page now; fails the test naming the locator.
    pub async fn element(&self, locator: Locator<'_>) -> Element {
        self.client
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("the page has no {locator:?}: {e}"))
    }

    /// Waits (fantoccini's default wait) until `locator` finds an element, across page loads.
    pub async fn wait_for(&self, locator: Locator<'_>) -> Element {
        self.client
            .wait()
            .for_element(locator)
            .await
            .unwrap_or_else(|e| panic!("the page did not show {locator:?}: {e}"))
    }

    /// Clicks the element `locator` finds.
    pub async fn click(&self, locator: Locator<'_>) {
        self.element(locator)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {locator:?}: {e}"));
    }

    /// Clicks the element `locator` finds, which submits a form or follows a link, and waits (up
    /// to 15 s) until the next page has replaced this one. A wait for an element right after a
    /// plain click can find it on the page being left, and a `goto` right after one can be
    /// overtaken by the form's redirect when it arrives.
    pub async fn click_and_wait(&self, locator: Locator<'_>) {
        let old = self.element(Locator::Css("html")).await;
        self.click(locator).await;
        let started = Instant::now();
        // The page being left keeps its root element until the next page has replaced it.
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "clicking {locator:?} did not lead to another page within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_for(Locator::Css("body")).await;
    }

    /// Types `text` into the field `locator` finds.
    pub async fn type_into(&self, locator: Locator<'_>, text: &str) {
        self.element(locator)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into {locator:?}: {e}"));
    }

    /// Chooses the option with `value` in the `select` element `locator` finds.
    pub async fn select(&self, locator: Locator<'_>, value: &str) {
        self.element(locator)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choosing {value:?} in {locator:?}: {e}"));
    }

    /// The text of the element `locator` finds.
    pub async fn text_of(&self, locator: Locator<'_>) -> String {
        self.element(locator)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("reading the text of {locator:?}: {e}"))
    }

    /// Signs in on `base`'s login page.
    pub async fn login(&self, base: &str, name: &str, password: &str) {
        self.client.goto(&format!("{base}/login")).await.unwrap();
        self.type_into(Locator::Id("name"), name).await;
        self.type_into(Locator::Id("password"), password).await;
        self.click(Locator::Id("signin")).await;
        // Only signed-in pages have the sign-out button.
        self.wait_for(Locator::Id("logout")).await;
    }

    /// Waits (up to 15 s, across page loads) until the page body contains `needle`; returns the
    /// body text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Ok(body) = self.client.find(Locator::Css("body")).await
                && let Ok(text) = body.text().await
            {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the page did not show {needle:?} within 15 s: {last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the page body.
    pub async fn text(&self) -> String {
        self.text_of(Locator::Css("body")).await
    }

    /// Saves a PNG screenshot as `target/test-screenshots/NAME.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Ends the session and stops chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
