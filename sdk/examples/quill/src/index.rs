//! The quill index protocol: `GET <index-url>/<NAME>.json`, over the SDK's `http`.

use copa_plugin_sdk::{Policy, http, index_urls, log};
use serde::Deserialize;

use crate::version::QuillVersion;

/// The index's id in the manifest, in `--index quill=URL` and in `policy.indexes`.
pub const ECOSYSTEM: &str = "quill";
/// Used when the user names no `--index quill=URL`.
pub const DEFAULT_URL: &str = "https://packages.quill.example/index/";
/// An index document is small; a larger answer is a broken or hostile server.
const MAX_BODY: u64 = 1 << 20;

/// One package's index document.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Document {
    pub name: String,
    pub versions: Vec<Release>,
}

/// One published version: where its tarball is and the SHA-256 it must have.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    pub url: String,
    pub sha256: String,
}

impl Document {
    /// The releases whose version is a quill version, parsed (the others are not installable
    /// by this plugin, and are left out with a log line).
    pub fn versions(&self) -> Vec<(QuillVersion, &Release)> {
        self.versions
            .iter()
            .filter_map(|release| match release.version.parse() {
                Ok(version) => Some((version, release)),
                Err(e) => {
                    log::debug(&format!("{}: ignoring release {e}", self.name));
                    None
                }
            })
            .collect()
    }

    /// The release of `version`, compared as versions ("1.2" is "1.2.0").
    pub fn release(&self, version: &QuillVersion) -> Option<&Release> {
        self.versions()
            .into_iter()
            .find(|(v, _)| v == version)
            .map(|(_, release)| release)
    }
}

/// The URL of `name`'s document under the index URL `base`, joined with exactly one `/`. The
/// name is percent-encoded: it comes from a directory name in the image, and must stay one path
/// segment whatever it holds.
pub fn document_url(base: &str, name: &str) -> String {
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{}/{encoded}.json", base.trim_end_matches('/'))
}

/// `name`'s document from the first index URL in force that has it (status 200), trying them
/// in order; `None` when every one answers 404. Any other status, an http error or a malformed
/// document is an error naming the URL: the package may be there, so "unknown" would be a
/// guess. The host caches answers for the run, so `emit` asking again costs nothing.
pub fn fetch(policy: &Policy, name: &str) -> Result<Option<Document>, String> {
    let mut asked = 0;
    for base in index_urls(policy, ECOSYSTEM) {
        asked += 1;
        let url = document_url(base, name);
        let response = http::get(&url, &[("accept", "application/json")], MAX_BODY)
            .map_err(|e| format!("GET {url}: {e}"))?;
        match response.status {
            200 => return parse(&url, name, &response.body).map(Some),
            404 => continue,
            status => return Err(format!("GET {url}: HTTP status {status}")),
        }
    }
    if asked == 0 {
        // A host always passes the default URL (since contract 0.4); no URL means a host that
        // grants none.
        return Err(format!("no {ECOSYSTEM} index URL in the policy"));
    }
    Ok(None)
}

/// Parses and checks the document at `url`, which should describe `name`.
pub fn parse(url: &str, name: &str, body: &[u8]) -> Result<Document, String> {
    let document: Document = serde_json::from_slice(body)
        .map_err(|e| format!("{url}: not a quill index document: {e}"))?;
    if document.name != name {
        return Err(format!(
            "{url}: the document describes {:?}, not {name:?}",
            document.name
        ));
    }
    if let Some(bad) = document.versions.iter().find(|r| !is_sha256(&r.sha256)) {
        return Err(format!(
            "{url}: version {} has no lower-case hex SHA-256 ({:?})",
            bad.version, bad.sha256
        ));
    }
    Ok(document)
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn urls_join_with_exactly_one_slash() {
        assert_eq!(
            document_url("https://packages.quill.example/index/", "widget"),
            "https://packages.quill.example/index/widget.json"
        );
        assert_eq!(
            document_url("http://127.0.0.1:8080", "widget"),
            "http://127.0.0.1:8080/widget.json"
        );
        assert_eq!(
            document_url("http://h/i//", "a b?c#d/e"),
            "http://h/i/a%20b%3Fc%23d%2Fe.json"
        );
        assert_eq!(
            document_url("http://h", "x_y-1.2~z"),
            "http://h/x_y-1.2~z.json"
        );
    }

    #[test]
    fn parses_a_document() {
        let body = format!(
            r#"{{"name": "widget", "versions": [
                {{"version": "1.2.0", "url": "http://h/widget-1.2.0.tar.gz", "sha256": "{SHA}"}},
                {{"version": "latest", "url": "http://h/widget-latest.tar.gz", "sha256": "{SHA}"}}
            ], "extra": true}}"#
        );
        let document = parse("http://h/widget.json", "widget", body.as_bytes()).unwrap();
        let versions = document.versions();
        assert_eq!(versions.len(), 1, "\"latest\" is not a version");
        assert_eq!(versions[0].0.to_string(), "1.2.0");
        let release = document.release(&"1.2".parse().unwrap()).unwrap();
        assert_eq!(release.url, "http://h/widget-1.2.0.tar.gz");
        assert!(document.release(&"1.3".parse().unwrap()).is_none());
    }

    #[test]
    fn a_malformed_document_is_an_error_naming_the_url() {
        let url = "http://h/widget.json";
        for body in [
            "not json".to_string(),
            r#"{"name": "widget"}"#.to_string(),
            r#"{"name": "gadget", "versions": []}"#.to_string(),
            r#"{"name": "widget", "versions": [{"version": "1", "url": "u", "sha256": "ABC"}]}"#
                .to_string(),
            format!(
                r#"{{"name": "widget", "versions": [{{"version": "1", "url": "u", "sha256": "{}"}}]}}"#,
                SHA.to_uppercase()
            ),
        ] {
            let error = parse(url, "widget", body.as_bytes()).unwrap_err();
            assert!(error.starts_with(url), "{error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
