//! Test helpers shared by the integration tests: fixture filesystems as layer tars, a PEP 503
//! package index on 127.0.0.1, OCI layouts written from scratch.
#![allow(dead_code)]

pub mod debian;
pub mod docker;
pub mod dotnet;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

/// A file, directory or symlink of a fixture filesystem.
pub enum Node<'a> {
    Dir(&'a str),
    /// A directory owned by `uid` (and a group of the same number).
    OwnedDir(&'a str, u64),
    File(&'a str, &'a str),
    Link(&'a str, &'a str),
}

/// An uncompressed layer tar of `nodes`.
pub fn layer_tar(nodes: &[Node]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for node in nodes {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        match node {
            Node::Dir(path) | Node::OwnedDir(path, _) => {
                let uid = if let Node::OwnedDir(_, uid) = node {
                    *uid
                } else {
                    0
                };
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                header.set_uid(uid);
                header.set_gid(uid);
                builder
                    .append_data(
                        &mut header,
                        format!("{}/", path.trim_end_matches('/')),
                        std::io::empty(),
                    )
                    .unwrap();
            }
            Node::File(path, content) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(content.len() as u64);
                builder
                    .append_data(&mut header, path, content.as_bytes())
                    .unwrap();
            }
            Node::Link(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

pub fn metadata(name: &str, version: &str) -> String {
    format!(
        "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: fixture\n\nLong description.\n"
    )
}

/// A Debian-like Python image: python3.11 with Debian's pip, packages installed system-wide in
/// /usr/local/lib/python3.11/dist-packages and in a venv at /app/venv.
pub fn python_image_tar() -> Vec<u8> {
    let system = "usr/local/lib/python3.11/dist-packages";
    let venv = "app/venv/lib/python3.11/site-packages";
    let packages = [
        ("urllib3", "1.26.4"),
        ("requests", "2.25.1"),
        ("certifi", "2020.12.5"),
        ("Jinja2", "2.11.2"),
        ("idna", "2.10"),
    ];
    let mut owned: Vec<(String, String)> = Vec::new();
    for site in [system, venv] {
        for (name, version) in packages {
            owned.push((
                format!("{site}/{name}-{version}.dist-info/METADATA"),
                metadata(name, version),
            ));
            owned.push((
                format!("{site}/{}/__init__.py", name.to_lowercase()),
                String::new(),
            ));
        }
    }
    owned.push((
        format!("{venv}/pip-23.0.1.dist-info/METADATA"),
        metadata("pip", "23.0.1"),
    ));
    owned.push((format!("{venv}/pip/__init__.py"), String::new()));
    let mut nodes = vec![
        Node::Dir("usr"),
        Node::Dir("usr/bin"),
        Node::File("usr/bin/python3.11", "ELF"),
        Node::Link("usr/bin/python3", "python3.11"),
        Node::Dir("usr/lib/python3.11"),
        Node::File("usr/lib/python3.11/os.py", ""),
        Node::File("usr/lib/python3/dist-packages/pip/__init__.py", ""),
        Node::File(
            "usr/lib/python3/dist-packages/pip-23.0.1.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: pip\nVersion: 23.0.1\n",
        ),
        Node::Link("lib", "usr/lib"),
        Node::Link("bin", "usr/bin"),
        Node::File(
            "app/venv/pyvenv.cfg",
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
        ),
        Node::Link("app/venv/bin/python", "/usr/bin/python3"),
        Node::Link("app/venv/bin/python3", "python"),
        Node::File("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
    ];
    nodes.extend(owned.iter().map(|(p, c)| Node::File(p, c)));
    layer_tar(&nodes)
}

/// A package index on 127.0.0.1 serving PEP 503 HTML pages: `(project, [(filename, attrs)])`,
/// where attrs is raw anchor attributes such as `data-yanked=""`.
pub struct Index {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
}

pub fn serve_index(projects: Vec<(&'static str, Vec<(String, &'static str)>)>) -> Index {
    serve_index_with_files(projects, None)
}

/// Like [`serve_index`], and also serves the files in `files` under `/files/` (with their real
/// sha256 in the links, as pip checks it); links to files not there answer 404.
pub fn serve_index_with_files(
    projects: Vec<(&'static str, Vec<(String, &'static str)>)>,
    files: Option<std::path::PathBuf>,
) -> Index {
    serve_index_requiring(projects, files, None)
}

/// Like [`serve_index_with_files`], answering 401 to every request whose `Authorization` header
/// is not `authorization` (when given), as a private mirror does.
pub fn serve_index_requiring(
    projects: Vec<(&'static str, Vec<(String, &'static str)>)>,
    files: Option<std::path::PathBuf>,
    authorization: Option<String>,
) -> Index {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/simple/", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        // Bounded: a test needs a few dozen requests at most.
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let Some((path, sent)) = request_head(&stream) else {
                continue;
            };
            if authorization.as_ref().is_some_and(|wanted| *wanted != sent) {
                let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"mirror\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                continue;
            }
            let local = |name: &str| {
                files
                    .as_ref()
                    .map(|dir| dir.join(name))
                    .filter(|p| p.is_file())
            };
            if let Some(name) = path.strip_prefix("/files/") {
                let response = match local(name).and_then(|p| std::fs::read(p).ok()) {
                    Some(bytes) => {
                        let mut response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len()).into_bytes();
                        response.extend(bytes);
                        response
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = stream.write_all(&response);
                continue;
            }
            let project = path.trim_start_matches("/simple/").trim_end_matches('/');
            let response = match projects.iter().find(|(name, _)| *name == project) {
                Some((_, project_files)) => {
                    let anchors: String = project_files
                        .iter()
                        .map(|(file, attrs)| {
                            let hash = local(file)
                                .map(|p| {
                                    format!(
                                        "#sha256={}",
                                        hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
                                    )
                                })
                                .unwrap_or_default();
                            format!(
                                "<a href=\"../../files/{file}{hash}\" {attrs}>{file}</a><br/>\n"
                            )
                        })
                        .collect();
                    let body = format!(
                        "<!DOCTYPE html><html><body><h1>Links for {project}</h1>\n{anchors}</body></html>\n"
                    );
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                }
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    Index { url, requests }
}

/// The path and the `Authorization` header (empty when none) of the one request a test server
/// reads from `stream`.
fn request_head(stream: &std::net::TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = value.trim().to_string();
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    Some((path, authorization))
}

/// Wheel file names for `project` at each version, with no extra attributes.
pub fn wheels(project: &str, versions: &[&str]) -> Vec<(String, &'static str)> {
    versions
        .iter()
        .map(|v| (format!("{project}-{v}-py3-none-any.whl"), ""))
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let path = dir.join("blobs/sha256").join(&digest[7..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    digest
}

/// Writes an OCI layout at `dir` holding one image tagged `tag` made of `layers` (uncompressed
/// tars, stored gzip-compressed as registries do).
pub fn write_oci_layout(dir: &Path, tag: &str, layers: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(layer).unwrap();
        let blob = gz.finish().unwrap();
        diff_ids.push(sha256(layer));
        let digest = write_blob(dir, &blob);
        descriptors.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": blob.len()}));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["bash"], "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "fixture"}]
    }))
    .unwrap();
    let config_digest = write_blob(dir, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors
    }))
    .unwrap();
    let manifest_digest = write_blob(dir, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A Trivy (SchemaVersion 2) report with python-pkg findings:
/// `(pkg_path_without_leading_slash, package, installed, vulnerability, fixed_version_list)`.
pub fn trivy_report(findings: &[(&str, &str, &str, &str, &str)]) -> String {
    let vulnerabilities: Vec<serde_json::Value> = findings
        .iter()
        .map(|(path, name, installed, id, fixed)| {
            serde_json::json!({
                "VulnerabilityID": id, "PkgName": name, "PkgPath": path, "InstalledVersion": installed,
                "FixedVersion": fixed, "Status": if fixed.is_empty() { "affected" } else { "fixed" },
                "Severity": "HIGH",
                "PkgIdentifier": {"PURL": format!("pkg:pypi/{}@{installed}", name.to_lowercase())}
            })
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "SchemaVersion": 2,
        "ArtifactName": "fixture",
        "ArtifactType": "container_image",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.0"}},
        "Results": [{"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg", "Vulnerabilities": vulnerabilities}]
    }))
    .unwrap()
}

