//! The default poster's headline: the bundled background leaves its top free, and the campaign's
//! name and top reward are drawn there, centred and cut to fit. (An uploaded background is the
//! operator's own design: nothing is drawn on it but the follower's code, avatar and name.)

use ab_glyph::{FontArc, PxScale};
use image::{Rgba, RgbaImage};

use super::fit_width;

/// What the headline says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Headline {
    /// The campaign's name (the always-on default campaign's placeholder name is not shown).
    pub title: String,
    /// The highest tier's reward, if the campaign has tiers.
    pub top_reward: Option<String>,
}

/// One line of text where it is drawn: top-left corner, pixel height, colour.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    pub x: i32,
    pub y: i32,
    pub size: f32,
    pub color: Rgba<u8>,
}

/// Side margin of the headline on the 750 px wide default background.
const MARGIN: u32 = 60;
const TITLE_Y: i32 = 140;
const TITLE_MAX: f32 = 104.0;
const TITLE_MIN: f32 = 56.0;
const REWARD_Y: i32 = 300;
const REWARD_SIZE: f32 = 42.0;
/// The generic title when the campaign has no name worth showing.
pub const GENERIC_TITLE: &str = "邀请好友";

impl Headline {
    /// The headline of a campaign: `is_default` is the always-on stand-in campaign, whose name
    /// ("默认活动") means nothing to a follower's friends.
    pub fn of_campaign(name: &str, is_default: bool, top_reward: Option<&str>) -> Headline {
        let name = name.trim();
        Headline {
            title: if is_default || name.is_empty() {
                GENERIC_TITLE.to_string()
            } else {
                name.to_string()
            },
            top_reward: top_reward
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string),
        }
    }

    /// The lines on a background `width` pixels wide: the title as large as fits (cut with "…"
    /// past the smallest size), then the reward line.
    pub fn lines(&self, width: u32, font: &FontArc) -> Vec<TextLine> {
        let room = width.saturating_sub(2 * MARGIN);
        let size_of = |text: &str, size: f32| {
            imageproc::drawing::text_size(PxScale::from(size), font, text).0
        };
        let mut size = TITLE_MAX;
        while size > TITLE_MIN && size_of(&self.title, size) > room {
            size -= 4.0;
        }
        let title = fit_width(&self.title, room, PxScale::from(size), font);
        let reward = match &self.top_reward {
            Some(r) => format!("邀请好友关注，可获得「{r}」"),
            None => "邀请好友一起关注".to_string(),
        };
        let reward = fit_width(&reward, room, PxScale::from(REWARD_SIZE), font);
        let centred = |text: String, y: i32, size: f32, color: Rgba<u8>| TextLine {
            x: (width as i32 - size_of(&text, size) as i32) / 2,
            text,
            y,
            size,
            color,
        };
        vec![
            centred(title, TITLE_Y, size, Rgba([255, 255, 255, 255])),
            centred(reward, REWARD_Y, REWARD_SIZE, Rgba([255, 236, 200, 255])),
        ]
        .into_iter()
        .filter(|l| !l.text.is_empty())
        .collect()
    }
}

/// Draws the headline's lines onto the canvas.
pub fn draw(canvas: &mut RgbaImage, headline: &Headline, font: &FontArc) {
    for line in headline.lines(canvas.width(), font) {
        imageproc::drawing::draw_text_mut(
            canvas,
            line.color,
            line.x,
            line.y,
            PxScale::from(line.size),
            font,
            &line.text,
        );
    }
}
