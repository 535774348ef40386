//! The user's netrc file (`machine HOST login USER password PASS`), read as curl and pip read it,
//! for logins to the index origins the user names. Only `machine` entries count: a `default`
//! entry would hand one login to every index, so it is ignored.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Result, anyhow};

use crate::http::{Credential, Origin};
use crate::setting::Setting;

/// A netrc larger than this is not one a person wrote.
const MAX_BYTES: u64 = 1 << 20;

/// Where the netrc is, and whether the user named it (`--netrc-file`): then a file that cannot
/// be read fails the run; the default one (`$NETRC`, `~/.netrc`) only warns.
#[derive(Clone, Debug)]
pub struct NetrcFile {
    pub path: std::path::PathBuf,
    pub given: bool,
}

impl NetrcFile {
    /// `credentials` with the file's logins for `named` (the origins the user named); the file
    /// is read only when there is one.
    pub fn fill(
        &self,
        credentials: HashMap<Origin, Credential>,
        named: Vec<Origin>,
    ) -> Result<HashMap<Origin, Credential>> {
        if named.is_empty() {
            return Ok(credentials);
        }
        match Netrc::read(&self.path) {
            Ok(netrc) => Ok(netrc.fill(credentials, named)),
            Err(e) if !self.given => {
                tracing::warn!("{e:#}; its logins are not used");
                Ok(credentials)
            }
            Err(e) => Err(e.context(Setting::NetrcFile)),
        }
    }
}

#[derive(Default)]
pub struct Netrc {
    /// (host, login, password), in the file's order; the first entry for a host wins.
    machines: Vec<(String, String, String)>,
}

impl std::fmt::Debug for Netrc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Netrc({} machines)", self.machines.len())
    }
}

impl Netrc {
    pub fn read(path: &Path) -> Result<Netrc> {
        let file =
            std::fs::File::open(path).map_err(|e| anyhow!("netrc {}: {e}", path.display()))?;
        let mut bytes = Vec::new();
        file.take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| anyhow!("netrc {}: {e}", path.display()))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(anyhow!(
                "netrc {}: larger than {MAX_BYTES} bytes",
                path.display()
            ));
        }
        Ok(Netrc::parse(&String::from_utf8_lossy(&bytes)))
    }

    /// Whitespace-separated tokens, `"..."` quoting a token with spaces (curl's reading);
    /// `macdef` bodies run to the next empty line and are skipped.
    pub fn parse(text: &str) -> Netrc {
        let mut machines = Vec::new();
        let mut current: Option<(String, String, String)> = None;
        let mut tokens = Tokens::new(text);
        while let Some(token) = tokens.next() {
            match token.as_str() {
                "machine" | "default" => {
                    machines.extend(
                        current
                            .take()
                            .filter(|(_, l, p)| !l.is_empty() || !p.is_empty()),
                    );
                    if token == "machine" {
                        let host = tokens.next().unwrap_or_default().to_ascii_lowercase();
                        current = Some((host, String::new(), String::new()));
                    }
                }
                "login" => set(&mut current, &mut tokens, |m| &mut m.1),
                "password" => set(&mut current, &mut tokens, |m| &mut m.2),
                "account" => drop(tokens.next()),
                "macdef" => tokens.skip_macro(),
                _ => {}
            }
        }
        machines.extend(current.filter(|(_, l, p)| !l.is_empty() || !p.is_empty()));
        Netrc { machines }
    }

    /// The login for `host`, when the file has a `machine` entry for it.
    pub fn credential(&self, host: &str) -> Option<Credential> {
        self.machines
            .iter()
            .find(|(machine, _, _)| machine.eq_ignore_ascii_case(host))
            .map(|(_, login, password)| Credential::new(format!("{login}:{password}")))
    }

    /// `credentials` with a login from this file for each of `origins` that has none yet, when
    /// it is https or on this machine or its network: netrc knows hosts, not schemes or ports,
    /// and a login must not go over plain http to the network.
    pub fn fill(
        &self,
        mut credentials: HashMap<Origin, Credential>,
        origins: impl IntoIterator<Item = Origin>,
    ) -> HashMap<Origin, Credential> {
        for origin in origins {
            let private = origin.to_string().starts_with("https://") || origin.is_local();
            if private
                && !credentials.contains_key(&origin)
                && let Some(credential) = self.credential(origin.host())
            {
                credentials.insert(origin, credential);
            }
        }
        credentials
    }
}