/// Reads a whole stream; for child process output.
pub fn read_all(mut reader: impl Read) -> String {
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    text
}

/// Static files on 127.0.0.1 (`(path, bytes)`, e.g. a Debian repository's `dists/` tree); any
/// other path answers 404. Returns the base URL and the log of requested paths.
pub fn serve_static(files: Vec<(String, Vec<u8>)>) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    serve_static_with(|_| files)
}

/// Like [`serve_static`], for files that name the server's own URL (an npm packument's tarball
/// links): `build` gets the base URL before the files are served.
pub fn serve_static_with(
    build: impl FnOnce(&str) -> Vec<(String, Vec<u8>)>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    serve_static_requiring(None, build)
}

/// Like [`serve_static_with`], answering 401 to every request whose `Authorization` header is
/// not `authorization` (when given), as a private feed does. Without `authorization`, a request
/// that carries one anyway is logged as `PATH (authorization: VALUE)`.
pub fn serve_static_requiring(
    authorization: Option<String>,
    build: impl FnOnce(&str) -> Vec<(String, Vec<u8>)>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let files = build(&url);
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let requests = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(500) {
            let Ok(mut stream) = stream else { continue };
            let Some((path, sent)) = request_head(&stream) else {
                continue;
            };
            // Credentials the server did not ask for are logged with the path, so a test sees
            // where credentials went.
            requests.lock().unwrap().push(match &authorization {
                None if !sent.is_empty() => format!("{path} (authorization: {sent})"),
                _ => path.clone(),
            });
            let denied = authorization.as_ref().is_some_and(|wanted| *wanted != sent);
            let response = match files.iter().find(|(p, _)| *p == path) {
                _ if denied => b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"feed\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                Some((_, bytes)) => {
                    let mut response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        bytes.len()
                    )
                    .into_bytes();
                    response.extend(bytes);
                    response
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    (url, log)
}

/// `text` gzip-compressed.
pub fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).unwrap();
    encoder.finish().unwrap()
}

