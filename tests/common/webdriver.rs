//! A small W3C WebDriver client (https://www.w3.org/TR/webdriver2/) over reqwest's blocking
//! client: it starts Debian's `chromedriver` on a free loopback port and drives a headless
//! Chromium through it, for the tests that use the DPO console as a browser would.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// Debian's chromedriver (package chromium-driver).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Chromium (package chromium), which chromedriver starts.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How often chromedriver's /status is asked before it counts as not starting, and the pause
/// between two tries (about ten seconds in all: it is ready in well under one here).
const READY_TRIES: u32 = 100;
const READY_PAUSE: Duration = Duration::from_millis(100);

/// How often a click's page is looked for before it counts as not loading, and the pause
/// between two looks (ten seconds in all; a console page loads in milliseconds).
const LOAD_TRIES: u32 = 200;
const LOAD_PAUSE: Duration = Duration::from_millis(50);

/// The key under which WebDriver names an element in JSON (W3C WebDriver, "Elements").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether Chromium and chromedriver are both installed where Debian puts them.
pub fn installed() -> bool {
    Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file()
}

/// What went wrong talking to chromedriver; a refused command carries WebDriver's own error
/// code and message.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    #[error("chromedriver could not be started ({CHROMEDRIVER}): {0}")]
    Start(std::io::Error),
    #[error("no temporary folder for Chromium's profile: {0}")]
    Profile(std::io::Error),
    #[error("chromedriver exited before it was ready: {0}")]
    Exited(std::process::ExitStatus),
    #[error("chromedriver on port {port} was not ready after {tries} tries")]
    NotReady { port: u16, tries: u32 },
    #[error("the page a click leads to had not loaded after {tries} looks")]
    NotLoaded { tries: u32 },
    #[error("{command}: no reply from chromedriver: {source}")]
    Transport {
        command: String,
        source: reqwest::Error,
    },
    #[error("{command}: {error}: {message}")]
    Refused {
        command: String,
        error: String,
        message: String,
    },
    #[error("{command}: a reply WebDriver does not define: {reply}")]
    Reply { command: String, reply: String },
    #[error("screenshot {path}: {source}")]
    Screenshot {
        path: String,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, WebDriverError>;

/// An element of the current page, as WebDriver names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(String);

/// A cookie of the current page, with the attributes a test checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    pub name: String,
    pub http_only: bool,
    /// `Strict`, `Lax` or `None` as the browser reports it.
    pub same_site: Option<String>,
}

