//! What a run lets each plugin do, from its manifest and the user's settings: the index URLs in
//! force and the origins they grant, the options it takes, and the steps it may emit. A plugin
//! of a contract before 0.4 declares nothing and is held only to what its contract allowed.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, bail};

use super::{OptionKind, Plugin, Step};
use crate::http::{Grants, Origin};
use crate::setting::Setting;

/// The index URLs in force for `plugin`, (ecosystem, URL) in the order to try: the user's
/// `--index ECOSYSTEM=URL`s for each index it declares, else the index's default URL.
pub fn index_urls(plugin: &Plugin, user: &[(String, String)]) -> Vec<(String, String)> {
    let Some(declared) = &plugin.declared else {
        return Vec::new();
    };
    declared
        .indexes
        .iter()
        .flat_map(|index| {
            let given: Vec<(String, String)> = user
                .iter()
                .filter(|(ecosystem, _)| *ecosystem == index.ecosystem)
                .cloned()
                .collect();
            if given.is_empty() {
                vec![(index.ecosystem.clone(), index.default_url.clone())]
            } else {
                given
            }
        })
        .collect()
}

/// The origins each plugin may reach: those of its index URLs in force; and among them, those
/// the user named. An `--index` for an ecosystem no loaded plugin declares would do nothing:
/// refused, naming those that exist.
pub fn origins(plugins: &[Plugin], user: &[(String, String)]) -> Result<Grants> {
    for (ecosystem, url) in user {
        if readers(plugins, ecosystem).next().is_none() {
            bail!(
                "{} {ecosystem}={url}: no loaded plugin reads an index {ecosystem} (indexes plugins declare: {})",
                Setting::Index,
                declared_ecosystems(plugins)
            );
        }
        // A file:// URL is a folder of this machine (see `folders`), anything else an origin.
        if url.starts_with("file://") {
            crate::http::folder_of(url)
                .map_err(|e| anyhow::anyhow!("{} {ecosystem}={e}", Setting::Index))?;
        } else {
            Origin::of(url)
                .map_err(|e| anyhow::anyhow!("{} {ecosystem}={url}: {e}", Setting::Index))?;
        }
    }
    let mut grants = Grants::default();
    for plugin in plugins {
        let origins_of = |urls: Vec<(String, String)>| {
            let mut origins: Vec<Origin> = Vec::new();
            for (_, url) in urls {
                // Checked above for the user's URLs and at load for the defaults.
                if let Ok(origin) = Origin::of(&url)
                    && !origins.contains(&origin)
                {
                    origins.push(origin);
                }
            }
            origins
        };
        let declared: Vec<&str> = plugin
            .declared
            .iter()
            .flat_map(|d| d.indexes.iter().map(|i| i.ecosystem.as_str()))
            .collect();
        let named: Vec<(String, String)> = user
            .iter()
            .filter(|(ecosystem, _)| declared.contains(&ecosystem.as_str()))
            .cloned()
            .collect();
        let name = plugin.info.name.clone();
        grants
            .origins
            .insert(name.clone(), origins_of(index_urls(plugin, user)));
        grants.user_named.insert(name, origins_of(named));
    }
    Ok(grants)
}

/// `grants` with the user's `--index-origin ECOSYSTEM=ORIGIN`s: one more origin for each plugin
/// that reads an index of that ecosystem, for what its index points to elsewhere (a CDN or
/// blob store its downloads redirect to). Only granted: no credential is ever sent there.
pub fn with_extra_origins(
    mut grants: Grants,
    plugins: &[Plugin],
    extra: &[(String, String)],
) -> Result<Grants> {
    for (ecosystem, url) in extra {
        let flag = format!("{} {ecosystem}={url}", Setting::IndexOrigin);
        if readers(plugins, ecosystem).next().is_none() {
            bail!(
                "{flag}: no loaded plugin reads an index {ecosystem} (indexes plugins declare: {})",
                declared_ecosystems(plugins)
            );
        }
        let origin = Origin::of(url).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        for plugin in readers(plugins, ecosystem) {
            let granted = grants.origins.entry(plugin.info.name.clone()).or_default();
            if !granted.contains(&origin) {
                granted.push(origin.clone());
            }
        }
    }
    Ok(grants)
}

/// The plugins whose manifests declare an index of `ecosystem`.
fn readers<'a>(plugins: &'a [Plugin], ecosystem: &'a str) -> impl Iterator<Item = &'a Plugin> {
    plugins.iter().filter(move |p| {
        p.declared
            .as_ref()
            .is_some_and(|d| d.indexes.iter().any(|i| i.ecosystem == ecosystem))
    })
}

/// The folders each plugin may read over `file://`: those of the user's `--index
/// ECOSYSTEM=file:///DIR` for the indexes it declares (a default URL is never a folder).
pub fn folders(
    plugins: &[Plugin],
    user: &[(String, String)],
) -> Result<HashMap<String, Vec<PathBuf>>> {
    let mut folders = HashMap::new();
    for plugin in plugins {
        let mut own: Vec<PathBuf> = Vec::new();
        for (_, url) in index_urls(plugin, user) {
            if url.starts_with("file://") {
                own.push(crate::http::folder_of(&url).map_err(anyhow::Error::msg)?);
            }
        }
        folders.insert(plugin.info.name.clone(), own);
    }
    Ok(folders)
}

