//! Builds the built-in plugins for wasm32-wasip2 and hands their paths to the host crate, which
//! embeds them: `cargo install --path host` yields one self-contained binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in plugins: crate name under plugins/ and the wasm file it produces.
const BUILTIN: &[(&str, &str)] = &[
    ("pip", "copa_plugin_pip.wasm"),
    ("apt", "copa_plugin_apt.wasm"),
    ("apk", "copa_plugin_apk.wasm"),
    ("rpm", "copa_plugin_rpm.wasm"),
    ("dotnet", "copa_plugin_dotnet.wasm"),
    ("npm", "copa_plugin_npm.wasm"),
    ("go", "copa_plugin_go.wasm"),
];
/// Folders whose every crate is a plugin built for the tests only (not embedded): test plugins
/// and the SDK's examples. Found by folder, not named here, so the host never names an example's
/// ecosystem. Their paths reach the tests as `COPA_TEST_PLUGIN_<NAME>` (`copa-plugin-<name>`).
const TEST_ONLY_DIRS: &[&str] = &["tests/plugins", "sdk/examples"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    for dir in ["wit", "sdk", "plugins", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("Cargo.lock").display()
    );

    require_wasm_target();

    // A separate target directory: the outer cargo holds the lock on ours.
    let target_dir = root.join("target").join("plugins");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    let test_only = test_only_plugins(&root);
    for name in BUILTIN
        .iter()
        .map(|(name, _)| *name)
        .chain(test_only.iter().map(String::as_str))
    {
        cmd.args(["-p", &format!("copa-plugin-{name}")]);
    }
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the built-in plugins");
    assert!(
        status.success(),
        "building the built-in plugins for wasm32-wasip2 failed"
    );

    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let mut generated = String::from(
        "/// Built-in plugins: (name, component bytes).\npub const BUILTIN_PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for (name, file) in BUILTIN {
        let wasm = target_dir.join("wasm32-wasip2/release").join(file);
        let copy = out_dir.join(file);
        std::fs::copy(&wasm, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", wasm.display()));
        generated.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            copy.display().to_string()
        ));
    }
    generated.push_str("];\n");
    for name in &test_only {
        let file = format!("copa_plugin_{}.wasm", name.replace('-', "_"));
        let wasm = target_dir.join("wasm32-wasip2/release").join(file);
        println!(
            "cargo:rustc-env=COPA_TEST_PLUGIN_{}={}",
            name.to_uppercase().replace('-', "_"),
            wasm.display()
        );
    }
    std::fs::write(out_dir.join("builtin_plugins.rs"), generated).unwrap();
}

/// The `<name>` of every `copa-plugin-<name>` crate in the test-only folders, sorted.
fn test_only_plugins(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for dir in TEST_ONLY_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let manifest = entry.path().join("Cargo.toml");
            let Ok(text) = std::fs::read_to_string(&manifest) else {
                continue;
            };
            let name = text.lines().find_map(|line| {
                let value = line.trim().strip_prefix("name")?.trim().strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            });
            if let Some(plugin) = name.as_deref().and_then(|n| n.strip_prefix("copa-plugin-")) {
                names.push(plugin.to_string());
            }
        }
    }
    names.sort();
    names
}

fn require_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !Path::new(&sysroot)
        .join("lib/rustlib/wasm32-wasip2")
        .exists()
    {
        panic!(
            "the wasm32-wasip2 target is not installed; the built-in plugins need it. Install it with:\n\n    rustup target add wasm32-wasip2\n"
        );
    }
}
