//! Where in a JSON document a problem is, as shown in an error: `policy.notice_days`,
//! `events[3].amount`.
//!
//! A key is joined with a dot when it is a plain name (letters, digits, `_`, `-`). Any other key,
//! the empty key included, is shown quoted in brackets (`[""]`, `policy["a.b"]`), cut to 64
//! characters with control characters escaped, so a path is never empty and never ambiguous, and
//! an error never repeats a long value a client sent as a key.

/// The longest key shown in full; longer keys are cut and end in `…`.
const SHOWN_KEY_CHARS: usize = 64;

/// The path of `key` inside the object at `prefix` (`""` for the top level).
pub fn field(prefix: &str, key: &str) -> String {
    if is_plain(key) {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    } else {
        format!("{prefix}[{}]", quoted(key))
    }
}

/// The path of item `index` of the array at `prefix`.
pub fn index(prefix: &str, index: usize) -> String {
    format!("{prefix}[{index}]")
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= SHOWN_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The key as a JSON string, cut to `SHOWN_KEY_CHARS` characters.
fn quoted(key: &str) -> String {
    let mut cut: String = key.chars().take(SHOWN_KEY_CHARS).collect();
    if key.chars().count() > SHOWN_KEY_CHARS {
        cut.push('…');
    }
    // Serialising a string cannot fail; escaping by hand is the fallback all the same.
    serde_json::to_string(&cut).unwrap_or_else(|_| format!("\"{}\"", cut.escape_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_are_joined_with_dots() {
        assert_eq!(field("", "from"), "from");
        assert_eq!(field("policy", "notice_days"), "policy.notice_days");
        assert_eq!(field(&index("events", 3), "amount"), "events[3].amount");
    }

    #[test]
    fn an_empty_key_still_gives_a_path_that_is_not_empty() {
        assert_eq!(field("", ""), "[\"\"]");
        assert_eq!(field("policy", ""), "policy[\"\"]");
    }

    #[test]
    fn keys_with_dots_brackets_or_control_characters_are_quoted() {
        assert_eq!(field("policy", "a.b"), "policy[\"a.b\"]");
        assert_eq!(field("", "x[0]"), "[\"x[0]\"]");
        assert_eq!(field("", "a\nb"), "[\"a\\nb\"]");
    }

    #[test]
    fn long_keys_are_cut_to_sixty_four_characters() {
        let shown = field("", &"k".repeat(500));
        assert_eq!(shown, format!("[\"{}…\"]", "k".repeat(64)));
    }
}