/// Sets a field of the current `machine` entry from the next token; outside one, the token is
/// consumed and dropped (it belonged to a `default` entry).
fn set(
    current: &mut Option<(String, String, String)>,
    tokens: &mut Tokens<'_>,
    field: impl FnOnce(&mut (String, String, String)) -> &mut String,
) {
    let value = tokens.next().unwrap_or_default();
    if let Some(machine) = current.as_mut() {
        *field(machine) = value;
    }
}

struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Tokens { rest: text }
    }

    /// Skips a `macdef` line and the macro body after it, up to a blank line.
    fn skip_macro(&mut self) {
        let mut lines = self.rest.split_inclusive('\n');
        // The rest of the `macdef NAME` line.
        let mut skipped = lines.next().map_or(0, str::len);
        for line in lines {
            skipped += line.len();
            if line.trim().is_empty() {
                break;
            }
        }
        self.rest = &self.rest[skipped..];
    }
}

impl Iterator for Tokens<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        self.rest = self.rest.trim_start();
        if self.rest.is_empty() {
            return None;
        }
        if let Some(quoted) = self.rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let token = quoted[..end].to_string();
            self.rest = quoted.get(end + 1..).unwrap_or_default();
            return Some(token);
        }
        let end = self
            .rest
            .find(char::is_whitespace)
            .unwrap_or(self.rest.len());
        let token = self.rest[..end].to_string();
        self.rest = &self.rest[end..];
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(netrc: &Netrc, host: &str) -> Option<String> {
        netrc
            .credential(host)
            .and_then(|c| c.login().map(|(u, p)| format!("{u}:{p}")))
    }

    #[test]
    fn reads_machines_as_curl_does() {
        let netrc = Netrc::parse(
            "machine pypi.corp login me password s3cret\n\
             machine npm.corp\n  login \"a user\"\n  password \"p w\"\n\
             default login anyone password everywhere\n\
             machine pypi.corp login second password ignored\n",
        );
        assert_eq!(login(&netrc, "pypi.corp").as_deref(), Some("me:s3cret"));
        assert_eq!(login(&netrc, "PYPI.corp").as_deref(), Some("me:s3cret"));
        assert_eq!(login(&netrc, "npm.corp").as_deref(), Some("a user:p w"));
        // `default` hands a login to no one.
        assert_eq!(login(&netrc, "elsewhere"), None);
    }

    #[test]
    fn a_login_goes_over_https_or_to_this_machine_only() {
        let netrc =
            Netrc::parse("machine corp login me password pw\nmachine 10.0.0.5 login a password b");
        let plain = Origin::of("http://corp:8080").unwrap();
        let tls = Origin::of("https://corp").unwrap();
        let private = Origin::of("http://10.0.0.5:3141").unwrap();
        let filled = netrc.fill(
            HashMap::new(),
            [plain.clone(), tls.clone(), private.clone()],
        );
        assert!(!filled.contains_key(&plain));
        assert!(filled.contains_key(&tls) && filled.contains_key(&private));
        assert_eq!(
            format!("{netrc:?}"),
            "Netrc(2 machines)",
            "no password in Debug"
        );
    }

    #[test]
    fn macros_and_accounts_are_skipped() {
        let netrc = Netrc::parse(
            "macdef init\r\ncd /pub\r\nmachine evil login x password y\r\n  \r\n\
             machine a.corp account acct login u password p\r\n",
        );
        assert_eq!(login(&netrc, "evil"), None);
        assert_eq!(login(&netrc, "a.corp").as_deref(), Some("u:p"));
    }

    #[test]
    fn odd_files_give_nothing_and_never_panic() {
        for text in [
            "",
            "machine",
            "login",
            "\"",
            "machine \"unterminated",
            "password x",
        ] {
            let netrc = Netrc::parse(text);
            assert!(netrc.credential("x").is_none(), "{text:?}");
        }
    }

    #[test]
    fn fills_only_origins_without_a_credential() {
        let netrc = Netrc::parse("machine 127.0.0.1 login me password pw");
        let mine = Origin::of("http://127.0.0.1:8080/simple/").unwrap();
        let given = Origin::of("http://127.0.0.1:9090/").unwrap();
        let credentials = HashMap::from([(given.clone(), Credential::new("token".into()))]);
        let filled = netrc.fill(credentials, [mine.clone(), given.clone()]);
        assert_eq!(filled[&mine].login(), Some(("me", "pw")));
        assert_eq!(
            filled[&given].login(),
            None,
            "the user's own credential stays"
        );
    }

    #[test]
    fn a_huge_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        std::fs::write(&path, vec![b' '; (MAX_BYTES + 1) as usize]).unwrap();
        let err = Netrc::read(&path).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
    }
}
