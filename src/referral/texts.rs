//! Message texts: campaign templates with `{name}` placeholders, and the masks applied to
//! other people's names.

/// Replaces each `{key}` in `template` with its value. Unknown placeholders stay as they are,
/// so an operator's typo shows up in the message instead of vanishing. Spaces written around a
/// placeholder are dropped where Chinese meets Chinese ("通过 {inviter} 的" reads "通过一位好友的")
/// and where an empty value would leave two.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let found = after.find('}').and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v, end))
        });
        match found {
            Some((value, end)) => {
                rest = &after[end + 1..];
                rest = splice(&mut out, value, rest);
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Appends `value` to `out` with the seams tidied; returns what follows it in the template.
fn splice<'a>(out: &mut String, value: &str, rest: &'a str) -> &'a str {
    let before = out.strip_suffix(' ').and_then(|s| s.chars().last());
    let joins_cjk = |c: Option<char>| c.is_none_or(is_cjk);
    if before.is_some_and(is_cjk) && joins_cjk(value.chars().next()) {
        out.pop();
    }
    out.push_str(value);
    let last = out.chars().last();
    match rest.strip_prefix(' ') {
        Some(next) if last.is_some_and(is_cjk) && next.chars().next().is_some_and(is_cjk) => next,
        Some(next) if value.is_empty() && (out.ends_with(' ') || out.is_empty()) => next,
        _ => rest,
    }
}

/// Chinese characters and full-width punctuation, which are written without spaces between.
fn is_cjk(c: char) -> bool {
    c >= '\u{2e80}'
}

/// The inviter as the welcome names them: "你的好友小明" once they shared their nickname,
/// "一位好友" until then (WeChat gives no name without the person's consent).
pub fn inviter_phrase(nickname: Option<&str>) -> String {
    match nickname.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("你的好友{name}"),
        None => "一位好友".to_string(),
    }
}

/// Does `text` ask for shares to Moments or groups (or likes collected there)? WeChat's
/// operating rules count rewarding that as induced sharing (诱导分享) and penalise the account;
/// inviting friends to follow is the safe side. The campaign form warns, it does not refuse:
/// "不要发朋友圈" would match too, and the operator knows their wording.
pub fn asks_for_moments_shares(text: &str) -> bool {
    const SHARES: [&str; 6] = [
        "朋友圈",
        "集赞",
        "转发到群",
        "分享到群",
        "转发至群",
        "分享至群",
    ];
    SHARES.iter().any(|w| text.contains(w))
}

/// A nickname as others may see it: first and last character, the middle starred ("张*三").
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => "微信用户".to_string(),
        1 => format!("{}*", chars[0]),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat((n - 2).min(3)), chars[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_group_shares_are_recognised() {
        assert!(asks_for_moments_shares("分享到朋友圈即可领取奖品"));
        assert!(asks_for_moments_shares("集赞 30 个送礼品"));
        assert!(asks_for_moments_shares("转发到群里就能抽奖"));
        assert!(!asks_for_moments_shares("邀请好友扫码关注，满 3 位送贴纸"));
    }

    #[test]
    fn spaces_around_a_placeholder_do_not_show_in_chinese() {
        let welcome = "欢迎关注！你是通过 {inviter} 的邀请来的。";
        assert_eq!(
            fill(welcome, &[("inviter", &inviter_phrase(None))]),
            "欢迎关注！你是通过一位好友的邀请来的。"
        );
        assert_eq!(
            fill(welcome, &[("inviter", &inviter_phrase(Some("小明")))]),
            "欢迎关注！你是通过你的好友小明的邀请来的。"
        );
        assert_eq!(
            fill(
                "{invitee} 通过你的邀请，你已邀请 {count} 位好友。 {next}",
                &[("invitee", "一位新朋友"), ("count", "3"), ("next", "")]
            ),
            "一位新朋友通过你的邀请，你已邀请 3 位好友。"
        );
        assert_eq!(fill("Hi {name} there", &[("name", "")]), "Hi there");
        assert_eq!(fill("Hi {name}!", &[("name", "Bob")]), "Hi Bob!");
        assert_eq!(inviter_phrase(Some("  ")), "一位好友");
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        assert_eq!(fill("{a} and {b}", &[("a", "1"), ("b", "2")]), "1 and 2");
        assert_eq!(fill("{a} {zzz} {", &[("a", "x")]), "x {zzz} {");
        assert_eq!(fill("no braces", &[]), "no braces");
        assert_eq!(fill("{a}{a}", &[("a", "好")]), "好好");
    }

    #[test]
    fn names_are_masked() {
        assert_eq!(mask_name("张三丰"), "张*丰");
        assert_eq!(mask_name("Al"), "A*");
        assert_eq!(mask_name("Alexander"), "A***r");
        assert_eq!(mask_name(""), "微信用户");
    }
}
