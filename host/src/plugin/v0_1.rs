//! Contract 0.1: its bindings, its capabilities, and the conversions between its types and the
//! newest contract's. 0.2 and 0.3 only added to 0.1, so every 0.1 value has a newest equivalent,
//! and a newest value reaches a 0.1 plugin with the added fields left out:
//! - `policy.update-all` has no field in 0.1; 0.1 OS plugins read "no findings" as "update
//!   everything", which is what the engine passes with `update-all`.
//! - `policy.options`, `policy.toolchain-patch-level` and `update.notes` have no field in 0.1,
//!   and 0.1's `emit-commands` is called without the policy (as in 0.2, see [`super::v0_2`]).
//! - `package-index` answers 0.1 plugins with the version, yanked flag and Requires-Python only.

use super::{State, unchanged_capabilities};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "plugin",
    });
}

pub(super) use bindings::exports::copa::plugin::patcher::Guest;
pub(super) use bindings::{Plugin, PluginPre};

use super::bindings::exports::copa::plugin::patcher as new;
use bindings::copa::plugin::package_index;
use bindings::exports::copa::plugin::patcher as old;

unchanged_capabilities!(
    bindings::copa::plugin::image_fs,
    bindings::copa::plugin::log
);

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

pub(super) fn plugin_info(info: old::PluginInfo) -> new::PluginInfo {
    new::PluginInfo {
        name: info.name,
        version: info.version,
        package_class: package_class(info.package_class),
        report_types: info.report_types,
        purl_types: info.purl_types,
        description: info.description,
    }
}

fn package_class(class: old::PackageClass) -> new::PackageClass {
    match class {
        old::PackageClass::Os => new::PackageClass::Os,
        old::PackageClass::Library => new::PackageClass::Library,
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

pub(super) fn policy_to(p: &new::Policy) -> old::Policy {
    old::Policy {
        library_patch_level: match p.library_patch_level {
            new::PatchLevel::Patch => old::PatchLevel::Patch,
            new::PatchLevel::Minor => old::PatchLevel::Minor,
            new::PatchLevel::Major => old::PatchLevel::Major,
        },
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
    let old::Step::Run(r) = step;
    new::Step::Run(new::RunStep {
        description: r.description,
        argv: r.argv,
        env: r.env,
        workdir: r.workdir,
        user: r.user,
        index_ecosystem: r.index_ecosystem,
        exclude: r.exclude,
        updates: r.updates,
    })
}
