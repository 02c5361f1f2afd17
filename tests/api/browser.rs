//! A real browser for page tests: Debian's headless `chromium` driven through `chromedriver`
//! (WebDriver, via fantoccini), with phone-sized viewports and screenshots saved under
//! `test-output/<test name>/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub struct Browser {
    pub client: Client,
    driver: Child,
    pub out_dir: PathBuf,
    profile: PathBuf,
    shots: usize,
}

impl Browser {
    /// A browser whose viewport is `width`×`height` CSS pixels, as a phone's.
    pub async fn phone(test_name: &str, width: u32, height: u32) -> Browser {
        Browser::with_language(test_name, width, height, "en-US").await
    }

    /// As `phone`, with the browser asking for pages in `language` (Accept-Language).
    pub async fn with_language(
        test_name: &str,
        width: u32,
        height: u32,
        language: &str,
    ) -> Browser {
        crate::helpers::install_crypto_provider();
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
            .expect("chromedriver is installed (scripts/test installs Debian's chromium-driver)");
        let profile = std::env::temp_dir().join(format!(
            "fission-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--lang={language}"),
                ],
                "prefs": { "intl.accept_languages": language },
                "mobileEmulation": { "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 } }
            }),
        );
        let webdriver = format!("http://127.0.0.1:{port}");
        let mut client = None;
        for _ in 0..100 {
            let mut builder = ClientBuilder::rustls().expect("TLS config");
            builder.capabilities(caps.clone());
            match builder.connect(&webdriver).await {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let client = client.expect("chromedriver did not start a chromium session");
        let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("test-output")
            .join(test_name);
        std::fs::create_dir_all(&out_dir).expect("test output folder");
        Browser {
            client,
            driver,
            out_dir,
            profile,
            shots: 0,
        }
    }

    /// Saves a screenshot of the viewport as `NN-name.png` and returns its path.
    pub async fn shot(&mut self, name: &str) -> PathBuf {
        self.shots += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let path = self.out_dir.join(format!("{:02}-{name}.png", self.shots));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        let body = self
            .client
            .find(fantoccini::Locator::Css("body"))
            .await
            .expect("body");
        body.text().await.expect("text")
    }

    /// Width of the document vs the viewport: a page that scrolls sideways fails this.
    pub async fn fits_width(&self) -> bool {
        let fits = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .expect("script");
        fits.as_bool().unwrap_or(false)
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Types `value` into the form field named `name`, replacing what it held.
pub async fn fill(client: &Client, name: &str, value: &str) {
    let field = client
        .find(Locator::Css(&format!("[name=\"{name}\"]")))
        .await
        .unwrap_or_else(|_| panic!("no field {name}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks the first element matching `css`.
pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("nothing matches {css}"))
        .click()
        .await
        .unwrap();
}
