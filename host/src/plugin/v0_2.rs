//! Contract 0.2: its bindings, and the conversions between its types and the newest contract's.
//! 0.3 only added to 0.2, so every 0.2 value has a 0.3 equivalent, and a 0.3 value reaches a 0.2
//! plugin with the added fields left out:
//! - `policy.options` has no field in 0.2: a 0.2 plugin takes no options.
//! - `emit-commands` of 0.2 is called without the policy.
//! - `update.notes` is empty for a 0.2 plugin's updates.
//!
//! The capabilities (image-fs, package-index, log) are the same as 0.3's.

use super::{State, unchanged_capabilities, unchanged_package_index};

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

pub(super) fn plugin_info(info: old::PluginInfo) -> new::PluginInfo {
    new::PluginInfo {
        name: info.name,
        version: info.version,
        package_class: match info.package_class {
            old::PackageClass::Os => new::PackageClass::Os,
            old::PackageClass::Library => new::PackageClass::Library,
        },
        report_types: info.report_types,
        purl_types: info.purl_types,
        description: info.description,
    }
}

pub(super) fn target_from(t: old::Target) -> new::Target {
    new::Target {
        id: t.id,
        kind: t.kind,
        runtime_version: t.runtime_version,
        packages: t
            .packages
            .into_iter()
            .map(|p| new::InstalledPackage {
                name: p.name,
                version: p.version,
                location: p.location,
            })
            .collect(),
        unpatchable_reason: t.unpatchable_reason,
        attributes: t.attributes,
    }
}

pub(super) fn target_to(t: &new::Target) -> old::Target {
    old::Target {
        id: t.id.clone(),
        kind: t.kind.clone(),
        runtime_version: t.runtime_version.clone(),
        packages: t
            .packages
            .iter()
            .map(|p| old::InstalledPackage {
                name: p.name.clone(),
                version: p.version.clone(),
                location: p.location.clone(),
            })
            .collect(),
        unpatchable_reason: t.unpatchable_reason.clone(),
        attributes: t.attributes.clone(),
    }
}

pub(super) fn finding_to(f: &new::Finding) -> old::Finding {
    old::Finding {
        vulnerability_id: f.vulnerability_id.clone(),
        package_name: f.package_name.clone(),
        installed_version: f.installed_version.clone(),
        fixed_versions: f.fixed_versions.clone(),
        pkg_path: f.pkg_path.clone(),
        report_target: f.report_target.clone(),
        report_type: f.report_type.clone(),
        purl: f.purl.clone(),
        severity: f.severity.clone(),
        status: f.status.clone(),
    }
}

fn patch_level(level: new::PatchLevel) -> old::PatchLevel {
    match level {
        new::PatchLevel::Patch => old::PatchLevel::Patch,
        new::PatchLevel::Minor => old::PatchLevel::Minor,
        new::PatchLevel::Major => old::PatchLevel::Major,
    }
}

pub(super) fn policy_to(p: &new::Policy) -> old::Policy {
    old::Policy {
        library_patch_level: patch_level(p.library_patch_level),
        update_all: p.update_all,
        toolchain_patch_level: p.toolchain_patch_level.map(patch_level),
    }
}

pub(super) fn plan_from(p: old::PatchPlan) -> new::PatchPlan {
    new::PatchPlan {
        updates: p
            .updates
            .into_iter()
            .map(|u| new::Update {
                target_id: u.target_id,
                package: u.package,
                from_version: u.from_version,
                to_version: u.to_version,
                fixes: u.fixes,
                notes: Vec::new(),
            })
            .collect(),
        skips: p
            .skips
            .into_iter()
            .map(|s| new::Skip {
                target_id: s.target_id,
                package: s.package,
                vulnerabilities: s.vulnerabilities,
                reason: s.reason,
            })
            .collect(),
    }
}

pub(super) fn plan_to(p: &new::PatchPlan) -> old::PatchPlan {
    old::PatchPlan {
        updates: p
            .updates
            .iter()
            .map(|u| old::Update {
                target_id: u.target_id.clone(),
                package: u.package.clone(),
                from_version: u.from_version.clone(),
                to_version: u.to_version.clone(),
                fixes: u.fixes.clone(),
            })
            .collect(),
        skips: p
            .skips
            .iter()
            .map(|s| old::Skip {
                target_id: s.target_id.clone(),
                package: s.package.clone(),
                vulnerabilities: s.vulnerabilities.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
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
