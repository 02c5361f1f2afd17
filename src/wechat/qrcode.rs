//! Parametric QR codes: the four `qrcode/create` shapes as a type that cannot hold an invalid
//! request, the showqrcode URL, and local rendering of the QR image from the ticket's `url`.

use std::io::Cursor;

use anyhow::Context;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{ExpireSeconds, InvalidValue, PermanentSceneId, SceneStr, TemporarySceneId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemporaryScene {
    Id(TemporarySceneId),
    Str(SceneStr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermanentScene {
    Id(PermanentSceneId),
    Str(SceneStr),
}

/// A valid `qrcode/create` request. Temporary codes always carry their lifetime: WeChat's
/// default (30 or 60 s, depending on which page you read) would kill a follower's code at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QrCodeRequest {
    Temporary {
        scene: TemporaryScene,
        expire: ExpireSeconds,
    },
    Permanent(PermanentScene),
}

impl QrCodeRequest {
    /// Builds a request from loose parts (an API body, a CLI flag); every WeChat rule is checked here.
    pub fn from_parts(
        action_name: &str,
        scene_id: Option<i64>,
        scene_str: Option<&str>,
        expire_seconds: Option<i64>,
    ) -> Result<QrCodeRequest, InvalidValue> {
        let expire = || {
            let secs = expire_seconds
                .ok_or_else(|| InvalidValue("temporary codes need expire_seconds".into()))?;
            ExpireSeconds::new(secs)
        };
        let only = |field: &str, present: bool| {
            if present {
                Err(InvalidValue(format!("{action_name} does not take {field}")))
            } else {
                Ok(())
            }
        };
        let id = || scene_id.ok_or_else(|| InvalidValue(format!("{action_name} needs scene_id")));
        let string =
            || scene_str.ok_or_else(|| InvalidValue(format!("{action_name} needs scene_str")));
        match action_name {
            "QR_SCENE" => {
                only("scene_str", scene_str.is_some())?;
                let scene = TemporaryScene::Id(TemporarySceneId::new(id()?)?);
                Ok(QrCodeRequest::Temporary {
                    scene,
                    expire: expire()?,
                })
            }
            "QR_STR_SCENE" => {
                only("scene_id", scene_id.is_some())?;
                let scene = TemporaryScene::Str(SceneStr::new(string()?)?);
                Ok(QrCodeRequest::Temporary {
                    scene,
                    expire: expire()?,
                })
            }
            "QR_LIMIT_SCENE" => {
                only("scene_str", scene_str.is_some())?;
                only("expire_seconds", expire_seconds.is_some())?;
                Ok(QrCodeRequest::Permanent(PermanentScene::Id(
                    PermanentSceneId::new(id()?)?,
                )))
            }
            "QR_LIMIT_STR_SCENE" => {
                only("scene_id", scene_id.is_some())?;
                only("expire_seconds", expire_seconds.is_some())?;
                Ok(QrCodeRequest::Permanent(PermanentScene::Str(
                    SceneStr::new(string()?)?,
                )))
            }
            other => Err(InvalidValue(format!("unknown action_name {other:?}"))),
        }
    }

    pub fn action_name(&self) -> &'static str {
        match self {
            QrCodeRequest::Temporary {
                scene: TemporaryScene::Id(_),
                ..
            } => "QR_SCENE",
            QrCodeRequest::Temporary {
                scene: TemporaryScene::Str(_),
                ..
            } => "QR_STR_SCENE",
            QrCodeRequest::Permanent(PermanentScene::Id(_)) => "QR_LIMIT_SCENE",
            QrCodeRequest::Permanent(PermanentScene::Str(_)) => "QR_LIMIT_STR_SCENE",
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, QrCodeRequest::Permanent(_))
    }

    /// The JSON body WeChat expects.
    pub fn body(&self) -> Value {
        let scene = match self {
            QrCodeRequest::Temporary {
                scene: TemporaryScene::Id(id),
                ..
            } => json!({ "scene_id": id.get() }),
            QrCodeRequest::Permanent(PermanentScene::Id(id)) => json!({ "scene_id": id.get() }),
            QrCodeRequest::Temporary {
                scene: TemporaryScene::Str(s),
                ..
            }
            | QrCodeRequest::Permanent(PermanentScene::Str(s)) => {
                json!({ "scene_str": s.as_str() })
            }
        };
        let mut body =
            json!({ "action_name": self.action_name(), "action_info": { "scene": scene } });
        if let QrCodeRequest::Temporary { expire, .. } = self {
            body["expire_seconds"] = json!(expire.get());
        }
        body
    }
}

/// WeChat's answer to `qrcode/create`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct QrTicket {
    pub ticket: String,
    pub expire_seconds: Option<i64>,
    /// The content of the QR image.
    pub url: String,
}

