//! WeChat's operating rules: rewarding Moments shares is induced sharing. Default texts stay on
//! the safe side, and the campaign form warns when an operator's text asks for such shares.

use crate::admin_pages::signed_in;
use crate::ux_campaigns::campaign_form;

#[tokio::test]
async fn the_campaign_form_warns_about_rewarded_moments_shares() {
    let (app, _wechat, mut operator) = signed_in().await;
    // The defaults a new campaign starts from say nothing of the kind.
    let blank = operator
        .get("/admin/campaigns/new")
        .await
        .text()
        .await
        .unwrap();
    assert!(!blank.contains("id=\"induced-sharing\""), "{blank}");
    assert!(!blank.contains("朋友圈"));

    let csrf = operator.csrf("/admin/campaigns/new").await;
    let mut form = campaign_form(&csrf, "双十二", "2027-12-01T00:00", "2027-12-13T00:00");
    form.retain(|(k, _)| *k != "rules");
    form.push(("rules", "把海报分享到朋友圈，集满 3 位好友即可领取奖品"));
    let saved = operator.post_form("/admin/campaigns", &form).await;
    assert_eq!(saved.status(), 303, "a warning, not a refusal");
    let location = saved.headers()["location"].to_str().unwrap().to_string();
    let page = operator.get(&location).await.text().await.unwrap();
    let start = page
        .find("id=\"induced-sharing\"")
        .expect("the form warns about induced sharing");
    let warning = &page[start..start + page[start..].find("</p>").unwrap()];
    assert!(warning.contains("诱导分享"), "{warning}");
    assert!(warning.contains("活动规则"), "names the field: {warning}");
    drop(app);
}