/// A built-in plugin through the real host, over an image made of `layers` (layer tars, base
/// first), asking `index` for versions.
pub struct PluginSetup {
    pub host: copa_host::plugin::PluginHost,
    pub plugin: copa_host::plugin::Plugin,
    pub caps: Arc<copa_host::plugin::Capabilities>,
    /// The plugin's index URLs in force, as [`PluginSetup::policy`] gives them to it.
    pub indexes: Vec<(String, String)>,
}

pub fn builtin_plugin(
    name: &str,
    layers: Vec<Vec<u8>>,
    index: copa_host::index::PackageIndex,
) -> PluginSetup {
    builtin_plugin_with_indexes(name, layers, index, &[])
}

/// Like [`builtin_plugin`], run with the user's `--index ECOSYSTEM=URL`s `user_indexes`: the
/// plugin's `http` reaches their origins (or its defaults'), as in a real run.
pub fn builtin_plugin_with_indexes(
    name: &str,
    layers: Vec<Vec<u8>>,
    index: copa_host::index::PackageIndex,
    user_indexes: &[(&str, &str)],
) -> PluginSetup {
    builtin_plugin_with_credentials(name, layers, index, user_indexes, Default::default())
}

/// Like [`builtin_plugin_with_indexes`], with the user's credential of each origin
/// (`--index-credential`).
pub fn builtin_plugin_with_credentials(
    name: &str,
    layers: Vec<Vec<u8>>,
    index: copa_host::index::PackageIndex,
    user_indexes: &[(&str, &str)],
    credentials: std::collections::HashMap<copa_host::http::Origin, copa_host::http::Credential>,
) -> PluginSetup {
    let host = copa_host::plugin::PluginHost::new(Default::default(), None).unwrap();
    let plugin = host
        .load_all(&[])
        .unwrap()
        .into_iter()
        .find(|p| p.info.name == name)
        .unwrap_or_else(|| panic!("{name} is built in"));
    let layers = layers
        .into_iter()
        .map(|tar| {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(&tar).unwrap();
            copa_host::image::LayerTar::whole(file).unwrap()
        })
        .collect();
    let user_indexes: Vec<(String, String)> = user_indexes
        .iter()
        .map(|(ecosystem, url)| (ecosystem.to_string(), url.to_string()))
        .collect();
    let caps = Arc::new(copa_host::plugin::Capabilities {
        image: Arc::new(copa_host::image::ImageView::new(layers).unwrap()),
        index: Arc::new(index),
        http: Some(http_with_credentials(&plugin, &user_indexes, credentials)),
    });
    let indexes = copa_host::plugin::grants::index_urls(&plugin, &user_indexes);
    PluginSetup {
        host,
        plugin,
        caps,
        indexes,
    }
}

