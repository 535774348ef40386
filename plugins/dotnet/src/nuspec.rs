//! The parts of a `.nuspec` the patcher needs: the package's id and version, and its dependency
//! groups (per target framework). A nuspec is small, machine-written XML, so a tag scanner is
//! enough: elements are found by local name (namespaces vary with the nuspec schema version).

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nuspec {
    pub id: String,
    pub version: String,
    pub groups: Vec<DependencyGroup>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DependencyGroup {
    /// `None`: the group (or an old flat `<dependencies>` list) applies to every framework.
    pub target_framework: Option<String>,
    /// (id, version range as written).
    pub dependencies: Vec<(String, String)>,
}

/// One tag: local name, attributes, whether it is an end tag or closes itself (`<x ... />`).
struct Tag<'a> {
    name: &'a str,
    attributes: Vec<(&'a str, String)>,
    closing: bool,
    self_closing: bool,
}

fn tags(xml: &str) -> impl Iterator<Item = (Tag<'_>, &str)> {
    let mut rest = xml;
    std::iter::from_fn(move || {
        loop {
            let lt = rest.find('<')?;
            rest = &rest[lt + 1..];
            if let Some(after) = rest.strip_prefix("!--") {
                rest = after.find("-->").map_or("", |end| &after[end + 3..]);
                continue;
            }
            if rest.starts_with('?') || rest.starts_with('!') {
                continue;
            }
            let gt = rest.find('>')?;
            let inner = &rest[..gt];
            rest = &rest[gt + 1..];
            let closing = inner.starts_with('/');
            let self_closing = inner.ends_with('/');
            let inner = inner.trim_start_matches('/').trim_end_matches('/');
            let name_end = inner
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(inner.len());
            let qualified = &inner[..name_end];
            let name = qualified.rsplit(':').next().unwrap_or(qualified);
            let attributes = attributes(&inner[name_end..]);
            // The text up to the next tag, for elements such as <id>.
            let text = &rest[..rest.find('<').unwrap_or(rest.len())];
            return Some((
                Tag {
                    name,
                    attributes,
                    closing,
                    self_closing,
                },
                text,
            ));
        }
    })
}

fn attributes(mut s: &str) -> Vec<(&str, String)> {
    let mut found = Vec::new();
    loop {
        s = s.trim_start();
        let Some(eq) = s.find('=') else {
            return found;
        };
        let name = s[..eq].trim();
        let after = s[eq + 1..].trim_start();
        let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            return found;
        };
        let Some(end) = after[1..].find(quote) else {
            return found;
        };
        let name = name.rsplit(':').next().unwrap_or(name);
        found.push((name, unescape(&after[1..1 + end])));
        s = &after[end + 2..];
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn attribute(tag: &Tag, name: &str) -> Option<String> {
    tag.attributes
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

pub fn parse(xml: &str) -> Result<Nuspec, String> {
    let mut nuspec = Nuspec::default();
    let mut in_dependencies = false;
    let mut group: Option<DependencyGroup> = None;
    let mut flat = DependencyGroup::default();
    for (tag, text) in tags(xml) {
        match (tag.name, tag.closing) {
            ("id", false) if nuspec.id.is_empty() => nuspec.id = unescape(text.trim()),
            ("version", false) if nuspec.version.is_empty() => {
                nuspec.version = unescape(text.trim())
            }
            ("dependencies", false) => in_dependencies = true,
            ("dependencies", true) => in_dependencies = false,
            ("group", false) if in_dependencies => {
                let new = DependencyGroup {
                    target_framework: attribute(&tag, "targetFramework")
                        .filter(|tfm| !tfm.trim().is_empty()),
                    dependencies: Vec::new(),
                };
                // `<group targetFramework="x" />` closes itself: an empty group.
                if tag.self_closing {
                    nuspec.groups.push(new);
                } else {
                    group = Some(new);
                }
            }
            ("group", true) => {
                if let Some(done) = group.take() {
                    nuspec.groups.push(done);
                }
            }
            ("dependency", false) if in_dependencies => {
                let Some(id) = attribute(&tag, "id") else {
                    continue;
                };
                // No version means any version; NuGet reads it as "at least 0.0.0".
                let version = attribute(&tag, "version").unwrap_or_else(|| "0.0.0".into());
                match &mut group {
                    Some(group) => group.dependencies.push((id, version)),
                    None => flat.dependencies.push((id, version)),
                }
            }
            _ => {}
        }
    }
    if nuspec.id.is_empty() || nuspec.version.is_empty() {
        return Err("the nuspec has no <id> or <version>".into());
    }
    // The flat form predates groups; NuGet ignores it when groups are present.
    if nuspec.groups.is_empty() && !flat.dependencies.is_empty() {
        nuspec.groups.push(flat);
    }
    Ok(nuspec)
}

impl Nuspec {
    /// The dependency group NuGet uses for an app on `app` (nearest framework; a group for any
    /// framework when none fits); `None` means no dependencies.
    pub fn group_for(&self, app: &crate::framework::Framework) -> Option<&DependencyGroup> {
        let names: Vec<&str> = self
            .groups
            .iter()
            .filter_map(|g| g.target_framework.as_deref())
            .collect();
        match crate::framework::nearest(app, names.iter().copied()) {
            Some(best) => self
                .groups
                .iter()
                .find(|g| g.target_framework.as_deref() == Some(best)),
            None => self.groups.iter().find(|g| g.target_framework.is_none()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Framework;

    const NUSPEC: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata minClientVersion="2.12">
    <id>System.Text.Json</id>
    <version>8.0.4</version>
    <!-- <dependency id="Commented.Out" version="1.0" /> -->
    <description>Provides high-performance &amp; low-allocating types</description>
    <dependencies>
      <group targetFramework=".NETFramework4.6.2">
        <dependency id="Microsoft.Bcl.AsyncInterfaces" version="8.0.0" exclude="Build,Analyzers" />
        <dependency id="System.Buffers" version="4.5.1" exclude="Build,Analyzers" />
      </group>
      <group targetFramework="net6.0">
        <dependency id="System.Text.Encodings.Web" version="[8.0.0, )" />
      </group>
      <group targetFramework="net8.0" />
      <group targetFramework=".NETStandard2.0">
        <dependency id="System.Memory" version="4.5.5" />
      </group>
    </dependencies>
  </metadata>
</package>"#;

    #[test]
    fn reads_groups_and_picks_the_nearest() {
        let nuspec = parse(NUSPEC).unwrap();
        assert_eq!(nuspec.id, "System.Text.Json");
        assert_eq!(nuspec.version, "8.0.4");
        let frameworks: Vec<Option<&str>> = nuspec
            .groups
            .iter()
            .map(|g| g.target_framework.as_deref())
            .collect();
        assert_eq!(
            frameworks,
            [
                Some(".NETFramework4.6.2"),
                Some("net6.0"),
                Some("net8.0"),
                Some(".NETStandard2.0")
            ]
        );
        let app = |tfm: &str| Framework::parse(tfm).unwrap();
        assert!(
            nuspec
                .group_for(&app("net8.0"))
                .unwrap()
                .dependencies
                .is_empty()
        );
        assert_eq!(
            nuspec.group_for(&app("net7.0")).unwrap().dependencies,
            [(
                "System.Text.Encodings.Web".to_string(),
                "[8.0.0, )".to_string()
            )]
        );
        assert_eq!(
            nuspec
                .group_for(&app("netcoreapp3.1"))
                .unwrap()
                .dependencies,
            [("System.Memory".to_string(), "4.5.5".to_string())]
        );
    }

    #[test]
    fn flat_dependencies_and_missing_versions() {
        let xml = r#"<package><metadata><id>Old</id><version>1.0</version>
            <dependencies><dependency id="A" version="[1.0,2.0)"/><dependency id="B"/></dependencies>
            </metadata></package>"#;
        let nuspec = parse(xml).unwrap();
        assert_eq!(nuspec.groups.len(), 1);
        assert_eq!(nuspec.groups[0].target_framework, None);
        assert_eq!(
            nuspec.groups[0].dependencies,
            [
                ("A".into(), "[1.0,2.0)".into()),
                ("B".into(), "0.0.0".into())
            ]
        );
        let app = Framework::parse("net8.0").unwrap();
        assert_eq!(nuspec.group_for(&app).unwrap().dependencies.len(), 2);
        assert!(parse("<package><metadata><id>x</id></metadata></package>").is_err());
    }
}
