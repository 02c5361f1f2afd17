//! PNGs the simulator draws itself: QR codes (showqrcode) and user avatars (headimgurl).

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Luma, Rgb, RgbImage};
use sha1::{Digest, Sha1};

/// WeChat's showqrcode images are 430 px square.
const QR_SIZE: u32 = 430;
/// WeChat's "/132" avatar size.
const AVATAR_SIZE: u32 = 132;

/// A QR code encoding `text`.
pub(crate) fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let img = code
        .render::<Luma<u8>>()
        .min_dimensions(QR_SIZE, QR_SIZE)
        .build();
    encode(DynamicImage::ImageLuma8(img))
}

/// A head-and-shoulders silhouette on a background colour derived from the openid, so each
/// test user is recognisable at a glance.
pub(crate) fn avatar_png(openid: &str) -> Result<Vec<u8>, String> {
    let digest = Sha1::digest(openid.as_bytes());
    // Keep the colours mid-bright so the white silhouette stays visible.
    let tint = |b: u8| 70 + b / 2;
    let background = Rgb([tint(digest[0]), tint(digest[1]), tint(digest[2])]);
    let figure = Rgb([245, 245, 245]);
    let size = AVATAR_SIZE as i64;
    let img = RgbImage::from_fn(AVATAR_SIZE, AVATAR_SIZE, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        let head = (x - size / 2).pow(2) + (y - 50).pow(2) <= 24 * 24;
        // Shoulders: an ellipse (semi-axes 48 × 50) centred below the picture's bottom edge.
        let (a, b) = (48i64, 50i64);
        let shoulders = (x - size / 2).pow(2) * b * b + (y - 150).pow(2) * a * a <= a * a * b * b;
        if head || shoulders {
            figure
        } else {
            background
        }
    });
    encode(DynamicImage::ImageRgb8(img))
}

fn encode(img: DynamicImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pngs_decode_at_the_expected_size() {
        let qr = image::load_from_memory(&qr_png("http://x/scan?ticket=a%2Bb").unwrap()).unwrap();
        assert!(qr.width() >= QR_SIZE);
        let avatar = image::load_from_memory(&avatar_png("oabc").unwrap()).unwrap();
        assert_eq!(
            (avatar.width(), avatar.height()),
            (AVATAR_SIZE, AVATAR_SIZE)
        );
    }
}
