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

/// The RFC 6901 JSON pointer of a path written as above (`events[3].amount` →
/// `/events/3/amount`, `policy["a/b"]` → `/policy/a~1b`); the whole document is `""`.
pub fn pointer(path: &str) -> String {
    let mut pointer = String::new();
    let mut rest = path;
    while !rest.is_empty() {
        let segment: String;
        if let Some(after) = rest.strip_prefix('.') {
            rest = after;
            continue;
        } else if let Some(quoted) = rest.strip_prefix('[').filter(|r| r.starts_with('"')) {
            let mut keys = serde_json::Deserializer::from_str(quoted).into_iter::<String>();
            match keys.next() {
                Some(Ok(key)) => {
                    let used = keys.byte_offset();
                    segment = key;
                    rest = quoted.get(used..).unwrap_or("");
                    rest = rest.strip_prefix(']').unwrap_or(rest);
                }
                _ => {
                    segment = quoted.to_owned();
                    rest = "";
                }
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').unwrap_or(after.len());
            segment = after[..end].to_owned();
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            segment = rest[..end].to_owned();
            rest = &rest[end..];
        }
        pointer.push('/');
        pointer.push_str(&pointer_token(&segment));
    }
    pointer
}

/// One key as a JSON pointer token (RFC 6901: `~` is `~0`, `/` is `~1`).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
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
    fn a_policy_path_becomes_a_json_pointer() {
        assert_eq!(pointer("policy.notice_days"), "/policy/notice_days");
        assert_eq!(
            pointer("policy.weekly_list.cutoff"),
            "/policy/weekly_list/cutoff"
        );
        assert_eq!(pointer("policy.x[2]"), "/policy/x/2");
        // Keys that are not plain names come quoted from the policy's errors.
        assert_eq!(pointer("policy[\"a.b\"]"), "/policy/a.b");
        assert_eq!(pointer("policy[\"\"]"), "/policy/");
    }

    #[test]
    fn paths_become_json_pointers() {
        assert_eq!(pointer(""), "");
        assert_eq!(pointer("from"), "/from");
        assert_eq!(pointer("events[3].amount"), "/events/3/amount");
        assert_eq!(pointer("data.lines[0][1]"), "/data/lines/0/1");
        assert_eq!(pointer(&field("policy", "a/b~c")), "/policy/a~1b~0c");
        assert_eq!(pointer(&field("", "")), "/");
        assert_eq!(pointer(&field(&field("", "x.y"), "z")), "/x.y/z");
        assert_eq!(pointer(&field("", "a\"]b")), "/a\"]b");
    }

    #[test]
    fn long_keys_are_cut_to_sixty_four_characters() {
        let shown = field("", &"k".repeat(500));
        assert_eq!(shown, format!("[\"{}…\"]", "k".repeat(64)));
    }
}
