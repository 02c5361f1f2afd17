//! Poster composition: a campaign background with the follower's QR code, round avatar and
//! nickname drawn at the campaign's layout positions (and, on the bundled background, the
//! campaign's name and top reward: `headline`), encoded as a JPEG small enough to send
//! through WeChat. The rendering in this file does no I/O (bytes in, bytes out), so the admin
//! dashboard previews a layout with the same code; the submodules do the I/O: `personal` finds
//! a follower's inputs and keeps the result in storage, `delivery` sends it through WeChat.

pub mod avatar;
pub mod delivery;
pub mod headline;
pub mod personal;

pub use headline::Headline;

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ab_glyph::{Font, FontArc, FontVec, PxScale};
use anyhow::{bail, Context};
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageReader, Limits, Rgba, RgbaImage};
use serde::{Deserialize, Serialize};

/// Bumped whenever the drawing changes, so stored posters are re-rendered.
pub const RENDER_VERSION: u32 = 2;
/// WeChat takes images up to 10 MB, but a poster is opened on phones on mobile data.
pub const MAX_JPEG_BYTES: usize = 300 * 1024;
/// Posters wider than this are scaled down after composing (positions are in background pixels).
const MAX_WIDTH: u32 = 1080;
/// Largest background or avatar side accepted, at upload and at rendering; bigger images are
/// refused rather than decoded.
pub const MAX_SIDE: u32 = 6000;

/// Rendering is CPU work: at most this many at once, whatever the request rate, for followers'
/// posters and the dashboard's previews alike.
static RENDERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A turn to render; hold it while drawing.
pub async fn render_turn() -> anyhow::Result<tokio::sync::SemaphorePermit<'static>> {
    RENDERS.acquire().await.context("render limiter closed")
}

const DEFAULT_BACKGROUND: &[u8] = include_bytes!("../static/poster-default.png");

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
pub struct PosterLayout {
    pub qr: Placement,
    pub avatar: Placement,
    pub nickname: TextPlacement,
}

/// A square's top-left corner and side, in background pixels.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub x: i32,
    pub y: i32,
    pub size: u32,
}

/// Where the nickname starts (top-left of its line), its pixel height and colour (`#rrggbb`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct TextPlacement {
    pub x: i32,
    pub y: i32,
    pub size: u32,
    pub color: String,
}

impl Default for PosterLayout {
    /// The layout the default background is drawn for (also the column default in migrations):
    /// the QR code keeps 40 px (over 5% of the width) from the edges, as scanners need.
    fn default() -> Self {
        PosterLayout {
            qr: Placement {
                x: 430,
                y: 990,
                size: 280,
            },
            avatar: Placement {
                x: 60,
                y: 1010,
                size: 110,
            },
            nickname: TextPlacement {
                x: 60,
                y: 1140,
                size: 36,
                color: "#ffffff".into(),
            },
        }
    }
}

/// The bundled background (750×1334, drawn by `examples/poster_background.rs`).
pub fn default_background() -> anyhow::Result<Vec<u8>> {
    Ok(DEFAULT_BACKGROUND.to_vec())
}

/// Loads face 0 of a font file (TTF, OTF or a TTC collection). `None`, with a warning, when the
/// file is missing or unreadable: posters are then drawn without the nickname.
pub fn load_font(path: &Path) -> Option<FontArc> {
    let data = match std::fs::read(path) {
        Ok(data) => data,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "poster font not found: posters will have no nickname (set FISSION_POSTER_FONT)");
            return None;
        }
    };
    match FontVec::try_from_vec_and_index(data, 0) {
        Ok(font) => Some(FontArc::new(font)),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "poster font is not a usable font: posters will have no nickname");
            None
        }
    }
}

/// `load_font`, once per path for the life of the process: a CJK collection is ~20 MB to read.
pub fn cached_font(path: &Path) -> Option<FontArc> {
    static FONTS: OnceLock<Mutex<HashMap<PathBuf, Option<FontArc>>>> = OnceLock::new();
    let fonts = FONTS.get_or_init(Default::default);
    if let Some(found) = fonts.lock().ok().and_then(|f| f.get(path).cloned()) {
        return found;
    }
    let font = load_font(path);
    if let Ok(mut fonts) = fonts.lock() {
        fonts.insert(path.to_path_buf(), font.clone());
    }
    font
}

