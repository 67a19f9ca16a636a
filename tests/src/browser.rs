//! Headless Chromium over WebDriver for the browser tests: starts Debian's `chromedriver` on a
//! free port of 127.0.0.1 (installing `chromium` and `chromium-driver` with
//! `scripts/browser-setup` if they are missing) and opens a session with a fresh profile.
//!
//! When Chromium cannot be installed or started, [`Browser::start`] panics with the reason: the
//! browser tests fail, they never skip.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The paths of `chromium` and `chromedriver`, installing them first if needed.
pub fn ensure_installed() -> (PathBuf, PathBuf) {
    if let (Some(c), Some(d)) = (on_path("chromium"), on_path("chromedriver")) {
        return (c, d);
    }
    let script = workspace_root().join("scripts/browser-setup");
    let status = Command::new("bash").arg(&script).status();
    match (status, on_path("chromium"), on_path("chromedriver")) {
        (Ok(s), Some(c), Some(d)) if s.success() => (c, d),
        (status, _, _) => panic!(
            "the browser tests need Debian's chromium and chromium-driver; {} failed ({status:?}). \
             Install them (apt-get install chromium chromium-driver) and run the tests again.",
            script.display()
        ),
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (phone-sized window) that trusts
    /// exactly `server`'s self-signed certificate (by its public key).
    pub async fn start(server: &crate::TestServer) -> Browser {
        let spki = fieldcase_server::web::spki_pin(server.dir.path())
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

    /// Signs in on `base`'s login page.
    pub async fn login(&self, base: &str, name: &str, password: &str) {
        let c = &self.client;
        c.goto(&format!("{base}/login")).await.unwrap();
        c.find(Locator::Id("name"))
            .await
            .unwrap()
            .send_keys(name)
            .await
            .unwrap();
        c.find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(password)
            .await
            .unwrap();
        c.find(Locator::Id("signin"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // Only signed-in pages have the sign-out button.
        c.wait().for_element(Locator::Id("logout")).await.unwrap();
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
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
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