/// The policy of a run at `level`; `update_all` is a run without a report.
pub fn policy(level: copa_host::plugin::PatchLevel, update_all: bool) -> copa_host::plugin::Policy {
    copa_host::plugin::Policy {
        library_patch_level: level,
        update_all,
        toolchain_patch_level: None,
        options: Vec::new(),
        indexes: Vec::new(),
    }
}

/// The `http` capability of a run in which the user named `indexes` (`--index ECOSYSTEM=URL`),
/// for `plugin`: the origins its manifest's indexes grant, with those URLs in force.
pub fn granted_http(
    plugin: &copa_host::plugin::Plugin,
    indexes: &[(String, String)],
) -> Arc<copa_host::http::PluginHttp> {
    http_with_credentials(plugin, indexes, Default::default())
}

/// [`granted_http`], sending `credentials` to their origins (those the user named).
fn http_with_credentials(
    plugin: &copa_host::plugin::Plugin,
    indexes: &[(String, String)],
    credentials: std::collections::HashMap<copa_host::http::Origin, copa_host::http::Credential>,
) -> Arc<copa_host::http::PluginHttp> {
    let plugins = std::slice::from_ref(plugin);
    let grants = copa_host::plugin::grants::origins(plugins, indexes).unwrap();
    let folders = copa_host::plugin::grants::folders(plugins, indexes).unwrap();
    Arc::new(copa_host::http::PluginHttp::new(None, grants, credentials).with_folders(folders))
}

/// [`policy`], with the index URLs in force for `plugin` when the user named `indexes`.
pub fn policy_with_indexes(
    level: copa_host::plugin::PatchLevel,
    plugin: &copa_host::plugin::Plugin,
    indexes: &[(String, String)],
) -> copa_host::plugin::Policy {
    copa_host::plugin::Policy {
        indexes: copa_host::plugin::grants::index_urls(plugin, indexes),
        ..policy(level, false)
    }
}

/// The policy of a run with a report at the default patch level, no options.
pub fn default_policy() -> copa_host::plugin::Policy {
    policy(copa_host::plugin::PatchLevel::Patch, false)
}

impl PluginSetup {
    /// The policy of a run at `level` ([`policy`]) with this plugin's index URLs.
    pub fn policy(
        &self,
        level: copa_host::plugin::PatchLevel,
        update_all: bool,
    ) -> copa_host::plugin::Policy {
        copa_host::plugin::Policy {
            indexes: self.indexes.clone(),
            ..policy(level, update_all)
        }
    }

    /// `detect`, then `plan` of `findings` on what it found, at the default patch level.
    pub fn detect_and_plan(
        &self,
        findings: &[copa_host::plugin::Finding],
    ) -> (Vec<copa_host::plugin::Target>, copa_host::plugin::Plan) {
        let targets = self.host.detect(&self.plugin, &self.caps).unwrap();
        // No findings is the no-report run, where OS patchers update everything.
        let policy = self.policy(copa_host::plugin::PatchLevel::Patch, findings.is_empty());
        let plan = self
            .host
            .plan(&self.plugin, &self.caps, &targets, findings, &policy)
            .unwrap();
        (targets, plan)
    }
}

/// A target attribute the test expects to be there.
pub fn target_attribute<'a>(target: &'a copa_host::plugin::Target, key: &str) -> &'a str {
    target
        .attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no attribute {key}: {target:#?}"))
}

/// The index of `IndexSettings::default()`: PyPI, and whatever APT repositories the image names.
pub fn default_index() -> copa_host::index::PackageIndex {
    copa_host::index::PackageIndex::new(Default::default()).unwrap()
}

/// Validates a VEX document against the OpenVEX 0.2.0 schema in tests/data (copied from the
/// openvex/spec repository; see tests/data/README.md), formats (`uri`, `date-time`) included.
pub fn assert_valid_openvex(document: &serde_json::Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/openvex_json_schema.json");
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler.add_resource("openvex.json", schema).unwrap();
    let index = compiler.compile("openvex.json", &mut schemas).unwrap();
    if let Err(error) = schemas.validate(document, index) {
        panic!("not valid OpenVEX: {error:#}\n{document:#}");
    }
}
