//! Registry credentials as Docker keeps them: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with inline `auths`, a default `credsStore` helper and per-registry
//! `credHelpers` (`docker-credential-<name> get`, the registry host on stdin).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use serde_json::Value;

/// What to log in to a registry with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// Docker Hub's key in config.json, for the registry names that mean Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

fn config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(PathBuf::from(dir).join("config.json")),
        None => dirs::home_dir().map(|home| home.join(".docker/config.json")),
    }
}

/// The credentials for `registry` (a host with an optional port), from the user's Docker config;
/// anonymous when it names none.
pub fn for_registry(registry: &str) -> Result<Credentials> {
    let Some(path) = config_path() else {
        return Ok(Credentials::Anonymous);
    };
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credentials::Anonymous),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let config: Value = serde_json::from_slice(&text)
        .with_context(|| format!("parsing the Docker config {}", path.display()))?;
    from_config(&config, registry)
}

fn from_config(config: &Value, registry: &str) -> Result<Credentials> {
    let hub = matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    );
    let key_matches = |key: &str| {
        if hub {
            return key == DOCKER_HUB_KEY
                || matches!(host_of(key), "docker.io" | "index.docker.io");
        }
        host_of(key) == registry
    };
    let helper_key = if hub { DOCKER_HUB_KEY } else { registry };
    if let Some(helpers) = config["credHelpers"].as_object()
        && let Some(helper) = helpers
            .iter()
            .find(|(key, _)| key_matches(key))
            .and_then(|(_, helper)| helper.as_str())
    {
        return from_helper(helper, helper_key);
    }
    if let Some(auths) = config["auths"].as_object()
        && let Some(entry) = auths
            .iter()
            .find(|(key, _)| key_matches(key))
            .map(|(_, entry)| entry)
        && let Some(credentials) = from_auth_entry(entry, registry)?
    {
        return Ok(credentials);
    }
    match config["credsStore"].as_str() {
        Some(store) if !store.is_empty() => from_helper(store, helper_key),
        _ => Ok(Credentials::Anonymous),
    }
}

/// `https://host:5000/v1/` -> `host:5000`.
fn host_of(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

fn from_auth_entry(entry: &Value, registry: &str) -> Result<Option<Credentials>> {
    if entry["identitytoken"]
        .as_str()
        .is_some_and(|t| !t.is_empty())
    {
        bail!(
            "the Docker config holds an identity token for {registry}, which copa-host cannot use yet; log in with a username and password or a credential helper"
        );
    }
    if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| anyhow!("the Docker config's auth for {registry} is not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| anyhow!("the Docker config's auth for {registry} is not UTF-8"))?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            anyhow!("the Docker config's auth for {registry} is not username:password")
        })?;
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    match (entry["username"].as_str(), entry["password"].as_str()) {
        (Some(username), Some(password)) => Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        })),
        _ => Ok(None),
    }
}

/// Asks `docker-credential-<helper>` for the registry's credentials (its `get` protocol: the
/// server URL on stdin, `{"Username": ..., "Secret": ...}` on stdout).
fn from_helper(helper: &str, server: &str) -> Result<Credentials> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        bail!("the Docker config names an invalid credential helper {helper:?}");
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running the credential helper {program}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(server.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout);
        let said = said.trim();
        // Helpers answer "credentials not found in native keychain" for unknown servers.
        if said.contains("credentials not found") {
            return Ok(Credentials::Anonymous);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!(
            "the credential helper {program} failed for {server}: {}",
            if said.is_empty() { stderr.trim() } else { said }
        );
    }
    let answer: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("parsing what {program} answered"))?;
    let username = answer["Username"].as_str().unwrap_or_default();
    let secret = answer["Secret"].as_str().unwrap_or_default();
    Ok(match (username, secret) {
        (_, "") => Credentials::Anonymous,
        ("<token>", _) => bail!(
            "{program} answered an identity token for {server}, which copa-host cannot use yet"
        ),
        (username, password) => Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn basic(username: &str, password: &str) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn reads_inline_auths() {
        let config = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
            "127.0.0.1:5000": {"auth": "dXNlcjpwYTpzcw=="},
            "https://other.example:443/v2/": {"username": "u", "password": "p"},
            "tokens.example": {"identitytoken": "tok"},
        }});
        assert_eq!(
            from_config(&config, "docker.io").unwrap(),
            basic("hub", "secret")
        );
        assert_eq!(
            from_config(&config, "127.0.0.1:5000").unwrap(),
            basic("user", "pa:ss")
        );
        assert_eq!(
            from_config(&config, "other.example:443").unwrap(),
            basic("u", "p")
        );
        assert!(
            from_config(&config, "tokens.example")
                .unwrap_err()
                .to_string()
                .contains("identity token")
        );
        assert_eq!(
            from_config(&config, "127.0.0.1:5001").unwrap(),
            Credentials::Anonymous
        );
        assert!(
            from_config(&json!({"auths": {"r": {"auth": "***"}}}), "r")
                .unwrap_err()
                .to_string()
                .contains("not base64")
        );
    }

    #[test]
    fn refuses_helper_names_that_are_not_names() {
        let config = json!({"credHelpers": {"r.example": "../../bin/sh"}});
        assert!(
            from_config(&config, "r.example")
                .unwrap_err()
                .to_string()
                .contains("invalid credential helper")
        );
    }
}
