//! Contract 0.1: its bindings, its capabilities, and the conversions between its types and
//! 0.4's (which [`super::v0_4`] takes on to the model). 0.2 to 0.4 only added to 0.1, so every 0.1
//! value has a 0.4 equivalent, and a 0.4 value reaches a 0.1 plugin with the added fields left
//! out:
//! - `policy.update-all` has no field in 0.1; 0.1 OS plugins read "no findings" as "update
//!   everything", which is what the engine passes with `update-all`.
//! - `policy.options`, `policy.toolchain-patch-level` and `update.notes` have no field in 0.1,
//!   and 0.1's `emit-commands` is called without the policy (as in 0.2, see [`super::v0_2`]).
//! - `package-index` answers 0.1 plugins with the version, yanked flag and Requires-Python only.

use super::{State, older_patcher_types, unchanged_capabilities};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "plugin",
    });
}

pub(super) use bindings::exports::copa::plugin::patcher::Guest;
pub(super) use bindings::{Plugin, PluginPre};

use super::v0_4::wit as new;
use bindings::copa::plugin::package_index;
use bindings::exports::copa::plugin::patcher as old;

unchanged_capabilities!(
    bindings::copa::plugin::image_fs,
    bindings::copa::plugin::log
);
older_patcher_types!();

impl package_index::Host for State {
    fn versions(
        &mut self,
        ecosystem: String,
        name: String,
    ) -> Result<Vec<package_index::PackageVersion>, String> {
        let versions = self.caps()?.index.versions(&ecosystem, &name)?;
        Ok(versions
            .into_iter()
            .map(|v| package_index::PackageVersion {
                version: v.version,
                yanked: v.yanked,
                requires_python: v.requires_python,
            })
            .collect())
    }
}

pub(super) fn policy_to(p: &new::Policy) -> old::Policy {
    old::Policy {
        library_patch_level: patch_level(p.library_patch_level),
    }
}

pub(super) fn step_from(step: old::Step) -> new::Step {
    let old::Step::Run(r) = step;
    new::Step::Run(run_step_from(r))
}
