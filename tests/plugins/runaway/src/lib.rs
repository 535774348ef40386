//! A patcher that misbehaves on purpose, one way per call: `detect` loops forever, `plan`
//! allocates until it runs out of memory, `emit-commands` panics. The host must stop each one
//! with a one-line error naming the plugin, and survive.

use copa_plugin_sdk::{
    Finding, PackageClass, Plan, PluginInfo, Policy, Step, Target, register_patcher,
};

#[derive(Default)]
struct Runaway;

register_patcher!(Runaway);

impl copa_plugin_sdk::Patcher for Runaway {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "runaway".into(),
            version: "0.0.1".into(),
            package_class: PackageClass::Library,
            report_types: vec!["runaway-pkg".into()],
            purl_types: vec![],
            description: "misbehaves on purpose".into(),
        }
    }

    fn detect(&self) -> Result<Vec<Target>, String> {
        let mut counter: u64 = 0;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }

    fn plan(&self, _: Vec<Target>, _: Vec<Finding>, _: Policy) -> Result<Plan, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1; 16 << 20]);
            std::hint::black_box(&hoard);
        }
    }

    fn emit_commands(&self, _: Vec<Target>, _: Plan, _: Policy) -> Result<Vec<Step>, String> {
        panic!("emit-commands is broken on purpose")
    }
}
