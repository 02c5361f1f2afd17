//! Message texts: campaign templates with `{name}` placeholders, and the masks applied to
//! other people's names.

/// Replaces each `{key}` in `template` with its value. Unknown placeholders stay as they are,
/// so an operator's typo shows up in the message instead of vanishing.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}').map(|end| (&after[..end], end)) {
            Some((key, end)) if values.iter().any(|(k, _)| *k == key) => {
                let value = values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
                    .unwrap_or_default();
                out.push_str(value);
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
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
