//! Headless Chromium through WebDriver (Debian's chromedriver), driven with curl.

use super::*;

/// A WebDriver session on Debian's chromedriver + chromium, driven with curl.
pub(crate) struct Browser {
    driver: std::process::Child,
    base: String,
    session: String,
}

impl Browser {
    // The driver is killed by `Drop` once a session exists; before that, a
    // failed start panics the test, and the process ends with the test binary.
    #[allow(clippy::zombie_processes)]
    pub(crate) fn start(profile: &std::path::Path) -> Option<Browser> {
        Browser::start_sized(profile, "900,700")
    }

    /// With a window of `size` (`W,H`).
    #[allow(clippy::zombie_processes)]
    pub(crate) fn start_sized(profile: &std::path::Path, size: &str) -> Option<Browser> {
        if run(
            "sh",
            &["-c", "command -v chromedriver && command -v chromium"],
        )
        .0 != 0
        {
            eprintln!("SKIPPED: chromium and chromium-driver are not installed (scripts/install-test-deps.sh installs them)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", format!("--window-size={size}"),
                     format!("--user-data-dir={}", profile.display())]
        }}}});
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, out, _) = run(
                "curl",
                &[
                    "-s",
                    "-X",
                    "POST",
                    &format!("{base}/session"),
                    "-d",
                    &caps.to_string(),
                ],
            );
            if code == 0 {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&out) {
                    if let Some(s) = v["value"]["sessionId"].as_str() {
                        return Some(Browser {
                            driver,
                            base,
                            session: s.to_string(),
                        });
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start a session: {out}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut args = vec!["-s", "-X", method, url.as_str()];
        let b = body.map(|b| b.to_string());
        if let Some(b) = &b {
            args.extend(["-d", b.as_str()]);
        }
        let (_, out, _) = run("curl", &args);
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
    }
}

impl Browser {
    /// Run `js` (a function body) in the page; its return value.
    pub(crate) fn script(&self, js: &str) -> serde_json::Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(serde_json::json!({"script": js, "args": []})),
        )["value"]
            .clone()
    }

    pub(crate) fn open(&self, url: &str) {
        self.call("POST", "/url", Some(serde_json::json!({ "url": url })));
    }

    /// A PNG of the window.
    pub(crate) fn screenshot(&self, to: &std::path::Path) {
        let v = self.call("GET", "/screenshot", None);
        let b64 = v["value"].as_str().unwrap_or("");
        let tmp = to.with_extension("b64");
        std::fs::write(&tmp, b64).unwrap();
        let (code, _, err) = run(
            "sh",
            &[
                "-c",
                &format!("base64 -d '{}' > '{}'", tmp.display(), to.display()),
            ],
        );
        let _ = std::fs::remove_file(&tmp);
        assert_eq!(code, 0, "screenshot: {err}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
