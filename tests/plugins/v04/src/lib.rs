//! A patcher written against the frozen 0.4 contract directly with wit-bindgen, as a third party
//! would have shipped it before 0.5. It exercises what a host speaking a later contract has to
//! convert: a manifest (an index, an option, a tooling kind, no root `run` steps), 0.4's imports
//! (image-fs, http, log), an update's `at-least` and notes, a skip, and `run`, `tooling` and
//! `write` steps in 0.4's form. It detects a tiny "package database" (/v04/installed: `name
//! version` lines) and plans every finding to at least its first fixed version.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.4.0",
    world: "plugin",
});

use copa::plugin::{http, image_fs, log};
use exports::copa::plugin::patcher::{
    Finding, Guest, Index, InstalledPackage, Manifest, OptionKind, OptionSpec, PackageClass,
    PatchPlan, PluginInfo, Policy, RunStep, Skip, Step, Target, ToolingOutput, ToolingStep, Update,
    WriteStep,
};

const DATABASE: &str = "/v04/installed";
const INDEX: &str = "v04-index";
/// A public URL, so the host accepts it as a default; the tests grant no network, so it is never
/// contacted.
const DEFAULT_INDEX_URL: &str = "https://index.v04.example/simple/";

struct V04;

impl Guest for V04 {
    fn describe() -> Manifest {
        Manifest {
            info: PluginInfo {
                name: "v04".into(),
                version: "0.4.0".into(),
                package_class: PackageClass::Library,
                report_types: vec!["v04".into()],
                purl_types: vec!["v04".into()],
                description: "contract 0.4 test patcher".into(),
            },
            indexes: vec![Index {
                ecosystem: INDEX.into(),
                default_url: DEFAULT_INDEX_URL.into(),
                description: "the v04 index".into(),
            }],
            tooling: vec!["v04-tool".into()],
            root_run_steps: false,
            options: vec![OptionSpec {
                key: "channel".into(),
                kind: OptionKind::Text,
                repeatable: true,
                description: "a release channel".into(),
            }],
        }
    }

    fn detect() -> Result<Vec<Target>, String> {
        let Ok(bytes) = image_fs::read_file(DATABASE) else {
            return Ok(Vec::new());
        };
        log::log(log::Level::Debug, &format!("reading {DATABASE}"));
        let packages = String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(name, version)| InstalledPackage {
                name: name.into(),
                version: version.into(),
                location: DATABASE.into(),
            })
            .collect();
        Ok(vec![Target {
            id: DATABASE.into(),
            kind: "v04-db".into(),
            runtime_version: None,
            packages,
            unpatchable_reason: None,
            attributes: vec![("format".into(), "lines".into())],
        }])
    }

    fn plan(
        targets: Vec<Target>,
        findings: Vec<Finding>,
        policy: Policy,
    ) -> Result<PatchPlan, String> {
        let target = targets.first().ok_or("no database")?;
        // What the plugin was given, echoed in each update's notes so the host can check it.
        let notes = vec![
            format!("options: {}", pairs(&policy.options)),
            format!("indexes: {}", pairs(&policy.indexes)),
            format!("index reached: {}", reach(&policy)),
        ];
        let mut plan = PatchPlan {
            updates: Vec::new(),
            skips: Vec::new(),
        };
        for finding in &findings {
            let Some(installed) = target
                .packages
                .iter()
                .find(|p| p.name == finding.package_name)
            else {
                continue;
            };
            match finding.fixed_versions.first() {
                Some(fixed) => plan.updates.push(Update {
                    target_id: target.id.clone(),
                    package: installed.name.clone(),
                    from_version: installed.version.clone(),
                    to_version: fixed.clone(),
                    at_least: true,
                    fixes: vec![finding.vulnerability_id.clone()],
                    notes: notes.clone(),
                }),
                None => plan.skips.push(Skip {
                    target_id: target.id.clone(),
                    package: installed.name.clone(),
                    vulnerabilities: vec![finding.vulnerability_id.clone()],
                    reason: "no fixed version published".into(),
                }),
            }
        }
        Ok(plan)
    }

    fn emit_commands(
        targets: Vec<Target>,
        plan: PatchPlan,
        policy: Policy,
    ) -> Result<Vec<Step>, String> {
        let target = targets.first().ok_or("no database")?;
        let all: Vec<u32> = (0..plan.updates.len() as u32).collect();
        Ok(vec![
            run_step(&plan, &policy, all.clone()),
            tooling_step(all.clone()),
            write_step(target, &plan, all),
        ])
    }
}

fn pairs(pairs: &[(String, String)]) -> String {
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    joined.join(",")
}

/// Asks the index in force over 0.4's `http`, so the host must keep linking that import; the
/// answer (an error when no origin is granted) crosses back as 0.4's error variant.
fn reach(policy: &Policy) -> String {
    let Some((_, url)) = policy.indexes.iter().find(|(e, _)| e == INDEX) else {
        return "no index".into();
    };
    let request = http::Request {
        method: http::Method::Head,
        url: url.clone(),
        headers: Vec::new(),
        max_body: 0,
    };
    match http::send(&request) {
        Ok(response) => format!("status {}", response.status),
        Err(http::Error::NotGranted(_)) => "not granted".into(),
        Err(other) => format!("{other:?}"),
    }
}

/// An install as an unprivileged user, told the index in force the way 0.4 asks: in `env`.
fn run_step(plan: &PatchPlan, policy: &Policy, updates: Vec<u32>) -> Step {
    let index_url = policy.indexes.iter().find(|(e, _)| e == INDEX);
    let specs = plan
        .updates
        .iter()
        .map(|u| format!("{}>={}", u.package, u.to_version));
    Step::Run(RunStep {
        description: "v04 install".into(),
        argv: ["v04-install".to_string()]
            .into_iter()
            .chain(specs)
            .collect(),
        env: index_url
            .map(|(_, url)| ("V04_INDEX_URL".to_string(), url.clone()))
            .into_iter()
            .collect(),
        workdir: Some("/v04".into()),
        user: Some("1000:1000".into()),
        index_ecosystem: Some(INDEX.into()),
        exclude: vec!["/v04/cache".into()],
        updates,
    })
}

fn tooling_step(updates: Vec<u32>) -> Step {
    Step::Tooling(ToolingStep {
        description: "v04 build".into(),
        tooling: "v04-tool".into(),
        default_image: "busybox:1".into(),
        argv: vec!["sh".into(), "-c".into(), "cp /v04/installed /out".into()],
        env: vec![("V04_TOOL".into(), "1".into())],
        workdir: Some("/src".into()),
        index_ecosystem: Some(INDEX.into()),
        copy_in: vec![DATABASE.into()],
        outputs: vec![ToolingOutput {
            from: "/out".into(),
            to: "/v04/out".into(),
            mode: Some(0o755),
            uid: 1000,
            gid: 1001,
        }],
        updates,
    })
}

/// The database as it reads after the plan: each updated package at its new version.
fn write_step(target: &Target, plan: &PatchPlan, updates: Vec<u32>) -> Step {
    let mut database = String::new();
    for package in &target.packages {
        let update = plan.updates.iter().find(|u| u.package == package.name);
        let version = update.map_or(&package.version, |u| &u.to_version);
        database.push_str(&format!("{} {version}\n", package.name));
    }
    Step::Write(WriteStep {
        description: "v04 record".into(),
        path: DATABASE.into(),
        contents: Some(database.into_bytes()),
        mode: 0o644,
        uid: 1000,
        gid: 1001,
        updates,
    })
}

export!(V04);
