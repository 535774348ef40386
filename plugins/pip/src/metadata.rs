//! Parsing the small text formats pip leaves in an environment.

/// `Name` and `Version` from a core-metadata file (`METADATA` / `PKG-INFO`): RFC 822 headers up
/// to the first blank line.
pub fn name_and_version(metadata: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in metadata.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once(':') {
            match key.trim().to_ascii_lowercase().as_str() {
                "name" if name.is_none() => name = Some(value.trim().to_string()),
                "version" if version.is_none() => version = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Some((name?, version?))
}

/// The Python version a virtual environment was made with, from `pyvenv.cfg`
/// (`version = 3.11.2`, or `version_info = 3.11.2.final.0` from virtualenv).
pub fn venv_python_version(pyvenv_cfg: &str) -> Option<String> {
    let mut version_info = None;
    for line in pyvenv_cfg.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "version" => return Some(value.to_string()),
            "version_info" => {
                let release: Vec<&str> = value
                    .split('.')
                    .take_while(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
                    .collect();
                version_info = Some(release.join("."));
            }
            _ => {}
        }
    }
    version_info.filter(|v| !v.is_empty())
}

/// `(X, Y)` from a directory name `pythonX.Y`.
pub fn python_dir_version(dir_name: &str) -> Option<(u32, u32)> {
    let (major, minor) = dir_name.strip_prefix("python")?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_version_from_headers_only() {
        let text =
            "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.26.4\nSummary: x\n\nVersion: 9.9\n";
        assert_eq!(
            name_and_version(text),
            Some(("urllib3".into(), "1.26.4".into()))
        );
        assert_eq!(name_and_version("Name: x\n"), None);
    }

    #[test]
    fn reads_venv_versions() {
        assert_eq!(
            venv_python_version(
                "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n"
            ),
            Some("3.11.2".into())
        );
        assert_eq!(
            venv_python_version("home = /usr/bin\nversion_info = 3.12.1.final.0\n"),
            Some("3.12.1".into())
        );
        assert_eq!(venv_python_version("home = /usr/bin\n"), None);
    }

    #[test]
    fn parses_python_dirs() {
        assert_eq!(python_dir_version("python3.11"), Some((3, 11)));
        assert_eq!(python_dir_version("python3"), None);
        assert_eq!(python_dir_version("python3.x"), None);
    }
}
