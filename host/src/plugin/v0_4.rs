//! Contract 0.4 at the edge: its generated types to and from the host's model
//! ([`crate::model`]). The records have the same fields today, so one macro line per record
//! converts both ways; when a later contract changes a record, only its line here changes.
//! Older minors convert to 0.4's types first (see `v0_1`..`v0_3`) and then through here.

use super::bindings::exports::copa::plugin::patcher as wit;
use crate::model;

/// A value of one side as the other side's type.
pub(super) trait Convert<T> {
    fn convert(self) -> T;
}

macro_rules! unchanged {
    ($($t:ty),*) => {$(
        impl Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        }
    )*};
}
unchanged!(String, bool, u8, u32, (String, String));

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

/// Records with the same fields on both sides, converted field by field, both ways.
macro_rules! same_records {
    ($($wit:ident = $model:ident { $($field:ident),* $(,)? })*) => {$(
        impl Convert<model::$model> for wit::$wit {
            fn convert(self) -> model::$model {
                model::$model { $($field: self.$field.convert()),* }
            }
        }
        impl Convert<wit::$wit> for model::$model {
            fn convert(self) -> wit::$wit {
                wit::$wit { $($field: self.$field.convert()),* }
            }
        }
    )*};
}

/// Enums (and variants) with the same cases on both sides, both ways.
macro_rules! same_cases {
    ($($wit:ident = $model:ident { $($case:ident $(($inner:ident))?),* $(,)? })*) => {$(
        impl Convert<model::$model> for wit::$wit {
            fn convert(self) -> model::$model {
                match self {
                    $(wit::$wit::$case $(($inner))? => model::$model::$case $(($inner.convert()))?),*
                }
            }
        }
        impl Convert<wit::$wit> for model::$model {
            fn convert(self) -> wit::$wit {
                match self {
                    $(model::$model::$case $(($inner))? => wit::$wit::$case $(($inner.convert()))?),*
                }
            }
        }
    )*};
}

same_cases! {
    PackageClass = PackageClass { Os, Library }
    PatchLevel = PatchLevel { Patch, Minor, Major }
    OptionKind = OptionKind { Text, Flag, Number }
    Step = Step { Run(s), Fetch(s), Write(s), Tooling(s), Download(s) }
}

same_records! {
    PluginInfo = PluginInfo { name, version, package_class, report_types, purl_types, description }
    Index = IndexSpec { ecosystem, default_url, description }
    OptionSpec = OptionSpec { key, kind, repeatable, description }
    Manifest = Manifest { info, indexes, tooling, root_run_steps, options }
    InstalledPackage = InstalledPackage { name, version, location }
    Target = Target { id, kind, runtime_version, packages, unpatchable_reason, attributes }
    Finding = Finding {
        vulnerability_id, package_name, installed_version, fixed_versions, pkg_path,
        report_target, report_type, purl, severity, status,
    }
    Policy = Policy {
        library_patch_level, update_all, toolchain_patch_level, options, indexes,
    }
    Update = Update { target_id, package, from_version, to_version, at_least, fixes, notes }
    Skip = Skip { target_id, package, vulnerabilities, reason }
    PatchPlan = Plan { updates, skips }
    RunStep = RunStep {
        description, argv, env, workdir, user, index_ecosystem, exclude, updates,
    }
    FetchStep = FetchStep { description, ecosystem, name, version, placements, updates }
    Placement = Placement { member, path, mode, uid, gid, replace }
    WriteStep = WriteStep { description, path, contents, mode, uid, gid, updates }
    DownloadStep = DownloadStep { description, url, sha256, placements, updates }
    ToolingStep = ToolingStep {
        description, tooling, default_image, argv, env, workdir, index_ecosystem, copy_in,
        outputs, updates,
    }
    ToolingOutput = ToolingOutput { from, to, mode, uid, gid }
}

/// The model's values as 0.4's, for a call into a plugin (which takes them by reference).
pub(super) fn to_wit<M: Clone + Convert<W>, W>(values: &[M]) -> Vec<W> {
    values.iter().cloned().map(Convert::convert).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_survives_the_round_trip() {
        let plan = model::Plan {
            updates: vec![model::Update {
                target_id: "/app/venv".into(),
                package: "urllib3".into(),
                from_version: "1.26.4".into(),
                to_version: "1.26.18".into(),
                at_least: true,
                fixes: vec!["CVE-2023-45803".into()],
                notes: vec!["a note".into()],
            }],
            skips: vec![model::Skip {
                target_id: "/app/venv".into(),
                package: "pip".into(),
                vulnerabilities: vec!["CVE-1".into()],
                reason: "why".into(),
            }],
        };
        let there: wit::PatchPlan = plan.clone().convert();
        let back: model::Plan = there.convert();
        assert_eq!(back, plan);
    }

    #[test]
    fn steps_keep_their_kind_and_bytes() {
        let step = model::Step::Write(model::WriteStep {
            description: "d".into(),
            path: "/x".into(),
            contents: Some(vec![0, 1, 255]),
            mode: 0o644,
            uid: 1,
            gid: 2,
            updates: vec![3],
        });
        let there: wit::Step = step.clone().convert();
        assert!(
            matches!(&there, wit::Step::Write(w) if w.contents.as_deref() == Some(&[0, 1, 255][..]))
        );
        let back: model::Step = there.convert();
        assert_eq!(back, step);
    }
}
