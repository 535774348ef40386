//! Contract 0.3: its bindings, and the conversions between its types and 0.4's (which
//! [`super::v0_4`] takes on to the model).
//! 0.4 only added to 0.3, so every 0.3 value has a 0.4 equivalent, and a 0.4 value reaches a 0.3
//! plugin with the added fields left out:
//! - `info` stands for 0.4's `describe`: a 0.3 plugin declares no indexes, tooling, root steps
//!   or options, so none of the manifest's checks apply to it.
//! - `policy.indexes` has no field in 0.3 (a 0.3 plugin has no `http`).
//! - `update.at-least` is the ">=" prefix of `to-version`, 0.3's convention.
//!
//! The capabilities (image-fs, package-index, log) are the same as 0.4's.

use super::{
    State, older_patcher_types, older_steps, unchanged_capabilities, unchanged_package_index,
};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.3.0",
        world: "plugin",
    });
}

pub(super) use bindings::exports::copa::plugin::patcher::Guest;
pub(super) use bindings::{Plugin, PluginPre};

use super::v0_4::wit as new;
use bindings::exports::copa::plugin::patcher as old;

unchanged_capabilities!(
    bindings::copa::plugin::image_fs,
    bindings::copa::plugin::log
);
unchanged_package_index!(bindings::copa::plugin::package_index);
older_patcher_types!(notes);
older_steps!();

pub(super) fn policy_to(p: &new::Policy) -> old::Policy {
    old::Policy {
        library_patch_level: patch_level(p.library_patch_level),
        update_all: p.update_all,
        toolchain_patch_level: p.toolchain_patch_level.map(patch_level),
        options: p.options.clone(),
    }
}
