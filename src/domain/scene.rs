//! Scene values of parametric QR codes, with WeChat's limits built into the types.

use std::fmt;

use super::InvalidValue;

/// Scene of a permanent numeric code (`QR_LIMIT_SCENE`): 1..=100000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermanentSceneId(u32);

impl PermanentSceneId {
    pub const MAX: u32 = 100_000;

    pub fn new(value: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(value) {
            Ok(v) if (1..=Self::MAX).contains(&v) => Ok(PermanentSceneId(v)),
            _ => Err(InvalidValue(format!(
                "permanent scene id must be 1..=100000, got {value}"
            ))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Scene of a temporary numeric code (`QR_SCENE`): any non-zero 32-bit integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemporarySceneId(u32);

impl TemporarySceneId {
    pub fn new(value: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(value) {
            Ok(v) if v != 0 => Ok(TemporarySceneId(v)),
            _ => Err(InvalidValue(format!(
                "temporary scene id must be a non-zero 32-bit integer, got {value}"
            ))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Scene of a string code (`QR_STR_SCENE`, `QR_LIMIT_STR_SCENE`): 1 to 64 bytes, no control
/// characters (they would not survive the EventKey round trip).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SceneStr(String);

impl SceneStr {
    pub fn new(value: &str) -> Result<Self, InvalidValue> {
        if value.is_empty() || value.len() > 64 {
            return Err(InvalidValue(format!(
                "scene_str must be 1 to 64 bytes, got {}",
                value.len()
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(InvalidValue(
                "scene_str cannot contain control characters".into(),
            ));
        }
        Ok(SceneStr(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lifetime of a temporary code: 1 second to 30 days (2592000 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpireSeconds(u32);

impl ExpireSeconds {
    pub const MAX: u32 = 2_592_000;

    pub fn new(value: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(value) {
            Ok(v) if (1..=Self::MAX).contains(&v) => Ok(ExpireSeconds(v)),
            _ => Err(InvalidValue(format!(
                "expire_seconds must be 1..=2592000, got {value}"
            ))),
        }
    }

    pub fn days(days: u32) -> Result<Self, InvalidValue> {
        Self::new(i64::from(days) * 86_400)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The scene a push names, as it arrives in an EventKey: numeric scenes and string scenes
/// live in different namespaces on WeChat's side, so they stay apart here too.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scene {
    Id(i64),
    Str(SceneStr),
}

/// Scene strings of binding codes start with this; invite codes' scenes are numbers, and
/// channel codes' start with `ch_`, so the two never meet.
pub const BINDING_PREFIX: &str = "bind_";

impl Scene {
    /// A binding code's scene (never anyone's invite code).
    pub fn is_binding(&self) -> bool {
        matches!(self, Scene::Str(s) if s.as_str().starts_with(BINDING_PREFIX))
    }

    /// `qrscene_` has already been stripped by the message parser. All digits means a numeric
    /// scene; anything else is a string scene.
    pub fn parse(key: &str) -> Result<Scene, InvalidValue> {
        if !key.is_empty() && key.len() <= 10 && key.bytes().all(|b| b.is_ascii_digit()) {
            let id: i64 = key
                .parse()
                .map_err(|_| InvalidValue(format!("bad scene {key:?}")))?;
            return Ok(Scene::Id(id));
        }
        SceneStr::new(key).map(Scene::Str)
    }
}

impl fmt::Display for Scene {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scene::Id(id) => write!(f, "{id}"),
            Scene::Str(s) => f.write_str(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_ids_stay_in_range() {
        assert!(PermanentSceneId::new(1).is_ok());
        assert!(PermanentSceneId::new(100_000).is_ok());
        for bad in [0, -1, 100_001, i64::MAX] {
            assert!(PermanentSceneId::new(bad).is_err());
        }
    }

    #[test]
    fn temporary_ids_are_nonzero_32_bit() {
        assert!(TemporarySceneId::new(1).is_ok());
        assert!(TemporarySceneId::new(i64::from(u32::MAX)).is_ok());
        assert!(TemporarySceneId::new(0).is_err());
        assert!(TemporarySceneId::new(i64::from(u32::MAX) + 1).is_err());
        assert!(TemporarySceneId::new(-5).is_err());
    }

    #[test]
    fn scene_strings_are_1_to_64_bytes() {
        assert!(SceneStr::new("a").is_ok());
        assert!(SceneStr::new(&"x".repeat(64)).is_ok());
        assert!(SceneStr::new("").is_err());
        assert!(SceneStr::new(&"x".repeat(65)).is_err());
        // 22 CJK characters are 66 bytes: too long for WeChat.
        assert!(SceneStr::new(&"码".repeat(22)).is_err());
        assert!(SceneStr::new("a\nb").is_err());
    }

    #[test]
    fn expire_seconds_cap_at_30_days() {
        assert!(ExpireSeconds::new(2_592_000).is_ok());
        assert!(ExpireSeconds::new(2_592_001).is_err());
        assert!(ExpireSeconds::new(0).is_err());
        assert_eq!(ExpireSeconds::days(30).unwrap().get(), 2_592_000);
    }

    #[test]
    fn event_keys_parse_into_scenes() {
        assert_eq!(Scene::parse("123").unwrap(), Scene::Id(123));
        assert_eq!(
            Scene::parse("ch_store1").unwrap(),
            Scene::Str(SceneStr::new("ch_store1").unwrap())
        );
        assert!(Scene::parse("").is_err());
        // Too many digits for a 32-bit id: treated as a string scene, never overflowing.
        assert!(matches!(
            Scene::parse("99999999999").unwrap(),
            Scene::Str(_)
        ));
    }
}
