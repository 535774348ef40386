//! The Go module proxy protocol (`GOPROXY`), as the go command reads it:
//! `<proxy>/<escaped module>/@v/list` lists a module's versions, one a line. Go toolchains are
//! listed there too, as versions of the module [`TOOLCHAIN_MODULE`]
//! (`v0.0.1-go1.22.3.linux-amd64`), which is what `GOTOOLCHAIN=go1.22.3` downloads.
//!
//! A plugin reads its proxies with [`versions`] over the host's granted [`crate::http`]; the
//! parts that need no network ([`list_url`], [`read_answer`], [`read_list`],
//! [`is_valid_module_path`]) are public so that any client (the host's own, for plugins of
//! older contracts) reads a proxy exactly the same way.

/// The index id plugins declare and users name in `--index go=URL`.
pub const ECOSYSTEM: &str = "go";

/// The variable the go command reads a CA bundle's path from (crypto/x509 follows OpenSSL): a
/// go step's `ca_variables`.
pub const CA_VARIABLES: &[&str] = crate::OPENSSL_CA_VARIABLES;

/// The public proxy, as the go command defaults to it.
pub const DEFAULT_PROXY: &str = "https://proxy.golang.org";

/// The module under which proxies serve Go toolchains.
pub const TOOLCHAIN_MODULE: &str = "golang.org/toolchain";

/// A version list is one short line a tag: the largest modules list a few thousand (tens of
/// KB), so this is room to spare, and a proxy that sends more is refused rather than read.
pub const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;

/// The versions of `module` that the first of `proxy_urls` to have it lists, as the go command
/// reads a `GOPROXY` list joined by `,`: the next proxy is asked only when one does not have the
/// module (404 or 410). Any other failure is an error naming the URL; a module no proxy has is
/// an empty list. The path is checked before any request, since it becomes part of the URL.
pub fn versions<'a>(
    proxy_urls: impl IntoIterator<Item = &'a str>,
    module: &str,
) -> Result<Vec<String>, String> {
    first_listing(proxy_urls, module, |url| {
        let response = crate::http::get(url, &[], MAX_LIST_BYTES).map_err(|e| e.to_string())?;
        Ok((response.status, response.body))
    })
}

/// [`versions`], asking with `get` (a URL's status and body), so that the order of the proxies
/// is decided here whatever carries the requests.
fn first_listing<'a>(
    proxy_urls: impl IntoIterator<Item = &'a str>,
    module: &str,
    mut get: impl FnMut(&str) -> Result<(u16, Vec<u8>), String>,
) -> Result<Vec<String>, String> {
    let path = escape_path(module)?;
    for proxy_url in proxy_urls {
        let url = escaped_list_url(proxy_url, &path);
        let (status, body) = get(&url).map_err(|e| format!("fetching {url}: {e}"))?;
        if let Some(versions) = read_answer(&url, status, &body)? {
            return Ok(versions);
        }
    }
    Ok(Vec::new())
}

/// The URL of `module`'s version list on the proxy at `proxy_url`. A path that is not a module
/// path is an error: it would otherwise point the request elsewhere on the proxy's host.
pub fn list_url(proxy_url: &str, module: &str) -> Result<String, String> {
    Ok(escaped_list_url(proxy_url, &escape_path(module)?))
}

fn escaped_list_url(proxy_url: &str, escaped_path: &str) -> String {
    format!("{}/{escaped_path}/@v/list", proxy_url.trim_end_matches('/'))
}

/// What a proxy's answer (`status`, `body`) to [`list_url`] says: the versions it lists; `None`
/// when it does not have the module (404 or 410, after which the go command asks the next
/// proxy); an error naming `url` for any other status.
pub fn read_answer(url: &str, status: u16, body: &[u8]) -> Result<Option<Vec<String>>, String> {
    match status {
        200..=299 => Ok(Some(read_list(body))),
        404 | 410 => Ok(None),
        status => Err(format!("fetching {url}: HTTP {status}")),
    }
}

