//! Target frameworks (TFMs) and runtime identifiers (RIDs): which of a package's asset folders an
//! app can load, by NuGet's nearest-framework rule.
//!
//! For an app on net8.0, NuGet prefers the same framework family at the highest version not above
//! the app's (net8.0 > net7.0 > … > net5.0 > netcoreapp3.1 > … > netcoreapp1.0), then .NET
//! Standard at the highest version the app's runtime implements (netstandard2.1 > 2.0 > … > 1.0),
//! and last, only when nothing else fits, .NET Framework 4.6.1+ (the SDK's AssetTargetFallback,
//! which works for pure IL libraries and is what `dotnet restore` does with a warning).

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// .NET Core and .NET 5+ (`netcoreapp3.1`, `net8.0`).
    Core,
    /// .NET Standard (`netstandard2.0`).
    Standard,
    /// .NET Framework (`net45`, `net472`).
    Framework,
}

/// A parsed target framework.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framework {
    pub family: Family,
    /// (major, minor, patch) as NuGet writes it: net472 is 4.7.2.
    pub version: (u32, u32, u32),
    /// An OS-specific framework (`net8.0-windows`) needs that OS's workload; `None` is portable.
    pub platform: Option<String>,
}

impl Framework {
    /// Parses a short (`net8.0`, `netstandard2.0`, `net45`, `netcoreapp3.1`) or long
    /// (`.NETCoreApp,Version=v8.0`, `.NETStandard2.0`, `.NETFramework4.5`) framework name.
    pub fn parse(text: &str) -> Option<Framework> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        // Long form: ".NETCoreApp,Version=v8.0" (deps.json, runtimeconfig) or ".NETCoreApp3.1"
        // (nuspec groups).
        if let Some(rest) = lower.strip_prefix('.') {
            let (name, version) = match rest.split_once(",version=v") {
                Some((name, version)) => (name, version),
                None => {
                    let split = rest.find(|c: char| c.is_ascii_digit())?;
                    rest.split_at(split)
                }
            };
            // ".NETCoreApp,Version=v8.0/linux-x64" in runtimeTarget names.
            let version = version.split('/').next().unwrap_or_default();
            let family = match name {
                "netcoreapp" => Family::Core,
                "netstandard" => Family::Standard,
                "netframework" => Family::Framework,
                _ => return None,
            };
            return Some(Framework {
                family,
                version: dotted(version)?,
                platform: None,
            });
        }
        let (base, platform) = match lower.split_once('-') {
            Some((base, platform)) => (base, Some(platform.to_string())),
            None => (lower.as_str(), None),
        };
        if let Some(version) = base.strip_prefix("netstandard") {
            return Some(Framework {
                family: Family::Standard,
                version: dotted(version)?,
                platform,
            });
        }
        if let Some(version) = base.strip_prefix("netcoreapp") {
            return Some(Framework {
                family: Family::Core,
                version: dotted(version)?,
                platform,
            });
        }
        let version = base.strip_prefix("net")?;
        if version.contains('.') {
            // net5.0 and later are .NET (Core).
            let parsed = dotted(version)?;
            return (parsed.0 >= 5).then_some(Framework {
                family: Family::Core,
                version: parsed,
                platform,
            });
        }
        // net45, net472, net4721? .NET Framework writes one digit per part.
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || version.len() > 3 {
            return None;
        }
        let digit = |i: usize| version[i..].chars().next().and_then(|c| c.to_digit(10));
        Some(Framework {
            family: Family::Framework,
            version: (digit(0)?, digit(1).unwrap_or(0), digit(2).unwrap_or(0)),
            platform,
        })
    }

    /// The short folder name (`net8.0`, `netstandard2.0`, `netcoreapp3.1`, `net472`).
    pub fn short_name(&self) -> String {
        let (major, minor, patch) = self.version;
        let base = match self.family {
            Family::Core if major >= 5 => format!("net{major}.{minor}"),
            Family::Core => format!("netcoreapp{major}.{minor}"),
            Family::Standard => format!("netstandard{major}.{minor}"),
            Family::Framework if patch > 0 => format!("net{major}{minor}{patch}"),
            Family::Framework => format!("net{major}{minor}"),
        };
        match &self.platform {
            Some(platform) => format!("{base}-{platform}"),
            None => base,
        }
    }

    /// How well an asset for `self` fits an app on `app`: `None` when it cannot load there,
    /// otherwise a rank where smaller is nearer.
    pub fn rank_for(&self, app: &Framework) -> Option<(u8, Reverse3)> {
        if self.platform.is_some() || app.family != Family::Core {
            return None;
        }
        let within = |v: (u32, u32, u32)| (0u8, Reverse3(v));
        match self.family {
            Family::Core if self.version <= app.version => Some(within(self.version)),
            Family::Core => None,
            Family::Standard if self.version <= netstandard_of(app.version) => {
                Some((1, Reverse3(self.version)))
            }
            Family::Standard => None,
            // AssetTargetFallback: net461 and later .NET Framework builds, last resort.
            // (net461 and later projects use net45 libraries, so those come along too.)
            Family::Framework if app.version.0 >= 2 && self.version <= (4, 8, 1) => {
                Some((2, Reverse3(self.version)))
            }
            Family::Framework => None,
        }
    }

    /// Whether an asset for `self` would load on a newer .NET than `app`: the reason to tell a
    /// user why a package cannot be used as it is.
    pub fn needs_newer_than(&self, app: &Framework) -> bool {
        self.platform.is_none()
            && match self.family {
                Family::Core => self.version > app.version,
                Family::Standard => self.version > netstandard_of(app.version),
                Family::Framework => false,
            }
    }
}

