//! A headless Chromium driven through WebDriver (the W3C protocol, spoken by Debian's
//! `chromedriver`): the few commands the dashboard tests need, over reqwest, which the workspace
//! already builds. Where Chromium or its driver is not installed the test is skipped, unless
//! `TICKLER_REQUIRE_BROWSER` is set (CI sets it), which makes it fail instead.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key under which WebDriver names an element.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// A readiness bound for the driver to listen, not a timing assertion.
const DRIVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// A readiness bound for a page to show what a test waits for, not a timing assertion.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
const CHROMIUM: &str = "/usr/bin/chromium";
const DRIVER: &str = "chromedriver";

pub struct Browser {
    http: reqwest::Client,
    /// The driver's `host:port`.
    driver_addr: String,
    /// The session's URL; empty once it has ended.
    session: String,
    driver: Child,
    /// The browser's profile directory, removed when the browser is dropped.
    _profile: tempfile::TempDir,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

fn installed() -> bool {
    let driver = Command::new(DRIVER)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    driver && std::path::Path::new(CHROMIUM).exists()
}

impl Browser {
    /// A new headless browser session, or `None` (skipped) where none is installed.
    pub async fn start() -> Option<Browser> {
        if !installed() {
            if std::env::var_os("TICKLER_REQUIRE_BROWSER").is_some() {
                panic!(
                    "TICKLER_REQUIRE_BROWSER is set but Chromium or chromedriver is missing: \
                     apt-get install chromium chromium-driver"
                );
            }
            eprintln!("skipped: Chromium is not installed (set TICKLER_REQUIRE_BROWSER to fail)");
            return None;
        }
        let port = super::free_port();
        let driver = Command::new(DRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            assert!(
                started.elapsed() < DRIVER_START_TIMEOUT,
                "chromedriver never listened"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1300",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let mut browser = Browser {
            http,
            driver_addr: format!("127.0.0.1:{port}"),
            session: String::new(),
            driver,
            _profile: profile,
        };
        let reply = browser
            .send("POST", &format!("{base}/session"), capabilities)
            .await;
        browser.session = format!("{base}/session/{}", reply["sessionId"].as_str().unwrap());
        Some(browser)
    }

    /// Sends one WebDriver command and returns its `value`, failing the test on an error.
    async fn send(&self, method: &str, url: &str, body: Value) -> Value {
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string()),
        };
        let response = request.send().await.expect("the driver answers");
        let status = response.status();
        let reply: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(status.is_success(), "WebDriver {method} {url}: {reply}");
        reply["value"].clone()
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        self.send(method, &format!("{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn current_url(&self) -> String {
        let url = self.command("GET", "/url", Value::Null).await;
        url.as_str().unwrap().to_owned()
    }

    pub async fn source(&self) -> String {
        let source = self.command("GET", "/source", Value::Null).await;
        source.as_str().unwrap().to_owned()
    }

    /// The elements matching the CSS `selector`, in document order.
    pub async fn find_all(&self, selector: &str) -> Vec<Element> {
        let query = json!({ "using": "css selector", "value": selector });
        let found = self.command("POST", "/elements", query).await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().unwrap().to_owned()))
            .collect()
    }

    /// The one element matching `selector`; fails the test if there is none.
    pub async fn find(&self, selector: &str) -> Element {
        let found = self.find_all(selector).await;
        let url = self.current_url().await;
        found
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {selector} on {url}"))
    }

    /// The first element matching `selector` once the page has one: what follows a click that
    /// submits a form, whose navigation may begin after the click's reply.
    pub async fn wait_for(&self, selector: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(found) = self.find_all(selector).await.into_iter().next() {
                return found;
            }
            if started.elapsed() > PAGE_TIMEOUT {
                let url = self.current_url().await;
                panic!("no {selector} on {url} after {PAGE_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn text(&self, element: &Element) -> String {
        let text = self
            .command("GET", &format!("/element/{}/text", element.0), Value::Null)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        let path = format!("/element/{}/attribute/{name}", element.0);
        let value = self.command("GET", &path, Value::Null).await;
        value.as_str().map(str::to_owned)
    }

    pub async fn click(&self, element: &Element) {
        let path = format!("/element/{}/click", element.0);
        self.command("POST", &path, json!({})).await;
    }

    /// Types `text` into a field (after what it holds).
    pub async fn type_into(&self, element: &Element, text: &str) {
        let path = format!("/element/{}/value", element.0);
        self.command("POST", &path, json!({ "text": text })).await;
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.command("GET", "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Ends the session (the browser exits) and the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        self.session.clear();
    }

    /// Ends the session without a runtime (a test that failed is dropping the browser): a
    /// killed driver would leave its browser running.
    fn end_session_blocking(&self) {
        use std::io::{Read, Write};
        let Some(path) = self.session.find("/session/").map(|at| &self.session[at..]) else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(&self.driver_addr) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(PAGE_TIMEOUT));
        let request = format!(
            "DELETE {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.driver_addr
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read_to_end(&mut Vec::new());
        }
    }
}

impl Drop for Browser {
    /// Ends the browser, then its driver; the profile directory goes with the struct.
    fn drop(&mut self) {
        self.end_session_blocking();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
