//! Converting a contract's generated types to and from the host's model ([`crate::model`]):
//! the trait, and macros that stamp out a conversion per record. `wit::` in the macros names the
//! generated patcher interface of the module that invokes them (`v0_4`, `v0_5`).

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

/// The model's values as a contract's, for a call into a plugin (which takes them by reference).
pub(super) fn to_wit<M: Clone + Convert<W>, W>(values: &[M]) -> Vec<W> {
    values.iter().cloned().map(Convert::convert).collect()
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
pub(super) use same_records;

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
pub(super) use same_cases;

/// The records 0.4 and every later minor share unchanged with the model.
macro_rules! records_since_0_4 {
    () => {
        $crate::plugin::convert::same_cases! {
            PackageClass = PackageClass { Os, Library }
            PatchLevel = PatchLevel { Patch, Minor, Major }
            OptionKind = OptionKind { Text, Flag, Number }
        }

        $crate::plugin::convert::same_records! {
            PluginInfo = PluginInfo {
                name, version, package_class, report_types, purl_types, description,
            }
            Index = IndexSpec { ecosystem, default_url, description }
            OptionSpec = OptionSpec { key, kind, repeatable, description }
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
            FetchStep = FetchStep { description, ecosystem, name, version, placements, updates }
            Placement = Placement { member, path, mode, uid, gid, replace }
            WriteStep = WriteStep { description, path, contents, mode, uid, gid, updates }
            DownloadStep = DownloadStep { description, url, sha256, placements, updates }
            ToolingOutput = ToolingOutput { from, to, mode, uid, gid }
        }
    };
}
pub(super) use records_since_0_4;
