//! Contract 0.5, the newest, at the edge: its generated types to and from the host's model
//! ([`crate::model`]). Its records have the model's fields, so one macro line per record
//! converts both ways; when a later contract changes a record, its older line moves to that
//! contract's module (as 0.4's `run-step` did to [`super::v0_4`]).

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.5.0",
        world: "plugin",
    });
}

pub(super) use bindings::copa::plugin::{http, image_fs, log, package_index};
pub(super) use bindings::exports::copa::plugin::patcher as wit;
pub(super) use bindings::{Plugin, PluginPre};

use super::convert::{Convert, records_since_0_4, same_cases, same_records};
use crate::model;

records_since_0_4!();

same_records! {
    NameRule = NameRule { ignore_case, separators }
    Manifest = Manifest { info, indexes, tooling, root_run_steps, options, package_names }
    RunStep = RunStep {
        description, argv, env, workdir, user, index_ecosystem, ca_variables, changes, exclude,
        updates,
    }
    ToolingStep = ToolingStep {
        description, tooling, default_image, argv, env, workdir, index_ecosystem, ca_variables,
        copy_in, outputs, updates,
    }
}

same_cases! {
    Step = Step { Run(s), Fetch(s), Write(s), Tooling(s), Download(s) }
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
        let write = model::Step::Write(model::WriteStep {
            description: "d".into(),
            path: "/x".into(),
            contents: Some(vec![0, 1, 255]),
            mode: 0o644,
            uid: 1,
            gid: 2,
            updates: vec![3],
        });
        let there: wit::Step = write.clone().convert();
        assert!(
            matches!(&there, wit::Step::Write(w) if w.contents.as_deref() == Some(&[0, 1, 255][..]))
        );
        let back: model::Step = there.convert();
        assert_eq!(back, write);
        let run = model::Step::Run(model::RunStep {
            description: "pip install".into(),
            argv: vec!["pip".into()],
            env: vec![("A".into(), "b".into())],
            workdir: None,
            user: Some("1000:1000".into()),
            index_ecosystem: Some("acme".into()),
            ca_variables: vec!["ACME_CA".into()],
            changes: vec!["/app/venv".into()],
            exclude: vec!["/root/.cache".into()],
            updates: vec![0],
        });
        let back: model::Step = Convert::<wit::Step>::convert(run.clone()).convert();
        assert_eq!(back, run);
    }
}
