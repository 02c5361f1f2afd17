//! Draws the bundled default poster background, `static/poster-default.png` (750×1334), laid
//! out for `PosterLayout::default()`: the top is left free for the campaign's name and top
//! reward (`poster::headline`), the avatar and nickname sit on the dark band at the bottom
//! left, the QR code at the bottom right, clear of the edges.
//!
//! `cargo run --example poster_background [FONT] [OUT]` (font: a CJK TTF/OTF/TTC, face 0).

use std::path::PathBuf;

use ab_glyph::{FontArc, PxScale};
use image::{Rgba, RgbaImage};
use imageproc::drawing::{draw_text_mut, text_size};

const W: u32 = 750;
const H: u32 = 1334;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let font_path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| fission::config::DEFAULT_POSTER_FONT.to_string()),
    );
    let out = PathBuf::from(args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/static/poster-default.png").into()
    }));
    let font = fission::poster::load_font(&font_path)
        .ok_or_else(|| anyhow::anyhow!("cannot load the font {}", font_path.display()))?;
    let image = draw(&font);
    image.save(&out)?;
    println!("wrote {}", out.display());
    Ok(())
}

fn draw(font: &FontArc) -> RgbaImage {
    // A warm vertical gradient.
    let top = [255.0, 140.0, 80.0];
    let bottom = [190.0, 24.0, 60.0];
    let mut img = RgbaImage::from_fn(W, H, |_, y| {
        let t = y as f32 / (H - 1) as f32;
        let c = |i: usize| (top[i] + (bottom[i] - top[i]) * t).round() as u8;
        Rgba([c(0), c(1), c(2), 255])
    });

    // Soft light discs and confetti, placed by a fixed LCG so the picture is reproducible.
    disc(&mut img, 640.0, 120.0, 220.0, [255, 255, 255, 28]);
    disc(&mut img, 80.0, 420.0, 160.0, [255, 255, 255, 20]);
    disc(&mut img, 700.0, 860.0, 120.0, [255, 255, 255, 16]);
    let mut seed: u32 = 20_261_121;
    let mut next = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32
    };
    let palette = [
        [255, 229, 143, 200],
        [255, 255, 255, 170],
        [255, 196, 120, 190],
    ];
    for i in 0..46 {
        let (x, y) = (next() * W as f32, 40.0 + next() * 880.0);
        let r = 3.0 + next() * 7.0;
        disc(&mut img, x, y, r, palette[i % palette.len()]);
    }

    // The headline (campaign name, top reward) is drawn per campaign at y 140–350.

    // How it works, on a white card.
    rounded_rect(&mut img, 60, 440, 630, 420, 28, [255, 255, 255, 255]);
    centered(&mut img, font, "参与方式", 40.0, 476, [190, 24, 60, 255]);
    let steps = [
        ("1", "长按保存这张海报"),
        ("2", "发给想一起关注的微信好友"),
        ("3", "好友扫码关注，即为邀请成功"),
    ];
    for (i, (n, text)) in steps.iter().enumerate() {
        let y = 570 + i as i32 * 90;
        disc(&mut img, 130.0, y as f32 + 22.0, 26.0, [245, 80, 70, 255]);
        let (nw, _) = text_size(PxScale::from(32.0), font, n);
        draw_text_mut(
            &mut img,
            Rgba([255, 255, 255, 255]),
            130 - nw as i32 / 2,
            y + 2,
            PxScale::from(32.0),
            font,
            n,
        );
        draw_text_mut(
            &mut img,
            Rgba([51, 51, 51, 255]),
            180,
            y,
            PxScale::from(34.0),
            font,
            text,
        );
    }

    // The band the follower's avatar, nickname and QR code are drawn on; the code sits at
    // x 430–710, y 990–1270, 40 px from the right edge.
    rounded_rect(&mut img, 0, 960, W as i32, 420, 36, [90, 8, 32, 150]);
    draw_text_mut(
        &mut img,
        Rgba([255, 216, 191, 255]),
        60,
        1196,
        PxScale::from(28.0),
        font,
        "邀请你扫码关注",
    );
    let hint = "长按识别二维码";
    let (hw, _) = text_size(PxScale::from(24.0), font, hint);
    draw_text_mut(
        &mut img,
        Rgba([255, 255, 255, 230]),
        570 - hw as i32 / 2,
        1284,
        PxScale::from(24.0),
        font,
        hint,
    );
    img
}

fn centered(img: &mut RgbaImage, font: &FontArc, text: &str, size: f32, y: i32, rgba: [u8; 4]) {
    let scale = PxScale::from(size);
    let (w, _) = text_size(scale, font, text);
    draw_text_mut(
        img,
        Rgba(rgba),
        (W as i32 - w as i32) / 2,
        y,
        scale,
        font,
        text,
    );
}

fn blend(img: &mut RgbaImage, x: i32, y: i32, rgba: [u8; 4], coverage: f32) {
    if x < 0 || y < 0 || x >= W as i32 || y >= H as i32 {
        return;
    }
    let a = f32::from(rgba[3]) / 255.0 * coverage.clamp(0.0, 1.0);
    let px = img.get_pixel_mut(x as u32, y as u32);
    for c in 0..3 {
        px[c] = (f32::from(px[c]) * (1.0 - a) + f32::from(rgba[c]) * a).round() as u8;
    }
}

/// An anti-aliased filled circle.
fn disc(img: &mut RgbaImage, cx: f32, cy: f32, r: f32, rgba: [u8; 4]) {
    for y in (cy - r - 1.0) as i32..=(cy + r + 1.0) as i32 {
        for x in (cx - r - 1.0) as i32..=(cx + r + 1.0) as i32 {
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            blend(img, x, y, rgba, r - d + 0.5);
        }
    }
}

/// A filled rectangle with anti-aliased round corners of radius `r`.
#[allow(clippy::too_many_arguments)]
fn rounded_rect(img: &mut RgbaImage, x0: i32, y0: i32, w: i32, h: i32, r: i32, rgba: [u8; 4]) {
    let r = r as f32;
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let cx = px.clamp(x0 as f32 + r, (x0 + w) as f32 - r);
            let cy = py.clamp(y0 as f32 + r, (y0 + h) as f32 - r);
            let d = ((px - cx).powi(2) + (py - cy).powi(2)).sqrt();
            blend(img, x, y, rgba, r - d + 0.5);
        }
    }
}