/// Everything but unreserved characters is encoded, so a ticket's `+`, `/` and `=` survive.
const TICKET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `GET {mp_base}/cgi-bin/showqrcode?ticket=…` with the ticket encoded exactly once.
pub fn showqrcode_url(mp_base: &str, ticket: &str) -> String {
    format!(
        "{mp_base}/cgi-bin/showqrcode?ticket={}",
        utf8_percent_encode(ticket, TICKET)
    )
}

/// Renders `content` (a ticket's `url`) as a PNG QR code, about 430 px square with a quiet zone.
pub fn render_png(content: &str) -> anyhow::Result<Vec<u8>> {
    render_png_at(content, 430)
}

/// As `render_png`, at least `min_px` square (whole pixels per module, so it stays sharp).
pub fn render_png_at(content: &str, min_px: u32) -> anyhow::Result<Vec<u8>> {
    let code = qrcode::QrCode::with_error_correction_level(content.as_bytes(), qrcode::EcLevel::M)
        .context("content does not fit in a QR code")?;
    let image = code
        .render::<image::Luma<u8>>()
        .min_dimensions(min_px, min_px)
        .build();
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding the QR code as PNG")?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_shapes_produce_wechat_bodies() {
        let r = QrCodeRequest::from_parts("QR_SCENE", Some(123), None, Some(604_800)).unwrap();
        assert_eq!(
            r.body(),
            json!({"action_name":"QR_SCENE","action_info":{"scene":{"scene_id":123}},"expire_seconds":604800})
        );
        let r =
            QrCodeRequest::from_parts("QR_LIMIT_STR_SCENE", None, Some("store-7"), None).unwrap();
        assert_eq!(
            r.body(),
            json!({"action_name":"QR_LIMIT_STR_SCENE","action_info":{"scene":{"scene_str":"store-7"}}})
        );
        assert!(r.is_permanent());
        let r = QrCodeRequest::from_parts("QR_STR_SCENE", None, Some("x"), Some(60)).unwrap();
        assert_eq!(r.body()["expire_seconds"], 60);
        let r = QrCodeRequest::from_parts("QR_LIMIT_SCENE", Some(100_000), None, None).unwrap();
        assert_eq!(r.action_name(), "QR_LIMIT_SCENE");
    }

    #[test]
    fn invalid_shapes_are_refused() {
        let long = "x".repeat(65);
        type Case<'a> = (&'a str, Option<i64>, Option<&'a str>, Option<i64>);
        let cases: [Case; 14] = [
            ("QR_SCENE", Some(0), None, Some(60)),
            ("QR_SCENE", Some(1 << 33), None, Some(60)),
            ("QR_SCENE", Some(1), None, None),
            ("QR_SCENE", Some(1), None, Some(2_592_001)),
            ("QR_SCENE", None, Some("a"), Some(60)),
            ("QR_STR_SCENE", None, Some(""), Some(60)),
            ("QR_STR_SCENE", None, Some(&long), Some(60)),
            ("QR_STR_SCENE", None, None, Some(60)),
            ("QR_LIMIT_SCENE", Some(0), None, None),
            ("QR_LIMIT_SCENE", Some(100_001), None, None),
            ("QR_LIMIT_SCENE", Some(5), None, Some(60)),
            ("QR_LIMIT_STR_SCENE", None, Some(&long), None),
            ("QR_LIMIT_STR_SCENE", Some(3), None, None),
            ("QR_SOMETHING", Some(1), None, None),
        ];
        for (action, id, s, exp) in cases {
            assert!(
                QrCodeRequest::from_parts(action, id, s, exp).is_err(),
                "{action} {id:?} {s:?} {exp:?} accepted"
            );
        }
    }

    #[test]
    fn tickets_are_encoded_exactly_once() {
        let url = showqrcode_url("https://mp.weixin.qq.com", "gQH+7/joAA==");
        assert_eq!(
            url,
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH%2B7%2FjoAA%3D%3D"
        );
    }

    #[test]
    fn rendered_png_is_a_png() {
        let png = render_png("http://weixin.qq.com/q/kZgfwMTm72WWPkovabbI").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
