//! Avatars are fetched from WeChat's avatar hosts only: a `headimgurl` naming any other host, a
//! redirect off an allowed host, or an allowed name that resolves to a private or loopback
//! address is never requested, and the poster is drawn without the avatar.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fission::db;
use fission::domain::OpenId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::invite::sign_in;

/// A server standing for something inside the network: it counts every request, answers
/// `/hop` with a redirect to `to` (when set) and anything else with a small PNG.
struct Internal {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Internal {
    async fn start(redirect_to: Option<String>) -> Internal {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let png = {
            let mut out = std::io::Cursor::new(Vec::new());
            image::RgbImage::from_pixel(8, 8, image::Rgb([200, 0, 0]))
                .write_to(&mut out, image::ImageFormat::Png)
                .unwrap();
            out.into_inner()
        };
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (png, redirect_to) = (png.clone(), redirect_to.clone());
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let reply = match redirect_to {
                        Some(to) if head.starts_with("GET /hop") => format!(
                            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .into_bytes(),
                        _ => {
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                png.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&png);
                            r
                        }
                    };
                    let _ = socket.write_all(&reply).await;
                });
            }
        });
        Internal { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Signs a follower in, gives them `avatar_url` as WeChat's `headimgurl`, and fetches their
/// poster (which must still be served).
async fn poster_with_avatar(deployment: Deployment, wechat: &FakeWechat, avatar_url: &str) {
    let app = TestApp::spawn(&deployment).await;
    let alice = openid("avatar", 1);
    wechat.sim.add_user(&alice, "阿丽", true);
    let client = sign_in(&app, wechat, &alice, "snsapi_base").await;
    db::users::set_profile(
        &app.pool,
        OpenId::parse(&alice).unwrap().as_str(),
        "阿丽",
        Some(avatar_url),
    )
    .await
    .unwrap();
    let poster = client
        .get(format!("{}/invite/poster.png", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(poster.status(), 200);
}

#[tokio::test]
async fn an_avatar_on_another_host_is_not_fetched() {
    let internal = Internal::start(None).await;
    let wechat = FakeWechat::start(100_000, None).await;
    let url = format!("http://127.0.0.1:{}/admin-panel.png", internal.port);
    poster_with_avatar(Deployment::new(&wechat), &wechat, &url).await;
    assert_eq!(internal.hits(), 0, "the internal address was requested");
}

#[tokio::test]
async fn a_redirect_off_the_avatar_host_is_not_followed() {
    let internal = Internal::start(None).await;
    let inside = format!("http://127.0.0.1:{}/inside.png", internal.port);
    let hop = Internal::start(Some(inside)).await;
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat)
        .set("FISSION_AVATAR_HOSTS", &format!("127.0.0.1:{}", hop.port))
        .set("FISSION_AVATAR_ALLOW_PRIVATE", "true");
    let url = format!("http://127.0.0.1:{}/hop", hop.port);
    poster_with_avatar(deployment, &wechat, &url).await;
    assert_eq!(hop.hits(), 1, "the allowed host was asked");
    assert_eq!(internal.hits(), 0, "the redirect was followed");
}

#[tokio::test]
async fn an_allowed_name_resolving_to_loopback_is_not_fetched() {
    let internal = Internal::start(None).await;
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = Deployment::new(&wechat)
        .set(
            "FISSION_AVATAR_HOSTS",
            &format!("localhost:{}", internal.port),
        )
        .set("FISSION_AVATAR_ALLOW_PRIVATE", "false");
    let url = format!("http://localhost:{}/me.png", internal.port);
    poster_with_avatar(deployment, &wechat, &url).await;
    assert_eq!(internal.hits(), 0, "a loopback address was requested");
}