/// Draws the poster and returns it as a JPEG of at most `MAX_JPEG_BYTES`. `headline` is for
/// the bundled background only (it leaves room for it).
pub fn render(
    background: &[u8],
    layout: &PosterLayout,
    qr_png: &[u8],
    avatar: Option<&[u8]>,
    nickname: Option<&str>,
    font: Option<&FontArc>,
    headline: Option<&Headline>,
) -> anyhow::Result<Vec<u8>> {
    let mut canvas = decode(background)
        .context("decoding the poster background")?
        .to_rgba8();
    if let (Some(headline), Some(font)) = (headline, font) {
        headline::draw(&mut canvas, headline, font);
    }

    let qr = decode(qr_png).context("decoding the QR code")?.to_rgba8();
    let side = layout.qr.size.max(1);
    let qr = imageops::resize(&qr, side, side, FilterType::Triangle);
    imageops::overlay(
        &mut canvas,
        &qr,
        i64::from(layout.qr.x),
        i64::from(layout.qr.y),
    );

    if let Some(avatar) = avatar {
        // A broken avatar should not cost the follower their poster.
        match decode(avatar) {
            Ok(image) => {
                let round = round_avatar(&image, layout.avatar.size.max(1));
                imageops::overlay(
                    &mut canvas,
                    &round,
                    i64::from(layout.avatar.x),
                    i64::from(layout.avatar.y),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "avatar is not a readable image; poster drawn without it")
            }
        }
    }

    if let (Some(name), Some(font)) = (nickname.map(str::trim).filter(|n| !n.is_empty()), font) {
        draw_nickname(&mut canvas, layout, name, font);
    }

    let flat = flatten(&canvas);
    let flat = if flat.width() > MAX_WIDTH {
        let height = (u64::from(flat.height()) * u64::from(MAX_WIDTH) / u64::from(flat.width()))
            .max(1) as u32;
        imageops::resize(&flat, MAX_WIDTH, height, FilterType::Triangle)
    } else {
        flat
    };
    encode_jpeg(&flat)
}

fn decode(bytes: &[u8]) -> anyhow::Result<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .context("reading the image header")?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    Ok(reader.decode()?)
}

/// The avatar scaled to `size`, cut to a circle with a soft (anti-aliased) edge and a thin
/// white ring, so it reads on any background.
fn round_avatar(image: &DynamicImage, size: u32) -> RgbaImage {
    let square = {
        let (w, h) = (image.width(), image.height());
        let side = w.min(h);
        image.crop_imm((w - side) / 2, (h - side) / 2, side, side)
    };
    let mut out = imageops::resize(&square.to_rgba8(), size, size, FilterType::Lanczos3);
    let r = size as f32 / 2.0;
    let ring = (size as f32 / 30.0).max(1.5);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let dx = x as f32 + 0.5 - r;
        let dy = y as f32 + 0.5 - r;
        let d = (dx * dx + dy * dy).sqrt();
        let coverage = (r - d + 0.5).clamp(0.0, 1.0);
        let ringness = (d - (r - ring) + 0.5).clamp(0.0, 1.0);
        for c in 0..3 {
            let v = f32::from(px[c]) * (1.0 - ringness) + 255.0 * ringness;
            px[c] = v.round() as u8;
        }
        px[3] = (f32::from(px[3]) * coverage).round() as u8;
    }
    out
}

fn draw_nickname(canvas: &mut RgbaImage, layout: &PosterLayout, name: &str, font: &FontArc) {
    let at = &layout.nickname;
    let color = parse_color(&at.color).unwrap_or(Rgba([255, 255, 255, 255]));
    let scale = PxScale::from(at.size.max(8) as f32);
    // Characters the font has no glyph for (emoji, rare symbols) would print as boxes.
    let drawable: String = name
        .chars()
        .filter(|c| !c.is_control() && font.glyph_id(*c).0 != 0)
        .take(crate::referral::profile::MAX_NICKNAME_CHARS)
        .collect();
    // The line stops short of the canvas edge, and of the QR code when the code is to its
    // right on the same rows (a name drawn over the code would stop it scanning).
    let mut right = canvas.width() as i32 - 24;
    let (qr_top, qr_bottom) = (layout.qr.y, layout.qr.y + layout.qr.size as i32);
    if layout.qr.x > at.x && at.y < qr_bottom && at.y + at.size as i32 > qr_top {
        right = right.min(layout.qr.x - 16);
    }
    let room = (right - at.x).max(0) as u32;
    let text = fit_width(&drawable, room, scale, font);
    if !text.is_empty() {
        imageproc::drawing::draw_text_mut(canvas, color, at.x, at.y, scale, font, &text);
    }
}

