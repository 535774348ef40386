//! PyPI and its mirrors, as pip reads them: the Python "simple" repository API, PEP 691 JSON
//! when the index offers it and PEP 503 HTML otherwise.
//!
//! A plugin reads an index with [`versions`] over the host's granted [`crate::http`]; the parts
//! that need no network ([`project_url`], [`read_page`]) are public so that any client (the
//! host's own, for plugins of older contracts) reads pages exactly the same way.

use std::collections::HashMap;

use serde::Deserialize;

use crate::pep440::normalize_name;

/// The index id plugins declare and users name in `--index pypi=URL`.
pub const ECOSYSTEM: &str = "pypi";

/// The variable pip reads a CA bundle's path from: a pip step's `ca_variables`.
pub const CA_VARIABLES: &[&str] = &["PIP_CERT"];

/// PyPI's simple API.
pub const DEFAULT_INDEX: &str = "https://pypi.org/simple/";

/// Prefer JSON (PEP 691) but accept the HTML forms, as pip does, so that plain PEP 503 mirrors
/// still work.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The simple page of a popular package (boto3, botocore) is already ~2 MB of JSON and only
/// grows; this is also the most the host's `http` returns.
pub const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// One version of a project as the index lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    /// Every file of this version is yanked.
    pub yanked: bool,
    /// PEP 345 `Requires-Python` of the file an installer would pick, when declared.
    pub requires_python: Option<String>,
}

/// The URL of `name`'s project page under the index at `index_url`: the name PEP 503-normalised
/// after a single slash. A name that is not a Python project name is an error, since it becomes a
/// path segment and must not point the request elsewhere on the index's host.
pub fn project_url(index_url: &str, name: &str) -> Result<String, String> {
    if !is_valid_name(name) {
        return Err(format!("invalid Python package name {name:?}"));
    }
    Ok(format!(
        "{}/{}/",
        index_url.trim_end_matches('/'),
        normalize_name(name)
    ))
}

/// The versions a project page lists, in first-seen order, from the page's `Content-Type` and
/// body; `name` is the project as asked (any spelling).
pub fn read_page(
    name: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<Release>, String> {
    let format = content_type
        .and_then(page_format)
        .ok_or_else(|| format!("unsupported Content-Type {content_type:?}"))?;
    let body = String::from_utf8_lossy(body);
    let files = match format {
        PageFormat::Json => parse_json_page(&body).map_err(|e| format!("parsing JSON: {e}"))?,
        PageFormat::Html => parse_html_page(&body),
    };
    Ok(group_versions(&normalize_name(name), &files))
}

/// Every version of `name` the indexes at `index_urls` list, as pip sees them with the first as
/// its index URL and the others as extra index URLs: a version is listed once, yanked only when
/// every index yanks it. An unknown project is an empty list; an index that cannot answer is an
/// error naming its URL.
pub fn versions<'a>(
    index_urls: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> Result<Vec<Release>, String> {
    let mut all: Vec<Release> = Vec::new();
    for index_url in index_urls {
        for release in versions_at(index_url, name)? {
            match all.iter_mut().find(|r| r.version == release.version) {
                Some(known) => {
                    known.yanked &= release.yanked;
                    if known.requires_python.is_none() {
                        known.requires_python = release.requires_python;
                    }
                }
                None => all.push(release),
            }
        }
    }
    Ok(all)
}

fn versions_at(index_url: &str, name: &str) -> Result<Vec<Release>, String> {
    let url = project_url(index_url, name)?;
    let response = crate::http::get(&url, &[("accept", ACCEPT)], MAX_PAGE_BYTES)
        .map_err(|e| format!("fetching {url}: {e}"))?;
    match response.status {
        404 => Ok(Vec::new()),
        200..=299 => read_page(name, response.header("content-type"), &response.body)
            .map_err(|e| format!("reading {url}: {e}")),
        status => Err(format!("fetching {url}: HTTP {status}")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageFormat {
    Json,
    Html,
}

fn page_format(content_type: &str) -> Option<PageFormat> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/vnd.pypi.simple.v1+json" | "application/json" => Some(PageFormat::Json),
        m if m.contains("html") => Some(PageFormat::Html),
        _ => None,
    }
}

/// A distribution file listed on a project page, before grouping by version.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IndexFile {
    filename: String,
    requires_python: Option<String>,
    yanked: bool,
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    #[serde(rename = "requires-python", default)]
    requires_python: Option<String>,
    #[serde(default, deserialize_with = "yanked_flag")]
    yanked: bool,
}

/// PEP 691: `yanked` is either a boolean or a reason string, which means yanked. Plugins only
/// need the flag, so the reason is dropped.
fn yanked_flag<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Bool(flag) => Ok(flag),
        serde_json::Value::String(_) => Ok(true),
        serde_json::Value::Null => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "invalid \"yanked\" value {other}"
        ))),
    }
}

