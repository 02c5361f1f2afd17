//! Every `/admin` route, read from the route table itself: without a session pages redirect to
//! the login form and everything else is 401; a state-changing request without the session's
//! CSRF token is refused (403) even when signed in.

use fission::routes::admin::{Access, ROUTES};

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{Deployment, FakeWechat, TestApp, ADMIN_TOKEN};

fn concrete(path: &str) -> String {
    format!(
        "/admin{}",
        path.replace("{id}", "1")
            .replace("{tier}", "1")
            .replace("{openid}", "oNobody0000000000000000000000")
            .replace("{token}", "00112233445566778899aabbccddeeff")
    )
}

#[tokio::test]
async fn every_admin_route_needs_a_session_and_every_post_a_csrf_token() {
    let wechat = FakeWechat::start(100_000, None).await;
    let app = TestApp::spawn(&with_admin(Deployment::new(&wechat))).await;
    assert!(ROUTES.len() >= 20, "the route table looks incomplete");

    let mut anonymous = Operator::new(&app);
    for route in ROUTES {
        let path = concrete(route.path);
        let response = match route.method {
            "get" => anonymous.get(&path).await,
            _ => anonymous.post_form(&path, &[("name", "x")]).await,
        };
        let status = response.status().as_u16();
        match (route.access, route.method) {
            (Access::Public, "get") => assert_eq!(status, 200, "{path}"),
            // The login form's POST still needs the token of the session the form set.
            (Access::Public, _) => assert_eq!(status, 403, "POST {path}"),
            (Access::Session | Access::Staff, "get") => {
                assert_eq!(status, 302, "GET {path}");
                let to = response.headers()["location"].to_str().unwrap();
                assert!(to.starts_with("/admin/login"), "GET {path} → {to}");
            }
            _ => assert_eq!(status, 401, "{} {path}", route.method),
        }
    }
    // Bearer-token routes accept the token instead of a session, and only the right one.
    for route in ROUTES
        .iter()
        .filter(|r| r.access == Access::SessionOrBearer)
    {
        let url = format!("{}{}", app.address, concrete(route.path));
        let ok = app
            .http
            .get(&url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "{url}");
        let wrong = app.http.get(&url).bearer_auth("nope").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{url}");
    }

    let mut operator = Operator::new(&app);
    operator.login().await;
    let csrf = operator.csrf("/admin").await;
    for route in ROUTES.iter().filter(|r| r.method == "post") {
        let path = concrete(route.path);
        let missing = operator.post_form(&path, &[("name", "x")]).await;
        assert_eq!(missing.status(), 403, "POST {path} without a token");
        let wrong = operator
            .post_form(&path, &[("csrf", "0".repeat(64).as_str()), ("name", "x")])
            .await;
        assert_eq!(wrong.status(), 403, "POST {path} with a wrong token");
    }
    // Signed in, every page answers (404 for the ids that do not exist), never a redirect.
    for route in ROUTES
        .iter()
        .filter(|r| r.method == "get" && r.access != Access::Public)
    {
        let path = concrete(route.path);
        let status = operator.get(&path).await.status().as_u16();
        assert!(
            matches!(status, 200 | 404),
            "GET {path} signed in: {status}"
        );
    }
    // And with the token, a POST goes through (logout is one).
    let out = operator
        .post_form("/admin/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status(), 303);
}