impl fmt::Display for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short_name())
    }
}

/// Orders versions descending inside a rank tuple, so the highest compatible version is nearest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reverse3(pub (u32, u32, u32));

impl PartialOrd for Reverse3 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Reverse3 {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.cmp(&self.0)
    }
}

/// The highest .NET Standard a .NET (Core) version implements.
fn netstandard_of(netcore: (u32, u32, u32)) -> (u32, u32, u32) {
    match netcore {
        (1, 0, _) => (1, 6, 0),
        (1, _, _) => (1, 6, 0),
        (2, _, _) => (2, 0, 0),
        _ => (2, 1, 0),
    }
}

fn dotted(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().unwrap_or(Some(0))?;
    let patch = parts.next().unwrap_or(Some(0))?;
    Some((major, minor, patch))
}

/// Of `candidates` (framework folder names, e.g. the `net6.0` of `lib/net6.0/`), the one
/// nearest to `app`, or `None` when none can load there.
pub fn nearest<'a>(
    app: &Framework,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter_map(|name| Some((Framework::parse(name)?.rank_for(app)?, name)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, name)| name)
}

/// The RIDs whose `runtimes/<rid>/` assets a RID-specific app on `rid` can use, nearest first
/// (the runtime's own fallback graph for portable RIDs since .NET 8).
pub fn rid_fallbacks(rid: &str) -> Vec<String> {
    let mut chain = vec![rid.to_string()];
    const ARCHES: &[&str] = &[
        "x64",
        "x86",
        "arm",
        "arm64",
        "armel",
        "armv6",
        "loongarch64",
        "mips64",
        "ppc64le",
        "riscv64",
        "s390x",
    ];
    let (os, arch) = match rid.rsplit_once('-') {
        Some((os, arch)) if ARCHES.contains(&arch) => (os, Some(arch)),
        _ => (rid, None),
    };
    if os == "linux-musl" {
        // linux-musl-x64 -> linux-musl -> linux-x64 -> linux.
        if let Some(arch) = arch {
            chain.push("linux-musl".into());
            chain.push(format!("linux-{arch}"));
        }
        chain.push("linux".into());
    } else if os != rid {
        chain.push(os.to_string());
    }
    let unix = matches!(
        os,
        "linux" | "linux-musl" | "osx" | "freebsd" | "illumos" | "solaris"
    );
    if unix {
        if let Some(arch) = arch {
            chain.push(format!("unix-{arch}"));
        }
        chain.push("unix".into());
    }
    chain.push("any".into());
    chain.dedup();
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(text: &str) -> Framework {
        Framework::parse(text).unwrap_or_else(|| panic!("{text} parses"))
    }

    #[test]
    fn parses_short_and_long_names() {
        let cases = [
            ("net8.0", Family::Core, (8, 0, 0)),
            ("NET6.0", Family::Core, (6, 0, 0)),
            ("netcoreapp3.1", Family::Core, (3, 1, 0)),
            ("netstandard2.0", Family::Standard, (2, 0, 0)),
            ("netstandard1.3", Family::Standard, (1, 3, 0)),
            ("net45", Family::Framework, (4, 5, 0)),
            ("net472", Family::Framework, (4, 7, 2)),
            (".NETCoreApp,Version=v8.0", Family::Core, (8, 0, 0)),
            (
                ".NETCoreApp,Version=v8.0/linux-x64",
                Family::Core,
                (8, 0, 0),
            ),
            (".NETStandard,Version=v2.0", Family::Standard, (2, 0, 0)),
            (".NETStandard2.0", Family::Standard, (2, 0, 0)),
            (".NETCoreApp3.1", Family::Core, (3, 1, 0)),
            (".NETFramework4.5", Family::Framework, (4, 5, 0)),
        ];
        for (text, family, version) in cases {
            let parsed = fw(text);
            assert_eq!((parsed.family, parsed.version), (family, version), "{text}");
        }
        assert_eq!(
            fw("net8.0-windows7.0").platform.as_deref(),
            Some("windows7.0")
        );
        assert_eq!(fw("netcoreapp3.1").short_name(), "netcoreapp3.1");
        assert_eq!(fw(".NETCoreApp,Version=v8.0").short_name(), "net8.0");
        assert_eq!(fw("net472").short_name(), "net472");
        for bad in [
            "",
            "portable-net45+win8",
            "net4.0",
            "monoandroid10",
            "xyz",
            "net",
            "netx.y",
        ] {
            assert_eq!(Framework::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn nearest_framework_order_for_net8() {
        let app = fw("net8.0");
        // Removing the nearest each time walks the whole preference order.
        let mut folders = vec![
            "netstandard1.0",
            "net45",
            "netcoreapp3.1",
            "net8.0",
            "netstandard2.0",
            "net6.0",
            "net7.0",
            "netstandard2.1",
            "net5.0",
            "netcoreapp2.1",
            "net461",
            "net9.0",
            "net8.0-windows",
            "netstandard1.6",
            "net472",
        ];
        let mut order = Vec::new();
        while let Some(next) = nearest(&app, folders.iter().copied()) {
            order.push(next.to_string());
            folders.retain(|f| *f != next);
        }
        assert_eq!(
            order,
            [
                "net8.0",
                "net7.0",
                "net6.0",
                "net5.0",
                "netcoreapp3.1",
                "netcoreapp2.1",
                "netstandard2.1",
                "netstandard2.0",
                "netstandard1.6",
                "netstandard1.0",
                "net472",
                "net461",
                "net45",
            ]
        );
        // What is left can never load on net8.0.
        assert_eq!(folders, ["net9.0", "net8.0-windows"]);
    }

    #[test]
    fn nearest_for_older_apps() {
        let app = fw("netcoreapp3.1");
        assert_eq!(
            nearest(&app, ["net6.0", "netstandard2.1", "netstandard2.0"]),
            Some("netstandard2.1")
        );
        assert_eq!(nearest(&app, ["net6.0"]), None);
        assert!(fw("net6.0").needs_newer_than(&app));
        let app = fw("netcoreapp2.1");
        assert_eq!(
            nearest(&app, ["netstandard2.1", "netstandard2.0"]),
            Some("netstandard2.0")
        );
        assert!(fw("netstandard2.1").needs_newer_than(&app));
        assert!(!fw("net8.0-windows").needs_newer_than(&fw("net8.0")));
    }

    #[test]
    fn rid_fallback_chains() {
        assert_eq!(
            rid_fallbacks("linux-x64"),
            ["linux-x64", "linux", "unix-x64", "unix", "any"]
        );
        assert_eq!(
            rid_fallbacks("linux-musl-arm64"),
            [
                "linux-musl-arm64",
                "linux-musl",
                "linux-arm64",
                "linux",
                "unix-arm64",
                "unix",
                "any"
            ]
        );
        assert_eq!(rid_fallbacks("win-x64"), ["win-x64", "win", "any"]);
        assert_eq!(rid_fallbacks("linux"), ["linux", "unix", "any"]);
        assert_eq!(
            rid_fallbacks("linux-musl"),
            ["linux-musl", "linux", "unix", "any"]
        );
    }
}