fn parse_json_page(body: &str) -> Result<Vec<IndexFile>, serde_json::Error> {
    let page: JsonPage = serde_json::from_str(body)?;
    Ok(page
        .files
        .into_iter()
        .map(|f| IndexFile {
            filename: f.filename,
            requires_python: non_empty(f.requires_python),
            yanked: f.yanked,
        })
        .collect())
}

/// Indexes sometimes emit `requires-python=""`, which constrains nothing.
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Extracts the anchors of a PEP 503 page with a small tolerant scanner: real-world mirrors
/// produce all sorts of not-quite-HTML, and only `<a>` tags matter.
fn parse_html_page(html: &str) -> Vec<IndexFile> {
    let mut files = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            // Skip comments so commented-out links are not picked up.
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let after_lt = &rest[1..];
        let is_anchor = after_lt
            .as_bytes()
            .first()
            .is_some_and(|b| b.eq_ignore_ascii_case(&b'a'))
            && after_lt
                .as_bytes()
                .get(1)
                .is_none_or(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/');
        if !is_anchor {
            rest = after_lt;
            continue;
        }
        let (attrs, after_tag) = parse_attributes(&after_lt[1..]);
        let text_end = after_tag.find('<').unwrap_or(after_tag.len());
        let text = unescape_html(after_tag[..text_end].trim());
        rest = &after_tag[text_end..];

        let href = attrs.get("href").map(String::as_str).unwrap_or_default();
        // PEP 503 requires the anchor text to be the filename; fall back to the URL's last path
        // segment for pages that put something else (or nothing) there.
        let filename = if text.is_empty() {
            let path = href.split(['#', '?']).next().unwrap_or_default();
            path.rsplit('/').next().unwrap_or_default().to_owned()
        } else {
            text
        };
        if filename.is_empty() {
            continue;
        }
        files.push(IndexFile {
            filename,
            requires_python: non_empty(attrs.get("data-requires-python").cloned()),
            // Presence alone marks a yank; the value is only the (optional) reason.
            yanked: attrs.contains_key("data-yanked"),
        });
    }
    files
}

/// Parses `name="value" name='value' name=value name` up to the closing `>` of a tag.
/// Returns the attributes (lower-cased names, unescaped values) and the text after the tag.
fn parse_attributes(mut s: &str) -> (HashMap<String, String>, &str) {
    let mut attrs = HashMap::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if s.is_empty() {
            return (attrs, s);
        }
        if let Some(after) = s.strip_prefix('>') {
            return (attrs, after);
        }
        let name_end = s
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
            .unwrap_or(s.len());
        let name = s[..name_end].to_ascii_lowercase();
        s = &s[name_end..];
        let mut value = String::new();
        let after_ws = s.trim_start();
        if let Some(after_eq) = after_ws.strip_prefix('=') {
            let v = after_eq.trim_start();
            let (raw, remaining) = match v.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &v[1..];
                    match inner.find(q) {
                        Some(end) => (&inner[..end], &inner[end + 1..]),
                        None => (inner, ""),
                    }
                }
                _ => {
                    let end = v
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(v.len());
                    (&v[..end], &v[end..])
                }
            };
            value = unescape_html(raw);
            s = remaining;
        }
        // The first occurrence wins, as in browsers.
        attrs.entry(name).or_insert(value);
    }
}

