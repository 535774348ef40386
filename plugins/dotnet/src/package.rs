//! One NuGet package version as its .nupkg holds it, read from the feed over `http`: members,
//! nuspec, digests, and the versions inside its assemblies.

use std::rc::Rc;

use base64::Engine as _;
use copa_plugin_sdk::archive::Artifact;

use crate::assets::{self, Selection};
use crate::deps::{Asset, AssetKind};
use crate::feed;
use crate::framework::Framework;
use crate::nuspec::{self, Nuspec};
use crate::pe;

pub struct Contents {
    /// The id as the package spells it.
    pub id: String,
    pub version: String,
    pub members: Vec<String>,
    /// Lower-case hex SHA-512 of the .nupkg.
    pub sha512_hex: String,
    /// The .nupkg as read (none only in unit tests of what needs no member).
    package: Option<Rc<Artifact>>,
    nuspec: Nuspec,
}

impl Contents {
    pub fn load(name: &str, version: &str) -> Result<Self, String> {
        let package = feed::package(name, version)
            .map_err(|e| format!("downloading {name} {version}: {e}"))?;
        let members: Vec<String> = package.file_members().map(String::from).collect();
        // The nuspec sits at the root of the package, named after the id.
        let nuspec_member = members
            .iter()
            .find(|m| !m.contains('/') && m.to_ascii_lowercase().ends_with(".nuspec"))
            .ok_or_else(|| format!("{name} {version}: the .nupkg has no .nuspec"))?;
        let bytes = package
            .read_member(nuspec_member)
            .map_err(|e| e.to_string())?;
        let nuspec = nuspec::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| format!("{name} {version}: {e}"))?;
        Ok(Contents {
            id: nuspec.id.clone(),
            version: version.to_string(),
            sha512_hex: package.sha512.clone(),
            members,
            package: Some(package),
            nuspec,
        })
    }

    /// Where the .nupkg is, and the SHA-256 of its bytes as read: what a `download` step names.
    pub fn download(&self) -> Result<(&str, &str), String> {
        let package = self.package()?;
        Ok((&package.url, &package.sha256))
    }

    fn package(&self) -> Result<&Artifact, String> {
        self.package
            .as_deref()
            .ok_or_else(|| format!("{} {}: no package read", self.id, self.version))
    }

    pub fn select(&self, app: &Framework, rid: Option<&str>) -> Result<Selection, String> {
        let members: Vec<&str> = self.members.iter().map(String::as_str).collect();
        assets::select(&members, app, rid)
    }

    /// The dependency group for `app`: (id, range as written).
    pub fn dependencies(&self, app: &Framework) -> Vec<(String, String)> {
        self.nuspec
            .group_for(app)
            .map(|g| g.dependencies.clone())
            .unwrap_or_default()
    }

    /// deps.json's `sha512`: "sha512-" and the base64 of the digest bytes.
    pub fn sha512_base64(&self) -> Result<String, String> {
        let bytes = hex_bytes(&self.sha512_hex).ok_or_else(|| {
            format!(
                "{}: invalid sha512 {:?} from the host",
                self.id, self.sha512_hex
            )
        })?;
        Ok(format!(
            "sha512-{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// Fills in the assembly and file versions of managed assets from the files themselves,
    /// and the "0.0.0.0" file version the SDK writes for native files.
    pub fn read_versions(&self, assets: &mut [Asset]) -> Result<(), String> {
        for asset in assets.iter_mut() {
            let native =
                asset.kind == AssetKind::Native || asset.asset_type.as_deref() == Some("native");
            if asset.kind == AssetKind::Resource {
                continue;
            }
            let bytes = self
                .package()?
                .read_member(&asset.path)
                .map_err(|e| e.to_string())?;
            if pe::is_pe(&bytes) && !native {
                let versions = pe::read_versions(&bytes)
                    .map_err(|e| format!("{} {} {}: {e}", self.id, self.version, asset.path))?;
                asset.assembly_version = Some(versions.assembly.to_string());
                asset.file_version = versions.file.map(|v| v.to_string());
            } else if native {
                asset.file_version = Some("0.0.0.0".into());
            }
        }
        Ok(())
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 128 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_is_base64_of_the_digest_bytes() {
        // SHA-512 of the empty string.
        let hex = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
        let contents = Contents {
            id: "x".into(),
            version: "1.0.0".into(),
            members: vec![],
            sha512_hex: hex.into(),
            package: None,
            nuspec: Nuspec::default(),
        };
        assert_eq!(
            contents.sha512_base64().unwrap(),
            "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
        );
        assert_eq!(hex_bytes("zz"), None);
        assert_eq!(hex_bytes(&"g".repeat(128)), None);
    }
}
