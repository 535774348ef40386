//! Text on its way to a terminal. Much of what the host prints comes from parties it does not
//! trust: package names and versions read from an image, a plugin's descriptions, logs and
//! errors, a scanner plugin's output. An escape sequence among them could rewrite what the user
//! sees (hide a failure, fake a success line, set the window title), and bidirectional-override
//! characters could reorder it, so every such character is shown as its escape instead
//! (`\u{1b}`); logins in URLs are shown as `***@`. Newlines and tabs stay: the callers that need
//! one line join lines themselves.

use std::fmt::Write;

/// `text` as it may be printed.
pub fn printable(text: &str) -> String {
    let text = crate::http::redact_logins(text);
    if !text.chars().any(is_hidden_control) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden_control(c) {
            let _ = write!(out, "{}", c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Control characters (C0, DEL, C1) other than newline and tab, and the characters that change
/// the direction text is shown in.
fn is_hidden_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_and_direction_overrides_are_shown_not_obeyed() {
        assert_eq!(
            printable("urllib3\u{1b}[2K\u{1b}]0;owned\u{7}\rdone"),
            "urllib3\\u{1b}[2K\\u{1b}]0;owned\\u{7}\\u{d}done"
        );
        assert_eq!(printable("a\u{202e}b\u{9b}c"), "a\\u{202e}b\\u{9b}c");
        assert_eq!(printable("two\nlines\tand tabs"), "two\nlines\tand tabs");
        assert_eq!(
            printable("from https://me:s3cret@example.com/x"),
            "from https://***@example.com/x"
        );
        assert_eq!(printable("Zürich ✓"), "Zürich ✓");
    }
}
