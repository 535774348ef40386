//! package.json and lockfiles rewritten the way npm writes them: key order kept, the file's own
//! indentation and line endings, and its trailing newline.

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{PrettyFormatter, Serializer};

/// How a JSON file was laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    indent: String,
    crlf: bool,
    trailing_newline: bool,
}

/// A parsed JSON document and its layout.
pub fn parse(bytes: &[u8]) -> Result<(Value, Layout), String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    // npm strips a byte order mark too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    // The indentation of the first indented line, as npm detects it; two spaces by default.
    let indent = text
        .lines()
        .skip(1)
        .map(|line| {
            line.chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect::<String>()
        })
        .find(|ws| !ws.is_empty())
        .unwrap_or_else(|| "  ".to_string());
    let layout = Layout {
        indent,
        crlf: text.contains("\r\n"),
        trailing_newline: text.ends_with('\n'),
    };
    Ok((value, layout))
}

/// `value` serialized in `layout`.
pub fn render(value: &Value, layout: &Layout) -> Vec<u8> {
    let mut out = Vec::new();
    let formatter = PrettyFormatter::with_indent(layout.indent.as_bytes());
    let mut serializer = Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .expect("serializing a JSON value into memory cannot fail");
    let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
    if layout.trailing_newline {
        text.push('\n');
    }
    if layout.crlf {
        text = text.replace('\n', "\r\n");
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_npm_output() {
        let npm = "{\n  \"name\": \"app\",\n  \"version\": \"1.0.0\",\n  \"dependencies\": {\n    \"zeta\": \"^1.0.0\",\n    \"alpha\": \"~2.0.0\"\n  },\n  \"files\": [],\n  \"empty\": {}\n}\n";
        let (value, layout) = parse(npm.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(render(&value, &layout)).unwrap(), npm);
    }

    #[test]
    fn keeps_tabs_crlf_and_missing_newline() {
        let text = "{\r\n\t\"a\": [\r\n\t\t1,\r\n\t\t\"x/y\u{e9}\"\r\n\t]\r\n}";
        let (value, layout) = parse(text.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(render(&value, &layout)).unwrap(), text);
        assert!(parse(b"{").is_err());
    }
}
