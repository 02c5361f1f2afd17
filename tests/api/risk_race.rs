//! An operator blocks inviters while their friends are leaving: the block (cancelling every
//! live credit) and the unsubscribes (revoking the credits they reverse) take the same rows in
//! different orders, so PostgreSQL may abort one of them as a deadlock. Neither may surface:
//! every block is answered 303, every push answered, each credit ends revoked
//! (by the friend leaving or by the block) and every inviter's count is 0.

use chrono::Utc;
use futures_util::future::join_all;

use crate::admin_client::{with_admin, Operator};
use crate::helpers::{openid, Deployment, FakeWechat, TestApp};
use crate::risk::default_campaign;

const INVITERS: usize = 6;
const FRIENDS: usize = 25;

#[tokio::test]
async fn blocking_while_friends_leave_on_two_instances_never_fails_either_side() {
    let wechat = FakeWechat::start(100_000, None).await;
    let deployment = with_admin(Deployment::new(&wechat));
    let a = TestApp::spawn(&deployment).await;
    let b = TestApp::spawn(&deployment).await;
    let campaign = default_campaign(&a).await;
    // Friends followed over the last hours, at an honest pace: nobody is flagged.
    let t0 = Utc::now().timestamp() - 6 * 3600;
    let inviters: Vec<String> = (0..INVITERS).map(|i| openid("rrinviter", i)).collect();
    for (k, inviter) in inviters.iter().enumerate() {
        let scene = a.issue_code(inviter).await["scene_id"].as_i64().unwrap();
        for i in 0..FRIENDS {
            let at = t0 + (i * INVITERS + k) as i64 * 120;
            let r = a
                .subscribe(&openid("rrfriend", k * 100 + i), Some(scene), at)
                .await;
            assert_eq!(r.status(), 200);
        }
    }

    let mut operator = Operator::new(&a);
    operator.login().await;
    let csrf = operator.csrf("/admin/risk").await;
    let now = Utc::now().timestamp();
    let leaving = join_all((0..INVITERS).flat_map(|k| {
        let (a, b) = (&a, &b);
        (0..FRIENDS).map(move |i| async move {
            let app = if i % 2 == 0 { a } else { b };
            app.unsubscribe(&openid("rrfriend", k * 100 + i), now)
                .await
                .status()
        })
    }));
    let blocking = async {
        let mut answers = Vec::new();
        for inviter in &inviters {
            let pick = format!("{campaign}:{inviter}");
            let r = operator
                .post_form(
                    "/admin/risk",
                    &[("csrf", &csrf), ("action", "block"), ("pick", &pick)],
                )
                .await;
            answers.push((r.status().as_u16(), r.text().await.unwrap_or_default()));
        }
        answers
    };
    let (left, blocked) = tokio::join!(leaving, blocking);
    assert!(left.iter().all(|s| *s == 200), "{left:?}");
    for (status, body) in &blocked {
        assert_eq!(*status, 303, "{body}");
    }

    for inviter in &inviters {
        // A credit has at most one revocation (the ledger's unique key): all of them have one.
        let (credits, revoked): (i64, i64) = sqlx::query_as(
            "SELECT count(*),
                    count(*) FILTER (WHERE EXISTS (SELECT 1 FROM referral_revocations v
                                                   WHERE v.referral_id = r.id))
             FROM referrals r WHERE r.inviter_openid = $1",
        )
        .bind(inviter)
        .fetch_one(&a.pool)
        .await
        .unwrap();
        assert_eq!((credits, revoked), (FRIENDS as i64, FRIENDS as i64));
        let view: serde_json::Value = a
            .api_get(&format!("/api/v1/users/{inviter}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["risk"]["status"], "blocked", "{view}");
        assert_eq!(view["invites"], 0, "{view}");
    }
}
