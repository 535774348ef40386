//! Contract 0.2: its bindings, and the conversions between its types and the newest contract's.
//! 0.3 only added to 0.2, so every 0.2 value has a 0.3 equivalent, and a 0.3 value reaches a 0.2
//! plugin with the added fields left out:
//! - `policy.options` has no field in 0.2: a 0.2 plugin takes no options.
//! - `emit-commands` of 0.2 is called without the policy.
//! - `update.notes` is empty for a 0.2 plugin's updates.
//!
//! The capabilities (image-fs, package-index, log) are the same as 0.3's.

use super::{State, older_patcher_types, unchanged_capabilities, unchanged_package_index};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.2.0",
        world: "plugin",
    });
}

pub(super) use bindings::exports::copa::plugin::patcher::Guest;
pub(super) use bindings::{Plugin, PluginPre};

use super::bindings::exports::copa::plugin::patcher as new;
use bindings::exports::copa::plugin::patcher as old;

unchanged_capabilities!(
    bindings::copa::plugin::image_fs,
    bindings::copa::plugin::log
);
unchanged_package_index!(bindings::copa::plugin::package_index);
older_patcher_types!();

pub(super) fn policy_to(p: &new::Policy) -> old::Policy {
    old::Policy {
        library_patch_level: patch_level(p.library_patch_level),
        update_all: p.update_all,
        toolchain_patch_level: p.toolchain_patch_level.map(patch_level),
    }
}

pub(super) fn step_from(step: old::Step) -> new::Step {
    match step {
        old::Step::Run(r) => new::Step::Run(new::RunStep {
            description: r.description,
            argv: r.argv,
            env: r.env,
            workdir: r.workdir,
            user: r.user,
            index_ecosystem: r.index_ecosystem,
            exclude: r.exclude,
            updates: r.updates,
        }),
        old::Step::Fetch(f) => new::Step::Fetch(new::FetchStep {
            description: f.description,
            ecosystem: f.ecosystem,
            name: f.name,
            version: f.version,
            placements: f
                .placements
                .into_iter()
                .map(|p| new::Placement {
                    member: p.member,
                    path: p.path,
                    mode: p.mode,
                    uid: p.uid,
                    gid: p.gid,
                    replace: p.replace,
                })
                .collect(),
            updates: f.updates,
        }),
        old::Step::Write(w) => new::Step::Write(new::WriteStep {
            description: w.description,
            path: w.path,
            contents: w.contents,
            mode: w.mode,
            uid: w.uid,
            gid: w.gid,
            updates: w.updates,
        }),
        old::Step::Tooling(t) => new::Step::Tooling(new::ToolingStep {
            description: t.description,
            tooling: t.tooling,
            default_image: t.default_image,
            argv: t.argv,
            env: t.env,
            workdir: t.workdir,
            index_ecosystem: t.index_ecosystem,
            copy_in: t.copy_in,
            outputs: t
                .outputs
                .into_iter()
                .map(|o| new::ToolingOutput {
                    from: o.from,
                    to: o.to,
                    mode: o.mode,
                    uid: o.uid,
                    gid: o.gid,
                })
                .collect(),
            updates: t.updates,
        }),
    }
}
