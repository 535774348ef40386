//! Contract 0.4: its bindings, and its types to and from the host's model. Older minors convert
//! to 0.4's types first (see `v0_1`..`v0_3`) and then through here. 0.5 only added to 0.4, so
//! every 0.4 value has a model equivalent; what 0.4 could not say is filled with what the host
//! assumed of every 0.4 plugin:
//! - a `run` step may change any path (`changes` is "/");
//! - the CA bundle's variables follow from the step's `index-ecosystem`, by the host's table
//!   of the ecosystems it knew then ([`ca_variables`]);
//! - package names compare as the scanners' Python names do (PEP 503) for a plugin handling
//!   Python's report or PURL types, else ignoring ASCII case ([`package_names`]).
//!
//! The capabilities (image-fs, package-index, http, log) are the same as 0.5's.

use super::{State, unchanged_capabilities, unchanged_http, unchanged_package_index};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.4.0",
        world: "plugin",
    });
}

pub(super) use bindings::exports::copa::plugin::patcher as wit;
pub(super) use bindings::{Plugin, PluginPre};

use super::convert::{Convert, records_since_0_4};
use crate::model;

unchanged_capabilities!(
    bindings::copa::plugin::image_fs,
    bindings::copa::plugin::log
);
unchanged_package_index!(bindings::copa::plugin::package_index);
unchanged_http!(bindings::copa::plugin::http);
records_since_0_4!();

impl Convert<model::Manifest> for wit::Manifest {
    fn convert(self) -> model::Manifest {
        let info: model::PluginInfo = self.info.convert();
        model::Manifest {
            package_names: package_names(&info),
            info,
            indexes: self.indexes.convert(),
            tooling: self.tooling,
            root_run_steps: self.root_run_steps,
            options: self.options.convert(),
        }
    }
}

impl Convert<model::Step> for wit::Step {
    fn convert(self) -> model::Step {
        match self {
            wit::Step::Run(r) => model::Step::Run(model::RunStep {
                ca_variables: ca_variables(r.index_ecosystem.as_deref()),
                changes: vec!["/".into()],
                description: r.description,
                argv: r.argv,
                env: r.env,
                workdir: r.workdir,
                user: r.user,
                index_ecosystem: r.index_ecosystem,
                exclude: r.exclude,
                updates: r.updates,
            }),
            wit::Step::Tooling(t) => model::Step::Tooling(model::ToolingStep {
                ca_variables: ca_variables(t.index_ecosystem.as_deref()),
                description: t.description,
                tooling: t.tooling,
                default_image: t.default_image,
                argv: t.argv,
                env: t.env,
                workdir: t.workdir,
                index_ecosystem: t.index_ecosystem,
                copy_in: t.copy_in,
                outputs: t.outputs.convert(),
                updates: t.updates,
            }),
            wit::Step::Fetch(f) => model::Step::Fetch(f.convert()),
            wit::Step::Write(w) => model::Step::Write(w.convert()),
            wit::Step::Download(d) => model::Step::Download(d.convert()),
        }
    }
}

/// The variables through which the tools of the ecosystems the host knew before 0.5 trust the
/// run's CA bundle: frozen, as 0.4 plugins were built against it.
fn ca_variables(index_ecosystem: Option<&str>) -> Vec<String> {
    let names: &[&str] = match index_ecosystem {
        None | Some("deb") => &[],
        Some("pypi") => &["PIP_CERT"],
        Some("npm") => &["NODE_EXTRA_CA_CERTS", "npm_config_cafile"],
        Some(_) => &["SSL_CERT_FILE"],
    };
    names.iter().map(|n| n.to_string()).collect()
}

/// How the host compared package names before plugins declared it: Python's names by PEP 503,
/// the rest ignoring ASCII case.
pub(super) fn package_names(info: &model::PluginInfo) -> model::NameRule {
    let python = info.report_types.iter().any(|t| t == "python-pkg")
        || info.purl_types.iter().any(|t| t == "pypi");
    model::NameRule {
        ignore_case: true,
        separators: if python { "-_." } else { "" }.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_step(index_ecosystem: Option<&str>) -> wit::Step {
        wit::Step::Run(wit::RunStep {
            description: "d".into(),
            argv: vec!["pip".into()],
            env: Vec::new(),
            workdir: None,
            user: None,
            index_ecosystem: index_ecosystem.map(String::from),
            exclude: Vec::new(),
            updates: vec![0],
        })
    }

    #[test]
    fn a_run_step_of_0_4_may_change_anything_and_gets_the_ca_variables_of_its_time() {
        let model::Step::Run(pip) = run_step(Some("pypi")).convert() else {
            panic!("a run step stays one")
        };
        assert_eq!(pip.changes, ["/"]);
        assert_eq!(pip.ca_variables, ["PIP_CERT"]);
        let model::Step::Run(other) = run_step(Some("acme")).convert() else {
            panic!("a run step stays one")
        };
        assert_eq!(other.ca_variables, ["SSL_CERT_FILE"]);
        let model::Step::Run(offline) = run_step(None).convert() else {
            panic!("a run step stays one")
        };
        assert!(offline.ca_variables.is_empty());
    }
}
