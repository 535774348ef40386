use super::*;

fn none(_: &str) -> Option<String> {
    None
}

fn header(credential: &Credential) -> String {
    credential.header()
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("nuget.config");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn sources_become_indexes_and_their_credentials_those_of_their_origins() {
    let folder = tempfile::tempdir().unwrap();
    let with_space = folder.path().join("my feed");
    std::fs::create_dir(&with_space).unwrap();
    let env = |name: &str| {
        (name == "NuGetPackageSourceCredentials_private")
            .then(|| "Username=ci;Password=s3cr=t;ValidAuthenticationTypes=basic".to_string())
    };
    let feeds = feeds(
        &[
            "private=https://feed.example:8443/v3/index.json".into(),
            with_space.display().to_string(),
            "https://feed.example/index.json?a=b".into(),
            "https://me:pw@other.example/v3/index.json".into(),
        ],
        None,
        &env,
    )
    .unwrap();
    assert_eq!(
        feeds.indexes,
        [
            "https://feed.example:8443/v3/index.json".to_string(),
            format!("file://{}/my%20feed/", folder.path().display()),
            "https://feed.example/index.json?a=b".into(),
            "https://other.example/v3/index.json".into(),
        ]
    );
    let credentials: Vec<(String, String)> = feeds
        .credentials
        .iter()
        .map(|(o, c)| (o.to_string(), header(c)))
        .collect();
    assert_eq!(
        credentials,
        [
            // base64("ci:s3cr=t")
            (
                "https://feed.example:8443".to_string(),
                "Basic Y2k6czNjcj10".to_string()
            ),
            ("https://other.example:443".into(), "Basic bWU6cHc=".into()),
        ]
    );
    assert!(feeds.mapping.is_empty());
}

#[test]
fn config_sources_follow_the_command_line_and_carry_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir(&extra).unwrap();
    std::fs::create_dir(dir.path().join("local")).unwrap();
    let config = write_config(
        dir.path(),
        r#"<configuration><packageSources><clear/>
             <add key="public" value="https://api.nuget.org/v3/index.json"/>
             <add key="Team Feed" value="https://team.example/v3/index.json"/>
             <add key="local" value="local"/>
             <add key="old" value="https://old.example/api/v2" protocolVersion="2"/></packageSources>
           <packageSourceCredentials><Team_x0020_Feed><add key="Username" value="cfg"/><add key="ClearTextPassword" value="pw"/></Team_x0020_Feed>
             <ci><add key="Username" value="cfg"/><add key="ClearTextPassword" value="pw"/></ci></packageSourceCredentials>
           <packageSourceMapping>
             <packageSource key="public"><package pattern="*"/></packageSource>
             <packageSource key="Team Feed"><package pattern="Contoso.*"/></packageSource>
             <packageSource key="extra"><package pattern="Other"/></packageSource>
           </packageSourceMapping></configuration>"#,
    );
    let feeds = feeds(
        &[format!("extra={}", extra.display())],
        Some(&ConfigFile::Given(config)),
        &none,
    )
    .unwrap();
    let extra_url = format!("file://{}/", extra.display());
    assert_eq!(
        feeds.indexes,
        [
            extra_url.clone(),
            "https://api.nuget.org/v3/index.json".into(),
            "https://team.example/v3/index.json".into(),
            format!("file://{}/local/", dir.path().display()),
        ]
    );
    assert_eq!(
        feeds.mapping,
        [
            "*=https://api.nuget.org/v3/index.json".to_string(),
            "Contoso.*=https://team.example/v3/index.json".into(),
            format!("Other={extra_url}"),
        ]
    );
    // base64("cfg:pw")
    assert_eq!(feeds.credentials.len(), 1);
    assert_eq!(
        feeds.credentials[0].0,
        Origin::of("https://team.example").unwrap()
    );
    assert_eq!(header(&feeds.credentials[0].1), "Basic Y2ZnOnB3");
    assert_eq!(feeds.warnings.len(), 1, "{:?}", feeds.warnings);
}

#[test]
fn credentials_come_from_the_environment_before_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        r#"<configuration><packageSourceCredentials><ci><add key="Username" value="cfg"/><add key="ClearTextPassword" value="pw"/></ci></packageSourceCredentials></configuration>"#,
    );
    let given = ConfigFile::Given(config);
    let source = ["ci=https://ci.example/v3/index.json".to_string()];
    let from_config = feeds(&source, Some(&given), &none).unwrap();
    assert_eq!(header(&from_config.credentials[0].1), "Basic Y2ZnOnB3");
    let env = |name: &str| {
        (name == "NuGetPackageSourceCredentials_ci").then(|| "Username=env;Password=pw".into())
    };
    let from_env = feeds(&source, Some(&given), &env).unwrap();
    // base64("env:pw")
    assert_eq!(header(&from_env.credentials[0].1), "Basic ZW52OnB3");
}

#[test]
fn rejects_bad_sources_and_configs() {
    for (spec, why) in [
        ("relative/dir", "absolute path"),
        ("/no/such/dir/anywhere", "no such directory"),
        ("http://", "--nuget-source http://"),
    ] {
        let err = feeds(&[spec.to_string()], None, &none)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(why) && err.contains("--nuget-source"),
            "{spec}: {err}"
        );
    }
    let env = |_: &str| Some("Password=only".to_string());
    let err = feeds(&["x=https://feed.example/v3/index.json".into()], None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("NuGetPackageSourceCredentials_x"), "{err}");
    let folder = tempfile::tempdir().unwrap();
    let env = |_: &str| Some("Username=u;Password=p".to_string());
    let err = feeds(&[format!("x={}", folder.path().display())], None, &env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not folders"), "{err}");
    // No source at all: the plugin's default applies.
    let nothing = feeds(&[], None, &none).unwrap();
    assert!(nothing.indexes.is_empty() && nothing.mapping.is_empty());

    // A config that leaves no source is an error, not a silent nuget.org...
    let dir = tempfile::tempdir().unwrap();
    let empty = write_config(
        dir.path(),
        "<configuration><packageSources><clear/></packageSources></configuration>",
    );
    let err = feeds(&[], Some(&ConfigFile::Given(empty.clone())), &none)
        .unwrap_err()
        .to_string();
    assert!(err.contains("enables no package source"), "{err}");
    // ...and the user-level one is not the run's to fail: NuGet packages are looked up nowhere.
    let blocked = feeds(&[], Some(&ConfigFile::UserLevel(empty)), &none).unwrap();
    assert_eq!(blocked.mapping, ["*="]);
    assert!(blocked.indexes.is_empty());
    assert!(blocked.warnings[0].contains("looked up on no feed"));
}

#[test]
fn finds_the_user_level_config() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(user_config(home.path()), None);
    std::fs::create_dir_all(home.path().join(".nuget/NuGet")).unwrap();
    std::fs::write(
        home.path().join(".nuget/NuGet/NuGet.Config"),
        "<configuration/>",
    )
    .unwrap();
    assert_eq!(
        user_config(home.path()),
        Some(home.path().join(".nuget/NuGet/NuGet.Config"))
    );
}