/// The versions of a list body in the proxy's order: the first field of each line, as the go
/// command takes it. Whether a field is a version at all is the caller's to check, with the
/// version type it compares.
pub fn read_list(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `module` as a proxy URL spells it: each upper-case letter becomes `!` and its lower case, so
/// that module paths stay distinct on case-insensitive file systems.
pub fn escape_path(module: &str) -> Result<String, String> {
    if !is_valid_module_path(module) {
        return Err(format!("invalid Go module path {module:?}"));
    }
    let mut escaped = String::with_capacity(module.len());
    for c in module.chars() {
        if c.is_ascii_uppercase() {
            escaped.push('!');
            escaped.push(c.to_ascii_lowercase());
        } else {
            escaped.push(c);
        }
    }
    Ok(escaped)
}

/// Whether `path` is a module path the go command accepts (`module.CheckPath`: elements of
/// letters, digits and `-._~`, none empty, none beginning or ending with a dot, no leading
/// `-`), with `+`, which older import paths use. Nothing else may become a URL path (no `%`,
/// `?`, `..`, `!`) or an argument that looks like a flag.
pub fn is_valid_module_path(path: &str) -> bool {
    let is_valid_element = |element: &str| {
        !element.is_empty()
            && !element.starts_with('.')
            && !element.ends_with('.')
            && element
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+".contains(&b))
    };
    !path.starts_with('-') && path.split('/').all(is_valid_element)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_module_paths() {
        for ok in [
            "golang.org/x/crypto",
            "github.com/Azure/azure-sdk-for-go/v68",
            "gopkg.in/yaml.v3",
            "example.com/a_b~c+d",
            TOOLCHAIN_MODULE,
        ] {
            assert!(is_valid_module_path(ok), "{ok}");
        }
        for bad in [
            "",
            "-flag",
            "/abs",
            "a//b",
            "a/",
            "a/../b",
            "a/.hidden",
            "a/b.",
            "a b",
            "a?b",
            "a%2fb",
            "a!b",
            "a#b",
            "é.example/m",
        ] {
            assert!(!is_valid_module_path(bad), "{bad}");
        }
    }

    #[test]
    fn escapes_upper_case_in_list_urls() {
        assert_eq!(
            list_url("https://proxy.example/go/", "github.com/BurntSushi/toml").unwrap(),
            "https://proxy.example/go/github.com/!burnt!sushi/toml/@v/list"
        );
        assert_eq!(
            list_url("https://proxy.example", "a/../b").unwrap_err(),
            "invalid Go module path \"a/../b\""
        );
    }

    #[test]
    fn reads_the_first_field_of_each_line() {
        let body = b"v1.2.0\r\nv1.3.2 2024-01-01T00:00:00Z\n\n  \nv1.4.0-rc.1\n";
        assert_eq!(
            read_answer("u", 200, body).unwrap().unwrap(),
            ["v1.2.0", "v1.3.2", "v1.4.0-rc.1"]
        );
        assert_eq!(read_answer("u", 404, b"not found").unwrap(), None);
        assert_eq!(read_answer("u", 410, b"gone").unwrap(), None);
        assert_eq!(
            read_answer("https://p/m/@v/list", 500, b"down").unwrap_err(),
            "fetching https://p/m/@v/list: HTTP 500"
        );
    }

    /// A proxy's answer: a status and body, or why the request failed.
    type Answer<'a> = Result<(u16, &'a str), &'a str>;

    /// Proxies answering from a table (URL -> answer); every other URL is a 404. The requests
    /// made are logged.
    fn proxies<'a>(
        answers: &'a [(&str, Answer)],
        asked: &'a mut Vec<String>,
    ) -> impl FnMut(&str) -> Result<(u16, Vec<u8>), String> + 'a {
        move |url| {
            asked.push(url.to_string());
            match answers.iter().find(|(u, _)| *u == url) {
                Some((_, Ok((status, body)))) => Ok((*status, body.as_bytes().to_vec())),
                Some((_, Err(why))) => Err(why.to_string()),
                None => Ok((404, Vec::new())),
            }
        }
    }

    #[test]
    fn the_next_proxy_is_asked_only_when_one_lacks_the_module() {
        let answers = [
            ("https://b/example.com/m/@v/list", Ok((200, "v1.0.0\n"))),
            ("https://c/example.com/m/@v/list", Ok((200, "v9.0.0\n"))),
            ("https://a/example.com/gone/@v/list", Ok((410, ""))),
        ];
        let mut asked = Vec::new();
        let found = first_listing(
            ["https://a", "https://b/", "https://c"],
            "example.com/m",
            proxies(&answers, &mut asked),
        );
        assert_eq!(found.unwrap(), ["v1.0.0"]);
        assert_eq!(
            asked,
            [
                "https://a/example.com/m/@v/list",
                "https://b/example.com/m/@v/list"
            ]
        );
        // No proxy has it: an unknown module, not an error.
        let mut asked = Vec::new();
        let found = first_listing(
            ["https://a", "https://b"],
            "example.com/gone",
            proxies(&answers, &mut asked),
        );
        assert_eq!(found.unwrap(), Vec::<String>::new());
        assert_eq!(asked.len(), 2);
    }

    #[test]
    fn any_other_failure_stops_at_the_proxy_that_failed() {
        let answers = [
            ("https://a/example.com/m/@v/list", Ok((500, "down"))),
            ("https://a/example.com/n/@v/list", Err("connection refused")),
            ("https://b/example.com/m/@v/list", Ok((200, "v1.0.0\n"))),
            ("https://b/example.com/n/@v/list", Ok((200, "v1.0.0\n"))),
        ];
        let mut asked = Vec::new();
        let error = first_listing(
            ["https://a", "https://b"],
            "example.com/m",
            proxies(&answers, &mut asked),
        )
        .unwrap_err();
        assert_eq!(error, "fetching https://a/example.com/m/@v/list: HTTP 500");
        let error = first_listing(
            ["https://a", "https://b"],
            "example.com/n",
            proxies(&answers, &mut asked),
        )
        .unwrap_err();
        assert_eq!(
            error,
            "fetching https://a/example.com/n/@v/list: connection refused"
        );
        assert_eq!(asked.len(), 2, "{asked:?}");
    }

    #[test]
    fn an_invalid_path_is_refused_before_any_request() {
        let mut asked = Vec::new();
        let error =
            first_listing(["https://a"], "../../admin", proxies(&[], &mut asked)).unwrap_err();
        assert_eq!(error, "invalid Go module path \"../../admin\"");
        assert!(asked.is_empty());
    }
}
