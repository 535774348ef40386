//! The settings of a run, as messages name them without knowing how a front end spells them.
//!
//! A message that names a setting formats a [`Setting`]: `format!("timed out after {t} ({})",
//! Setting::Timeout)`. Without a front end it reads as words ("the step time limit"); a front end
//! installs its own spelling once, before the run, with [`spell_with`] (the command line: its
//! flags). The spelling is installed rather than applied where errors are printed because many
//! messages leave the library as plain text: a step's failure, an HTTP error a plugin reads and
//! quotes, a skip reason in the summary and the VEX document, a logged warning.

use std::fmt;
use std::sync::OnceLock;

/// A setting a message may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The CA certificate file trusted for indexes and registries.
    CaCert,
    /// Write the image although some updates failed.
    IgnoreErrors,
    /// The platforms of a multi-platform image to patch.
    Platform,
    /// The classes of packages to patch (os, library).
    PkgTypes,
    /// The vulnerability report.
    Report,
    /// Where the VEX document goes.
    Vex,
    /// The time limit of each step.
    Timeout,
    /// A credential for an index origin.
    IndexCredential,
    /// An index URL of an ecosystem.
    Index,
    /// One more origin for the plugins reading an ecosystem's index.
    IndexOrigin,
    /// An option for a plugin.
    PluginOption,
    /// Where the patched image goes.
    OutputImage,
    /// Push the patched image to the registry.
    Push,
    /// The report's format or scanner plugin.
    Scanner,
    /// The image of a kind of tooling container.
    ToolingImage,
    /// The netrc file whose logins serve the indexes.
    NetrcFile,
}

/// How a front end spells each setting.
pub type Spelling = fn(Setting) -> &'static str;

static SPELLING: OnceLock<Spelling> = OnceLock::new();

/// Makes every message from now on name settings as `spelling` does. The first spelling
/// installed stays: messages of one run never mix two.
pub fn spell_with(spelling: Spelling) {
    let _ = SPELLING.set(spelling);
}

impl Setting {
    /// Every setting, for the front end's test that it spells each one.
    #[cfg(test)]
    pub const ALL: [Setting; 16] = [
        Setting::CaCert,
        Setting::IgnoreErrors,
        Setting::Platform,
        Setting::PkgTypes,
        Setting::Report,
        Setting::Vex,
        Setting::Timeout,
        Setting::IndexCredential,
        Setting::Index,
        Setting::IndexOrigin,
        Setting::PluginOption,
        Setting::OutputImage,
        Setting::Push,
        Setting::Scanner,
        Setting::ToolingImage,
        Setting::NetrcFile,
    ];

    /// The setting in words, for messages read without a front end.
    pub fn words(self) -> &'static str {
        match self {
            Setting::CaCert => "the CA certificate file",
            Setting::IgnoreErrors => "the ignore-errors setting",
            Setting::Platform => "the platform setting",
            Setting::PkgTypes => "the package types setting",
            Setting::Report => "the report setting",
            Setting::Vex => "the VEX output",
            Setting::Timeout => "the step time limit",
            Setting::IndexCredential => "the index credential setting",
            Setting::Index => "the index setting",
            Setting::IndexOrigin => "the index origin setting",
            Setting::PluginOption => "the plugin option setting",
            Setting::OutputImage => "the output image setting",
            Setting::Push => "the push setting",
            Setting::Scanner => "the scanner setting",
            Setting::ToolingImage => "the tooling image setting",
            Setting::NetrcFile => "the netrc file",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spell = SPELLING.get().copied().unwrap_or(Setting::words);
        f.write_str(spell(*self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The library's tests install no spelling, so messages read as words here.
    #[test]
    fn a_setting_reads_as_words_without_a_front_end() {
        assert_eq!(
            format!("timed out after 1 s ({})", Setting::Timeout),
            "timed out after 1 s (the step time limit)"
        );
    }
}