/// Decodes the character references that occur in index pages. Anything unrecognised is kept
/// verbatim rather than rejected.
fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest[1..]
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| decode_entity(&rest[1..=semi]).map(|c| (c, semi + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(entity: &str) -> Option<char> {
    match entity {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// PEP 508 project names. Checked because the name becomes a URL path segment, and a plugin
/// must not be able to point the request elsewhere on the index host.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

const SDIST_SUFFIXES: &[&str] = &[".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip"];

/// The version a distribution filename encodes, or `None` for files that are not a wheel,
/// sdist or egg of `project` (a normalized name).
fn version_from_filename(project: &str, filename: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets, so suffix lengths apply to the original name.
    let lower = filename.to_ascii_lowercase();
    let (stem, single_field) = if lower.ends_with(".whl") || lower.ends_with(".egg") {
        (&filename[..filename.len() - 4], true)
    } else {
        let suffix = SDIST_SUFFIXES.iter().find(|s| lower.ends_with(*s))?;
        (&filename[..filename.len() - suffix.len()], false)
    };

    // The name part may be spelled with `_`, `-` or `.` and any case (and sdist names may
    // contain dashes), so find the dash whose prefix normalizes to the project. At most one
    // can: normalized prefixes at later dashes are strictly longer.
    let after_name = stem
        .match_indices('-')
        .find(|(i, _)| normalize_name(&stem[..*i]) == project)
        .map(|(i, _)| &stem[i + 1..])?;
    // Wheels and eggs continue with `-tags` after the version; an sdist's rest is all version.
    let version = if single_field {
        after_name.split('-').next().unwrap_or_default()
    } else {
        after_name
    };
    (!version.is_empty()).then(|| version.to_owned())
}

/// Collapses files into versions, keeping first-seen order.
fn group_versions(project: &str, files: &[IndexFile]) -> Vec<Release> {
    let mut order: Vec<(String, Vec<&IndexFile>)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for file in files {
        let Some(version) = version_from_filename(project, &file.filename) else {
            continue;
        };
        let slot = *position.entry(version.clone()).or_insert_with(|| {
            order.push((version, Vec::new()));
            order.len() - 1
        });
        order[slot].1.push(file);
    }

    order
        .into_iter()
        .map(|(version, files)| {
            // A version is only unavailable if every file is yanked; the constraint that matters
            // is the one of a file an installer would actually pick.
            let requires_python = files
                .iter()
                .filter(|f| !f.yanked)
                .chain(files.iter())
                .find_map(|f| f.requires_python.clone());
            Release {
                version,
                yanked: files.iter().all(|f| f.yanked),
                requires_python,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(filename: &str, requires_python: Option<&str>, yanked: bool) -> IndexFile {
        IndexFile {
            filename: filename.to_owned(),
            requires_python: requires_python.map(str::to_owned),
            yanked,
        }
    }

    fn version(v: &str, yanked: bool, requires_python: Option<&str>) -> Release {
        Release {
            version: v.to_owned(),
            yanked,
            requires_python: requires_python.map(str::to_owned),
        }
    }

    #[test]
    fn validates_python_names() {
        for ok in ["a", "urllib3", "zope.interface", "Foo_Bar-2"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "../etc", "a/b", "a?b", "a b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn unescapes_entities() {
        assert_eq!(unescape_html("&gt;=3.6, &lt;4"), ">=3.6, <4");
        assert_eq!(
            unescape_html("&amp;&quot;&#39;&apos;&#33;&#x3E;&#X3c;"),
            "&\"''!><"
        );
        // Unknown or unterminated references stay as written.
        assert_eq!(
            unescape_html("a & b &bogus; &#xZZ; &lt"),
            "a & b &bogus; &#xZZ; &lt"
        );
        assert_eq!(unescape_html("&#128512;"), "\u{1F600}");
    }

    #[test]
    fn extracts_versions_from_filenames() {
        let cases = [
            ("markupsafe", "MarkupSafe-1.1.1.tar.gz", Some("1.1.1")),
            (
                "markupsafe",
                "markupsafe-2.0.0-cp39-cp39-manylinux2010_x86_64.whl",
                Some("2.0.0"),
            ),
            (
                "zope-interface",
                "zope.interface-5.4.0.tar.gz",
                Some("5.4.0"),
            ),
            (
                "zope-interface",
                "zope_interface-5.4.0-cp39-none-any.whl",
                Some("5.4.0"),
            ),
            ("foo-bar", "foo-bar-1.0.zip", Some("1.0")),
            ("foo-bar", "Foo_Bar-1.0.TAR.BZ2", Some("1.0")),
            ("foo-bar", "foo-bar-1.0.tgz", Some("1.0")),
            ("foo", "foo-1.0-beta.tar.gz", Some("1.0-beta")),
            ("foo", "foo-1.0-1-py3-none-any.whl", Some("1.0")),
            ("setuptools", "setuptools-0.6c11-py2.7.egg", Some("0.6c11")),
            ("foo", "foo-1.0.exe", None),
            ("foo", "foo-1.0.tar.gz.asc", None),
            ("foo", "foobar-1.0.tar.gz", None),
            ("foo", "foo.tar.gz", None),
            ("foo", "foo-.tar.gz", None),
        ];
        for (project, filename, expected) in cases {
            assert_eq!(
                version_from_filename(project, filename).as_deref(),
                expected,
                "{filename}"
            );
        }
    }

    #[test]
    fn groups_files_by_version() {
        let files = [
            file("pkg-1.0.tar.gz", Some(">=3.6"), true),
            file("pkg-1.0-py3-none-any.whl", Some(">=3.7"), false),
            file("pkg-2.0.tar.gz", None, true),
            file("pkg-2.0-py3-none-any.whl", Some(">=3.8"), true),
            file("pkg-0.9.tar.gz", None, false),
            file("README.txt", None, false),
        ];
        assert_eq!(
            group_versions("pkg", &files),
            [
                version("1.0", false, Some(">=3.7")),
                version("2.0", true, Some(">=3.8")),
                version("0.9", false, None),
            ]
        );
    }

    #[test]
    fn chooses_format_by_content_type() {
        let json = Some(PageFormat::Json);
        let html = Some(PageFormat::Html);
        assert_eq!(page_format("application/vnd.pypi.simple.v1+json"), json);
        assert_eq!(page_format("Application/JSON; charset=utf-8"), json);
        assert_eq!(page_format("application/vnd.pypi.simple.v1+html"), html);
        assert_eq!(page_format("text/html; charset=utf-8"), html);
        assert_eq!(page_format("text/plain"), None);
    }

    const HTML_PAGE: &str = r#"<!DOCTYPE html>
<html><head><title>Links for MarkupSafe</title></head>
<body><h1>Links for MarkupSafe</h1>
<!-- <a href="/x/markupsafe-9.9.9.tar.gz">markupsafe-9.9.9.tar.gz</a> -->
<a href="/files/MarkupSafe-1.1.1.tar.gz#sha256=29872e92" data-requires-python="&gt;=2.7,!=3.0.*">MarkupSafe-1.1.1.tar.gz</a><br/>
<A data-requires-python='&gt;=3.6' HREF='/files/markupsafe-2.0.0-cp39-cp39-manylinux2010_x86_64.whl'>markupsafe-2.0.0-cp39-cp39-manylinux2010_x86_64.whl</A><br/>
<a
   data-yanked="" href="/files/markupsafe-2.0.0.tar.gz" data-requires-python="&#62;=3.6">markupsafe-2.0.0.tar.gz</a>
<a href="/files/MarkupSafe-2.1.0.tar.gz" data-yanked="broken &quot;build&quot; &amp; more" data-requires-python=&gt;=3.7>MarkupSafe-2.1.0.tar.gz</a>
<a href="/files/markupsafe-2.1.0-py3-none-any.whl" data-yanked>  </a>
<abbr>not a link</abbr><a href="/files/markupsafe-3.0.0.tar.gz"></a>
<a href="/files/markupsafe-3.0.0.exe">markupsafe-3.0.0.exe</a>
</body></html>"#;

    #[test]
    fn parses_html_anchors() {
        let files = parse_html_page(HTML_PAGE);
        assert_eq!(
            files,
            [
                file("MarkupSafe-1.1.1.tar.gz", Some(">=2.7,!=3.0.*"), false),
                file(
                    "markupsafe-2.0.0-cp39-cp39-manylinux2010_x86_64.whl",
                    Some(">=3.6"),
                    false
                ),
                file("markupsafe-2.0.0.tar.gz", Some(">=3.6"), true),
                file("MarkupSafe-2.1.0.tar.gz", Some(">=3.7"), true),
                file("markupsafe-2.1.0-py3-none-any.whl", None, true),
                file("markupsafe-3.0.0.tar.gz", None, false),
                file("markupsafe-3.0.0.exe", None, false),
            ]
        );
        let (attrs, rest) =
            parse_attributes(r#" href="x" data-yanked="broken &quot;build&quot; &amp; more">t"#);
        assert_eq!(attrs["data-yanked"], r#"broken "build" & more"#);
        assert_eq!(rest, "t");
    }

    const JSON_PAGE: &str = r#"{
  "meta": {"api-version": "1.1"},
  "name": "markupsafe",
  "files": [
    {"filename": "MarkupSafe-1.1.1.tar.gz", "url": "x", "hashes": {}, "requires-python": ">=2.7,!=3.0.*"},
    {"filename": "markupsafe-2.0.0-cp39-cp39-manylinux2010_x86_64.whl", "url": "x", "hashes": {}, "requires-python": null, "yanked": false},
    {"filename": "markupsafe-2.0.0.tar.gz", "url": "x", "hashes": {}, "requires-python": ">=3.6", "yanked": "bad sdist"},
    {"filename": "MarkupSafe-2.1.0.tar.gz", "url": "x", "hashes": {}, "requires-python": "", "yanked": true}
  ]
}"#;

    #[test]
    fn parses_json_files() {
        assert_eq!(
            parse_json_page(JSON_PAGE).unwrap(),
            [
                file("MarkupSafe-1.1.1.tar.gz", Some(">=2.7,!=3.0.*"), false),
                file(
                    "markupsafe-2.0.0-cp39-cp39-manylinux2010_x86_64.whl",
                    None,
                    false
                ),
                file("markupsafe-2.0.0.tar.gz", Some(">=3.6"), true),
                file("MarkupSafe-2.1.0.tar.gz", None, true),
            ]
        );
        assert!(parse_json_page("<html>").is_err());
        assert!(parse_json_page(r#"{"files":[{"filename":"a-1.tar.gz","yanked":1}]}"#).is_err());
    }

    #[test]
    fn reads_pages_by_content_type() {
        let json = Some("application/vnd.pypi.simple.v1+json");
        assert_eq!(
            read_page("Zope.Interface", json, br#"{"files":[
                {"filename":"zope.interface-5.4.0.tar.gz","yanked":"oops"},
                {"filename":"zope_interface-5.4.0-cp39-cp39-manylinux1_x86_64.whl","requires-python":">=3.5"},
                {"filename":"zope.interface-6.0.tar.gz","requires-python":">=3.7","yanked":true}]}"#)
            .unwrap(),
            [
                version("5.4.0", false, Some(">=3.5")),
                version("6.0", true, Some(">=3.7")),
            ]
        );
        assert_eq!(
            read_page("markupsafe", Some("text/html"), HTML_PAGE.as_bytes()).unwrap(),
            [
                version("1.1.1", false, Some(">=2.7,!=3.0.*")),
                version("2.0.0", false, Some(">=3.6")),
                version("2.1.0", true, Some(">=3.7")),
                version("3.0.0", false, None),
            ]
        );
        let err = read_page("a", Some("application/json"), b"{\"files\": 3}").unwrap_err();
        assert!(err.starts_with("parsing JSON: "), "{err}");
        assert_eq!(
            read_page("a", Some("text/plain"), b"").unwrap_err(),
            "unsupported Content-Type Some(\"text/plain\")"
        );
        assert!(read_page("a", None, b"").is_err());
    }

    #[test]
    fn project_urls_normalise_and_refuse_paths() {
        assert_eq!(
            project_url("https://pypi.org/simple", "Zope.Interface").unwrap(),
            "https://pypi.org/simple/zope-interface/"
        );
        assert_eq!(
            project_url("http://127.0.0.1:3141/root/pypi/+simple//", "six").unwrap(),
            "http://127.0.0.1:3141/root/pypi/+simple/six/"
        );
        for bad in ["../admin", "a/b", "six?x=1", ""] {
            assert!(
                project_url("https://pypi.org/simple/", bad).is_err(),
                "{bad}"
            );
        }
    }
}