/// A chromedriver process and one browser session in it; both end when this is dropped.
pub struct Browser {
    driver: Child,
    http: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    /// Chromium's profile, fresh for every browser (no cookie or cache from an earlier run).
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits until it says it is ready, and
    /// opens a session in a headless Chromium.
    pub fn start() -> Result<Browser> {
        let port = free_port().map_err(WebDriverError::Start)?;
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(WebDriverError::Start)?;
        let http = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| WebDriverError::Transport {
                command: "client".into(),
                source,
            })?;
        let profile = tempfile::tempdir().map_err(WebDriverError::Profile)?;
        // The browser is built before the session exists, so that a failure from here on
        // still kills chromedriver (Drop).
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            profile,
        };
        let base = format!("http://127.0.0.1:{port}");
        browser.wait_ready(&base, port)?;
        let user_data_dir = format!("--user-data-dir={}", browser.profile.path().display());
        // Without the background-networking flags Chromium keeps trying to reach Google's
        // services, and the closed network of the test machines refuses its connections.
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "timeouts": {"implicit": 0, "pageLoad": 30_000, "script": 10_000},
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", user_data_dir,
                    "--window-size=1280,1600",
                ],
            },
        }}});
        let reply = browser.send(
            "new session",
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(capabilities),
        )?;
        let session_id = reply
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected("new session", &reply))?;
        browser.session = format!("{base}/session/{session_id}");
        Ok(browser)
    }

    /// Polls `GET /status` until chromedriver says `ready`, a bounded number of times.
    fn wait_ready(&mut self, base: &str, port: u16) -> Result<()> {
        for _ in 0..READY_TRIES {
            if let Some(status) = self.driver.try_wait().map_err(WebDriverError::Start)? {
                return Err(WebDriverError::Exited(status));
            }
            let ready = self
                .http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|reply| reply.json::<Value>().ok())
                .is_some_and(|body| body["value"]["ready"] == Value::Bool(true));
            if ready {
                return Ok(());
            }
            std::thread::sleep(READY_PAUSE);
        }
        Err(WebDriverError::NotReady {
            port,
            tries: READY_TRIES,
        })
    }

    /// Opens `url` and waits until it has loaded.
    pub fn navigate(&self, url: &str) -> Result<()> {
        self.post("navigate", "/url", json!({ "url": url }))
            .map(drop)
    }

    /// The address of the current page (after any redirect).
    pub fn current_url(&self) -> Result<String> {
        string(self.get("current url", "/url")?, "current url")
    }

    /// The first element that matches the CSS selector `css`.
    pub fn find(&self, css: &str) -> Result<Element> {
        let command = format!("find {css}");
        let value = self.post(&command, "/element", locator(css))?;
        element(&value).ok_or_else(|| unexpected(&command, &value))
    }

    /// The first element inside `parent` that matches `css`.
    pub fn find_in(&self, parent: &Element, css: &str) -> Result<Element> {
        let command = format!("find {css} in an element");
        let value = self.post(
            &command,
            &format!("/element/{}/element", parent.0),
            locator(css),
        )?;
        element(&value).ok_or_else(|| unexpected(&command, &value))
    }

    /// Every element that matches `css`, in document order (none is no error).
    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let command = format!("find all {css}");
        let value = self.post(&command, "/elements", locator(css))?;
        value
            .as_array()
            .and_then(|found| found.iter().map(element).collect::<Option<Vec<_>>>())
            .ok_or_else(|| unexpected(&command, &value))
    }

    /// Clicks `element`; returns once the click is dispatched, which may be before the page
    /// a link or a form's button leads to has loaded (see [`Browser::click_and_load`]).
    pub fn click(&self, element: &Element) -> Result<()> {
        self.post("click", &format!("/element/{}/click", element.0), json!({}))
            .map(drop)
    }

    /// Clicks `element`, a link or a form's button, and waits until the page it leads to has
    /// loaded: chromedriver answers a click before a form's submission has replaced the page. The old page is gone once its root element is stale (W3C
    /// WebDriver, "stale element reference"); the new one is loaded once its `readyState`
    /// is `complete`.
    pub fn click_and_load(&self, element: &Element) -> Result<()> {
        let old_page = self.find("html")?;
        self.click(element)?;
        let mut gone = false;
        for _ in 0..LOAD_TRIES {
            match self.property(&old_page, "tagName") {
                Err(WebDriverError::Refused { error, message, .. })
                    if old_page_gone(&error, &message) =>
                {
                    gone = true;
                    break;
                }
                Err(other) => return Err(other),
                Ok(_) => std::thread::sleep(LOAD_PAUSE),
            }
        }
        if !gone {
            return Err(WebDriverError::NotLoaded { tries: LOAD_TRIES });
        }
        for _ in 0..LOAD_TRIES {
            let state = self.post(
                "ready state",
                "/execute/sync",
                json!({ "script": "return document.readyState;", "args": [] }),
            )?;
            if state == "complete" {
                return Ok(());
            }
            std::thread::sleep(LOAD_PAUSE);
        }
        Err(WebDriverError::NotLoaded { tries: LOAD_TRIES })
    }

    /// Types `text` into `element`.
    pub fn send_keys(&self, element: &Element, text: &str) -> Result<()> {
        self.post(
            "send keys",
            &format!("/element/{}/value", element.0),
            json!({ "text": text }),
        )
        .map(drop)
    }

    /// The text of `element` as it is rendered.
    pub fn text(&self, element: &Element) -> Result<String> {
        string(
            self.get("text", &format!("/element/{}/text", element.0))?,
            "text",
        )
    }

    /// The attribute `name` of `element` as the HTML gave it (not what was typed since: see
    /// [`Browser::property`]); `None` when it has none.
    pub fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        let command = format!("attribute {name}");
        let value = self.get(
            &command,
            &format!("/element/{}/attribute/{name}", element.0),
        )?;
        match value {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some(text)),
            other => Err(unexpected(&command, &other)),
        }
    }

    /// The DOM property `name` of `element` (`value`: what the field holds now), as JSON.
    pub fn property(&self, element: &Element, name: &str) -> Result<Value> {
        self.get(
            &format!("property {name}"),
            &format!("/element/{}/property/{name}", element.0),
        )
    }

    /// The current page's HTML as the browser holds it.
    pub fn page_source(&self) -> Result<String> {
        string(self.get("page source", "/source")?, "page source")
    }

    /// The HTTP status of the current page's response (Navigation Timing's `responseStatus`,
    /// https://www.w3.org/TR/navigation-timing-2/): WebDriver itself does not say it.
    pub fn status(&self) -> Result<u16> {
        let script = "return performance.getEntriesByType('navigation')[0].responseStatus;";
        let value = self.post(
            "response status",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )?;
        value
            .as_u64()
            .and_then(|status| u16::try_from(status).ok())
            .ok_or_else(|| unexpected("response status", &value))
    }

    /// Saves a PNG of the browser's window to `path`.
    pub fn screenshot(&self, path: &Path) -> Result<()> {
        let encoded = string(self.get("screenshot", "/screenshot")?, "screenshot")?;
        write_png(path, &encoded)
    }

    /// Saves a PNG of the whole page to `path`, what lies below the window's bottom edge too.
    /// W3C WebDriver shoots the viewport only, and headless Chromium will not grow its window
    /// past its screen: this asks Chromium itself, through chromedriver's DevTools command
    /// (`Page.captureScreenshot` beyond the viewport).
    pub fn screenshot_whole_page(&self, path: &Path) -> Result<()> {
        let script = "const page = document.documentElement; \
                      return [page.scrollWidth, page.scrollHeight];";
        let size = self.post(
            "page size",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )?;
        let (width, height) = match size.as_array().map(Vec::as_slice) {
            Some([width, height]) => (width.as_u64(), height.as_u64()),
            _ => (None, None),
        };
        let (Some(width), Some(height)) = (width, height) else {
            return Err(unexpected("page size", &size));
        };
        let shot = self.post(
            "whole-page screenshot",
            "/goog/cdp/execute",
            json!({"cmd": "Page.captureScreenshot", "params": {
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            }}),
        )?;
        let Some(encoded) = shot.get("data").and_then(Value::as_str) else {
            return Err(unexpected("whole-page screenshot", &shot));
        };
        write_png(path, encoded)
    }

    /// The cookies the browser would send to the current page.
    pub fn cookies(&self) -> Result<Vec<Cookie>> {
        let value = self.get("cookies", "/cookie")?;
        let cookies = value
            .as_array()
            .ok_or_else(|| unexpected("cookies", &value))?;
        cookies
            .iter()
            .map(|cookie| {
                Some(Cookie {
                    name: cookie.get("name")?.as_str()?.to_owned(),
                    http_only: cookie
                        .get("httpOnly")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    same_site: cookie
                        .get("sameSite")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| unexpected("cookies", &value))
    }

    fn get(&self, command: &str, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        self.send(command, reqwest::Method::GET, &url, None)
    }

    fn post(&self, command: &str, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        self.send(command, reqwest::Method::POST, &url, Some(body))
    }

    /// One WebDriver command; its `value`, or the error WebDriver answered with.
    fn send(
        &self,
        command: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let transport = |source| WebDriverError::Transport {
            command: command.to_owned(),
            source,
        };
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = request.send().map_err(transport)?;
        let succeeded = reply.status().is_success();
        let mut reply: Value = reply.json().map_err(transport)?;
        let value = reply
            .get_mut("value")
            .map(Value::take)
            .unwrap_or(Value::Null);
        if succeeded {
            return Ok(value);
        }
        // W3C WebDriver, "Handling errors": {"value": {"error", "message", "stacktrace"}}.
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Err(WebDriverError::Refused {
            command: command.to_owned(),
            error: field("error"),
            message: field("message"),
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; killing chromedriver then leaves nothing
        // behind. Neither may panic here (it would hide the test's own failure).
        if !self.session.is_empty() {
            let _ = self.http.delete(&self.session).send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A loopback port no one listens on now (the OS picks it; it is free again once the
/// listener is dropped, for chromedriver to bind).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Writes the base64 PNG a screenshot command answered with to `path`.
fn write_png(path: &Path, encoded: &str) -> Result<()> {
    let png = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|error| WebDriverError::Reply {
            command: "screenshot".into(),
            reply: error.to_string(),
        })?;
    std::fs::write(path, png).map_err(|source| WebDriverError::Screenshot {
        path: path.display().to_string(),
        source,
    })
}

fn locator(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

fn element(value: &Value) -> Option<Element> {
    value
        .get(ELEMENT_KEY)
        .and_then(Value::as_str)
        .map(|id| Element(id.to_owned()))
}

fn string(value: Value, command: &str) -> Result<String> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(unexpected(command, &other)),
    }
}

fn unexpected(command: &str, value: &Value) -> WebDriverError {
    WebDriverError::Reply {
        command: command.to_owned(),
        reply: value.to_string(),
    }
}

/// Whether an error about the old page's root element says that page is gone. W3C WebDriver
/// says "stale element reference"; chromedriver, asked in the moment the navigation detaches
/// the old document, can answer "unknown error" from its inspector that the node "does not
/// belong to the document" instead (seen on CI): the same fact, a race of chromedriver's.
fn old_page_gone(error: &str, message: &str) -> bool {
    error == "stale element reference"
        || (error == "unknown error" && message.contains("does not belong to the document"))
}
