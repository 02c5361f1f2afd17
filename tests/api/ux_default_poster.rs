//! The default poster (no background uploaded) names the campaign and its top reward, and keeps
//! the QR code clear of the edges: read back from the dashboard's preview, drawn by the same
//! renderer as the followers' posters.

use crate::admin_pages::signed_in;

/// The bundled background the poster is drawn on.
const BACKGROUND: &[u8] = include_bytes!("../../static/poster-default.png");

#[tokio::test]
async fn the_default_poster_shows_the_campaign_and_top_reward_with_the_code_clear_of_the_edge() {
    let (app, _wechat, mut operator) = signed_in().await;
    // A campaign created without a layout gets the column default, the bundled background's.
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, starts_at, ends_at)
         VALUES ('双十一拉新', now() + interval '1 day', now() + interval '2 days') RETURNING id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    for (threshold, name) in [(3, "新人贴纸"), (10, "年度会员卡"), (5, "定制帆布袋")]
    {
        fission::db::campaigns::add_tier(&app.pool, id, threshold, name, false)
            .await
            .unwrap();
    }
    // Campaigns still on the old default layout were moved to the new one.
    let layouts: Vec<serde_json::Value> = sqlx::query_scalar("SELECT poster_layout FROM campaigns")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let expected = serde_json::to_value(fission::poster::PosterLayout::default()).unwrap();
    assert!(layouts.iter().all(|l| *l == expected), "{layouts:?}");

    let preview = operator
        .get(&format!("/admin/campaigns/{id}/poster-preview.png"))
        .await;
    assert_eq!(preview.status(), 200);
    let jpeg = preview.bytes().await.unwrap();
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-output/ux_default_poster");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("default-poster.jpg"), &jpeg).unwrap();
    let poster = image::load_from_memory(&jpeg).unwrap();
    let (w, h) = (poster.width(), poster.height());
    assert_eq!((w, h), (750, 1334));

    // What the headline says, as the renderer lays it out for this campaign.
    let font =
        fission::poster::load_font(std::path::Path::new(fission::config::DEFAULT_POSTER_FONT))
            .expect("the CJK font is installed");
    let headline = fission::poster::Headline::of_campaign("双十一拉新", false, Some("年度会员卡"));
    let lines = headline.lines(w, &font);
    assert_eq!(lines[0].text, "双十一拉新");
    assert!(lines[1].text.contains("年度会员卡"), "{lines:?}");
    // And it is drawn: the headline's rows differ from the bare background.
    let (drawn, bare) = (
        poster.to_rgb8(),
        image::load_from_memory(BACKGROUND).unwrap().to_rgb8(),
    );
    for line in &lines {
        let rows = line.y as u32..(line.y as f32 + line.size) as u32;
        let changed = (60..690)
            .flat_map(|x| rows.clone().map(move |y| (x, y)))
            .filter(|&(x, y)| {
                let (p, q) = (drawn.get_pixel(x, y), bare.get_pixel(x, y));
                (0..3).any(|c| p[c].abs_diff(q[c]) > 60)
            })
            .count();
        assert!(changed > 500, "{:?}: {changed} pixels drawn", line.text);
    }

    // The code scans and keeps at least 4% of the width from every edge.
    let mut prepared = rqrr::PreparedImage::prepare(poster.to_luma8());
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the poster");
    let (_, content) = grids[0].decode().expect("the code decodes");
    assert!(content.contains("ticket=preview"), "{content}");
    let margin = (w * 4 / 100) as i32;
    for p in grids[0].bounds {
        assert!(
            p.x >= margin && p.x <= w as i32 - margin && p.y >= margin && p.y <= h as i32 - margin,
            "corner {p:?} is within {margin} px of the edge"
        );
    }
}