/// The longest prefix of `text` (with "…" when cut) that fits in `room` pixels.
fn fit_width(text: &str, room: u32, scale: PxScale, font: &FontArc) -> String {
    let width = |s: &str| imageproc::drawing::text_size(scale, font, s).0;
    if width(text) <= room {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |end: usize| -> String { chars[..end].iter().chain(['…'].iter()).collect() };
    // A longer prefix is never narrower, so the longest that fits is found by bisection: a
    // few measurements, not one per character. `lo` always fits (0 = nothing), `hi` never does.
    let (mut lo, mut hi) = (0, chars.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if width(&cut(mid)) <= room {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        String::new()
    } else {
        cut(lo)
    }
}

fn parse_color(hex: &str) -> Option<Rgba<u8>> {
    let hex = hex.strip_prefix('#')?;
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some(Rgba([channel(0)?, channel(2)?, channel(4)?, 255]))
}

/// JPEG has no alpha: transparent parts of the background become white.
fn flatten(canvas: &RgbaImage) -> image::RgbImage {
    image::RgbImage::from_fn(canvas.width(), canvas.height(), |x, y| {
        let Rgba([r, g, b, a]) = *canvas.get_pixel(x, y);
        let a = u16::from(a);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
}

fn encode_jpeg(image: &image::RgbImage) -> anyhow::Result<Vec<u8>> {
    for quality in [88, 80, 70, 60, 50, 40] {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode_image(image)
            .context("encoding the poster as JPEG")?;
        if out.len() <= MAX_JPEG_BYTES {
            return Ok(out);
        }
    }
    bail!(
        "the poster does not fit in {} KB even at low JPEG quality",
        MAX_JPEG_BYTES / 1024
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FONT: &str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc";

    fn qr_png(content: &str) -> Vec<u8> {
        crate::wechat::qrcode::render_png(content).unwrap()
    }

    fn avatar_png() -> Vec<u8> {
        let image = image::RgbImage::from_fn(200, 160, |x, y| image::Rgb([x as u8, y as u8, 120]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png
    }

    fn decode_qr(jpeg: &[u8]) -> Vec<String> {
        let luma = image::load_from_memory(jpeg).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(luma);
        prepared
            .detect_grids()
            .into_iter()
            .filter_map(|g| g.decode().ok().map(|(_, content)| content))
            .collect()
    }

    #[test]
    fn the_default_layout_matches_the_migration_default() {
        let column_default = serde_json::json!({"qr": {"x": 430, "y": 990, "size": 280},
          "avatar": {"x": 60, "y": 1010, "size": 110},
          "nickname": {"x": 60, "y": 1140, "size": 36, "color": "#ffffff"}});
        let parsed: PosterLayout = serde_json::from_value(column_default).unwrap();
        assert_eq!(parsed, PosterLayout::default());
    }

    #[test]
    fn a_poster_is_a_small_jpeg_whose_qr_code_scans() {
        let url = "http://127.0.0.1:8080/sandbox/scan?ticket=gQH47joAAAAAAAAAASxodHRwOi8v";
        let avatar = avatar_png();
        let font = load_font(Path::new(FONT));
        let jpeg = render(
            &default_background().unwrap(),
            &PosterLayout::default(),
            &qr_png(url),
            Some(&avatar),
            Some("张三丰🙂"),
            font.as_ref(),
            None,
        )
        .unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));
        assert!(jpeg.len() <= MAX_JPEG_BYTES, "{} bytes", jpeg.len());
        let image = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((image.width(), image.height()), (750, 1334));
        assert_eq!(decode_qr(&jpeg), vec![url.to_string()]);
    }

    #[test]
    fn without_a_font_or_avatar_the_poster_is_still_drawn() {
        let missing = load_font(Path::new("/nonexistent/font.ttc"));
        assert!(missing.is_none());
        let jpeg = render(
            &default_background().unwrap(),
            &PosterLayout::default(),
            &qr_png("x"),
            Some(b"not an image"),
            Some("名字"),
            None,
            None,
        )
        .unwrap();
        assert!(jpeg.len() <= MAX_JPEG_BYTES);
    }

    #[test]
    fn the_nickname_is_drawn_in_its_colour_and_cut_to_fit() {
        // The test command installs fonts-noto-cjk: a missing font is a broken setup, not a pass.
        let font = load_font(Path::new(FONT)).expect("the CJK font (fonts-noto-cjk) is installed");
        let mut layout = PosterLayout::default();
        layout.nickname.color = "#ff0000".into();
        let plain = image::load_from_memory(
            &render(
                &default_background().unwrap(),
                &layout,
                &qr_png("x"),
                None,
                None,
                Some(&font),
                None,
            )
            .unwrap(),
        )
        .unwrap()
        .to_rgb8();
        let named = image::load_from_memory(
            &render(
                &default_background().unwrap(),
                &layout,
                &qr_png("x"),
                None,
                Some("测试昵称"),
                Some(&font),
                None,
            )
            .unwrap(),
        )
        .unwrap()
        .to_rgb8();
        let reddish = (60..260)
            .flat_map(|x| (1140..1180).map(move |y| (x, y)))
            .filter(|&(x, y)| {
                let p = named.get_pixel(x, y);
                let q = plain.get_pixel(x, y);
                p[0] > 180 && p[1] < 90 && p != q
            })
            .count();
        assert!(reddish > 100, "{reddish} red nickname pixels");
        let scale = PxScale::from(40.0);
        let cut = fit_width(&"长".repeat(60), 300, scale, &font);
        assert!(cut.ends_with('…') && cut.chars().count() < 60, "{cut}");
        // The longest prefix that fits: one more character would not.
        let kept = cut.chars().count() - 1;
        let longer = format!("{}…", "长".repeat(kept + 1));
        assert!(imageproc::drawing::text_size(scale, &font, &cut).0 <= 300);
        assert!(imageproc::drawing::text_size(scale, &font, &longer).0 > 300);
        // A name of thousands of characters is cut the same way (in a few measurements).
        assert_eq!(fit_width(&"长".repeat(5000), 300, scale, &font), cut);
    }

    /// The decoded codes' contents and corner points.
    fn qr_grids(jpeg: &[u8]) -> Vec<(String, [rqrr::Point; 4])> {
        let luma = image::load_from_memory(jpeg).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(luma);
        prepared
            .detect_grids()
            .into_iter()
            .filter_map(|g| g.decode().ok().map(|(_, content)| (content, g.bounds)))
            .collect()
    }

    #[test]
    fn the_default_poster_names_the_campaign_and_its_top_reward_and_keeps_the_code_clear() {
        let font = load_font(Path::new(FONT)).expect("the CJK font (fonts-noto-cjk) is installed");
        let headline = Headline::of_campaign("双十一拉新", false, Some("定制帆布袋"));
        let lines = headline.lines(750, &font);
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["双十一拉新", "邀请好友关注，可获得「定制帆布袋」"]);
        for line in &lines {
            let (w, _) = imageproc::drawing::text_size(PxScale::from(line.size), &font, &line.text);
            assert!(
                line.x >= 60 && line.x + w as i32 <= 690,
                "{line:?} is {w} px wide"
            );
        }
        // The default campaign's placeholder name is not a headline; no tiers, no reward.
        let generic = Headline::of_campaign("默认活动", true, None).lines(750, &font);
        assert_eq!(generic[0].text, headline::GENERIC_TITLE);
        assert_eq!(generic[1].text, "邀请好友一起关注");
        // A very long name is shrunk, then cut, but stays on the poster.
        let long = Headline::of_campaign(&"超长活动名称".repeat(10), false, None).lines(750, &font);
        assert!(
            long[0].text.ends_with('…') && long[0].x >= 60,
            "{:?}",
            long[0]
        );

        let url = "http://127.0.0.1:8080/sandbox/scan?ticket=gQH47joAAAAAAAAAASxodHRwOi8v";
        let draw = |h: Option<&Headline>| {
            render(
                &default_background().unwrap(),
                &PosterLayout::default(),
                &qr_png(url),
                None,
                Some("一个相当长的微信昵称用来测试"),
                Some(&font),
                h,
            )
            .unwrap()
        };
        let with = draw(Some(&headline));
        let without = draw(None);
        // The headline's rows change; the rest of the top does not exist on the bare background.
        let (a, b) = (
            image::load_from_memory(&with).unwrap().to_rgb8(),
            image::load_from_memory(&without).unwrap().to_rgb8(),
        );
        let changed = |y0: u32, y1: u32| {
            (60..690)
                .flat_map(|x| (y0..y1).map(move |y| (x, y)))
                .filter(|&(x, y)| {
                    let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
                    (0..3).any(|c| p[c].abs_diff(q[c]) > 60)
                })
                .count()
        };
        assert!(
            changed(140, 260) > 2000,
            "title pixels: {}",
            changed(140, 260)
        );
        assert!(
            changed(300, 350) > 1000,
            "reward pixels: {}",
            changed(300, 350)
        );
        // The code scans, and keeps at least 4% of the width from every edge.
        let grids = qr_grids(&with);
        assert_eq!(grids.len(), 1, "one code on the poster");
        assert_eq!(grids[0].0, url);
        let margin = 750 * 4 / 100;
        for p in grids[0].1 {
            assert!(p.x >= margin && p.x <= 750 - margin, "{:?}", grids[0].1);
            assert!(p.y >= margin && p.y <= 1334 - margin, "{:?}", grids[0].1);
        }
    }

    #[test]
    fn colours_parse() {
        assert_eq!(parse_color("#0a0B0c"), Some(Rgba([10, 11, 12, 255])));
        assert_eq!(parse_color("fff"), None);
        assert_eq!(parse_color("#12345é"), None);
    }

    #[test]
    fn oversized_images_are_refused() {
        let huge = image::RgbImage::new(MAX_SIDE + 1, 1);
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(huge)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert!(decode(&png).is_err());
    }
}