fn declared_ecosystems(plugins: &[Plugin]) -> String {
    let all: Vec<String> = plugins
        .iter()
        .filter_map(|p| p.declared.as_ref().map(|d| (p, d)))
        .flat_map(|(p, d)| {
            d.indexes
                .iter()
                .map(move |i| format!("{} ({})", i.ecosystem, p.info.name))
        })
        .collect();
    if all.is_empty() {
        "none".to_owned()
    } else {
        all.join(", ")
    }
}

/// `--plugin-option PLUGIN:KEY=VALUE`s: each for a loaded plugin and, when the plugin declares
/// its options, a key it declares, given no more often than declared, with a value of its kind.
/// Errors never repeat the value, which may be a credential.
pub fn check_options(options: &[(String, String, String)], plugins: &[Plugin]) -> Result<()> {
    for (name, key, value) in options {
        let Some(plugin) = plugins.iter().find(|p| &p.info.name == name) else {
            let loaded: Vec<&str> = plugins.iter().map(|p| p.info.name.as_str()).collect();
            bail!(
                "{} {name}:{key}=...: no plugin named {name} is loaded (loaded: {})",
                Setting::PluginOption,
                loaded.join(", ")
            );
        };
        let Some(declared) = &plugin.declared else {
            continue;
        };
        let Some(spec) = declared.options.iter().find(|o| &o.key == key) else {
            let keys: Vec<&str> = declared.options.iter().map(|o| o.key.as_str()).collect();
            bail!(
                "{} {name}:{key}=...: plugin {name} has no option {key} (its options: {})",
                Setting::PluginOption,
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.join(", ")
                }
            );
        };
        let given = options
            .iter()
            .filter(|(n, k, _)| n == name && k == key)
            .count();
        if given > 1 && !spec.repeatable {
            bail!(
                "{} {name}:{key}: given {given} times, the plugin takes it once",
                Setting::PluginOption
            );
        }
        let fits = match spec.kind {
            OptionKind::Text => true,
            OptionKind::Flag => value == "true" || value == "false",
            OptionKind::Number => value.parse::<i64>().is_ok(),
        };
        if !fits {
            let kind = match spec.kind {
                OptionKind::Text => "text",
                OptionKind::Flag => "true or false",
                OptionKind::Number => "a whole number",
            };
            bail!(
                "{} {name}:{key}=...: the value must be {kind}",
                Setting::PluginOption
            );
        }
    }
    Ok(())
}

/// Refuses steps that name updates the plan does not have (any contract), and steps that ask
/// for more than the plugin's manifest declares: a `run` step as root when it declares none, a
/// tooling kind it does not declare. `download` URLs are held to the plugin's origins when they
/// are fetched.
pub fn check_steps(plugin: &Plugin, steps: &[Step], updates: usize) -> Result<()> {
    let name = &plugin.info.name;
    for step in steps {
        if let Some(bad) = crate::exec::step_updates(step)
            .iter()
            .find(|&&u| u as usize >= updates)
        {
            bail!(
                "plugin {name}: step {:?} names update {bad}, and the plan has {updates}",
                crate::exec::step_description(step)
            );
        }
        if let Step::Run(run) = step
            && let Some(relative) = run.changes.iter().find(|p| !p.starts_with('/'))
        {
            bail!(
                "plugin {name}: step {:?} declares it changes {relative:?}; a step declares absolute paths",
                run.description
            );
        }
    }
    let Some(declared) = &plugin.declared else {
        return Ok(());
    };
    for step in steps {
        match step {
            Step::Run(run) if !declared.root_run_steps && runs_as_root(run.user.as_deref()) => {
                bail!(
                    "plugin {name}: step {:?} runs as root (or as a user named other than by number), which its manifest does not declare (root-run-steps)",
                    run.description
                );
            }
            Step::Tooling(tooling) if !declared.tooling.contains(&tooling.tooling) => {
                bail!(
                    "plugin {name}: step {:?} asks for tooling {}, which its manifest does not declare (declared: {})",
                    tooling.description,
                    tooling.tooling,
                    if declared.tooling.is_empty() {
                        "none".to_owned()
                    } else {
                        declared.tooling.join(", ")
                    }
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a step may run as root: no user, uid 0 however written, or a name. A name could be
/// uid 0 in the image's /etc/passwd, so a plugin without root steps names its user by number.
fn runs_as_root(user: Option<&str>) -> bool {
    match user {
        None => true,
        Some(user) => {
            let name = user.split(':').next().unwrap_or_default();
            !matches!(name.parse::<u32>(), Ok(uid) if uid != 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_no_user_or_uid_zero_or_root() {
        for user in [
            None,
            Some("0"),
            Some("0:0"),
            Some("root"),
            Some("root:1000"),
            Some(""),
            Some("00"),
            Some("000:1"),
            Some("app:app"),
        ] {
            assert!(runs_as_root(user), "{user:?}");
        }
        for user in [Some("1000"), Some("1000:0"), Some("10")] {
            assert!(!runs_as_root(user), "{user:?}");
        }
    }
}
