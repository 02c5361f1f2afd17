//! What risk review decides reaches other systems: a held farm's `inviter.flagged` (with its
//! signals) and `reward.held`, the `reward.granted` of an approval, and a block's
//! `inviter.blocked` with a `referral.revoked` (reason `blocked`) per cancelled credit — while
//! an honest inviter in the same run is never the subject of a risk event.

use chrono::Utc;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::hook_receiver::{register, Got, Receiver};
use crate::risk::{default_campaign, farm, set_policy};

const RISK_EVENTS: [&str; 3] = ["inviter.flagged", "reward.held", "inviter.blocked"];

fn about(got: &[Got], kind: &str, openid: &str) -> Vec<serde_json::Value> {
    got.iter()
        .filter(|g| g.event == kind)
        .map(|g| g.json()["data"].clone())
        .filter(|d| d["openid"] == openid || d["inviter_openid"] == openid)
        .collect()
}

#[tokio::test]
async fn holds_approvals_and_blocks_are_delivered_to_webhooks() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment =
        with_admin(Deployment::new(&wechat)).set("FISSION_WEBHOOK_ALLOW_PRIVATE", "true");
    let app = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&app).await;
    set_policy(&app, campaign, "hold").await;
    let twelve = fission::db::campaigns::add_tier(&app.pool, campaign, 12, "优惠券", false)
        .await
        .unwrap();
    let receiver = Receiver::start(0).await;
    let (status, body) = register(&app, &receiver.url, "risk-secret", &["*"]).await;
    assert_eq!(status, 201, "{body}");

    let t0 = Utc::now().timestamp() - 3 * 86_400;
    let farmer = openid("rhfarmer", 0);
    let honest = openid("rhhonest", 0);
    let scene = app.issue_code(&honest).await["scene_id"].as_i64().unwrap();
    for i in 0..13 {
        let at = t0 + i * 240;
        let r = app
            .subscribe(&openid("rhfriend", i as usize), Some(scene), at)
            .await;
        assert_eq!(r.status(), 200);
    }
    farm(&app, &farmer, "rhfarm", 30, 18, t0 + 600).await;

    let got = receiver
        .wait_for(30, |got| {
            !about(got, "inviter.flagged", &farmer).is_empty()
                && !about(got, "reward.held", &farmer).is_empty()
                && !about(got, "reward.granted", &honest).is_empty()
        })
        .await;
    let flagged = &about(&got, "inviter.flagged", &farmer)[0];
    assert_eq!(flagged["campaign_id"], campaign);
    assert_eq!(
        flagged["operator"],
        serde_json::Value::Null,
        "decided by Fission"
    );
    let signals = flagged["signals"].as_array().expect("signals");
    assert!(
        signals
            .iter()
            .any(|s| s["name"] == "credits_per_minute" && s["threshold"] == 10.0),
        "{flagged}"
    );
    let held = about(&got, "reward.held", &farmer);
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["tier_id"], twelve.id);
    assert_eq!(held[0]["tier"], "优惠券");
    assert!(
        about(&got, "reward.granted", &farmer).is_empty(),
        "held, not granted"
    );

    // The operator approves: the reward the farmer reached is granted, and said so.
    let mut operator = Operator::new(&app);
    operator.login().await;
    let csrf = operator.csrf("/admin/risk").await;
    let pick = format!("{campaign}:{farmer}");
    for action in ["approve", "block"] {
        let response = operator
            .post_form(
                "/admin/risk",
                &[("csrf", &csrf), ("action", action), ("pick", &pick)],
            )
            .await;
        assert_eq!(response.status(), 303, "{action}");
        assert!(
            response.headers()["location"]
                .to_str()
                .unwrap()
                .contains("done=1"),
            "{action}: {:?}",
            response.headers()["location"]
        );
    }

    // Then blocks them: every live credit cancelled, each reported as a revocation.
    let got = receiver
        .wait_for(30, |got| {
            !about(got, "inviter.blocked", &farmer).is_empty()
                && about(got, "referral.revoked", &farmer)
                    .iter()
                    .filter(|d| d["reason"] == "blocked")
                    .count()
                    == 12
        })
        .await;
    let granted = about(&got, "reward.granted", &farmer);
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["tier_id"], twelve.id);
    let blocked = &about(&got, "inviter.blocked", &farmer)[0];
    assert_eq!(blocked["operator"], "admin");
    assert_eq!(blocked["cancelled_credits"], 12);
    let left = about(&got, "referral.revoked", &farmer)
        .iter()
        .filter(|d| d["reason"] == "left")
        .count();
    assert_eq!(
        left, 18,
        "the friends who left are revocations of their own"
    );

    for kind in RISK_EVENTS {
        assert!(
            about(&got, kind, &honest).is_empty(),
            "the honest inviter is never the subject of {kind}"
        );
    }
}
