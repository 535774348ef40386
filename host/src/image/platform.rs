//! Platforms (`linux/arm64/v8`): which image of an index to patch, and whether this machine can
//! run its binaries.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::str::FromStr for Platform {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, architecture] if !os.is_empty() && !architecture.is_empty() => Ok(Platform {
                os: os.to_owned(),
                architecture: architecture.to_owned(),
                variant: None,
            }),
            [os, architecture, variant]
                if !os.is_empty() && !architecture.is_empty() && !variant.is_empty() =>
            {
                Ok(Platform {
                    os: os.to_owned(),
                    architecture: architecture.to_owned(),
                    variant: Some(variant.to_owned()),
                })
            }
            _ => bail!("platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/arm64"),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        self.variant.iter().try_for_each(|v| write!(f, "/{v}"))
    }
}

impl Platform {
    /// This machine's platform.
    pub fn host() -> Platform {
        Platform {
            os: "linux".to_owned(),
            architecture: super::oci::host_architecture().to_owned(),
            variant: None,
        }
    }

    /// The platform an image config declares.
    pub fn of_config(config: &[u8]) -> Option<Platform> {
        let config: Value = serde_json::from_slice(config).ok()?;
        Some(Platform {
            os: config["os"].as_str()?.to_owned(),
            architecture: config["architecture"].as_str()?.to_owned(),
            variant: config["variant"].as_str().map(str::to_owned),
        })
    }

    /// Whether this machine runs the platform's binaries natively (no emulation is assumed).
    pub fn runs_here(&self) -> bool {
        self.os == "linux" && self.architecture == super::oci::host_architecture()
    }

    /// Whether an index entry's `platform` is this one (a variant asked for must match).
    fn matches(&self, platform: &Value) -> bool {
        platform["os"] == self.os.as_str()
            && platform["architecture"] == self.architecture.as_str()
            && self
                .variant
                .as_deref()
                .is_none_or(|v| platform["variant"].as_str() == Some(v))
    }
}

/// The entry of an image index for `platform`: its position and manifest digest.
pub fn select<'a>(
    index: &'a Value,
    platform: &Platform,
    image: &dyn std::fmt::Display,
) -> Result<(usize, &'a str)> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .find(|(_, m)| platform.matches(&m["platform"]))
        .and_then(|(i, m)| Some((i, m["digest"].as_str()?)))
        .ok_or_else(|| {
            let offered: Vec<String> = index["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let p = &m["platform"];
                    Some(format!(
                        "{}/{}",
                        p["os"].as_str()?,
                        p["architecture"].as_str()?
                    ))
                })
                .collect();
            anyhow!(
                "image {image}: its image index has no {platform} image (it has {})",
                offered.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_selects_platforms() {
        let arm: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(arm.to_string(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v8".parse::<Platform>().is_err());
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]});
        assert_eq!(select(&index, &arm, &"x").unwrap(), (1, "sha256:b"));
        assert_eq!(
            select(&index, &"linux/arm64".parse().unwrap(), &"x").unwrap(),
            (1, "sha256:b")
        );
        let error = select(&index, &"linux/s390x".parse().unwrap(), &"x")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no linux/s390x image (it has linux/amd64, linux/arm64)"),
            "{error}"
        );
    }
}
