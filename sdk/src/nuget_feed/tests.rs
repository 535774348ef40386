use std::collections::HashMap;

use super::*;

/// A `get` answering from `answers` (URL -> status and body; anything else 404), logging each
/// URL asked for.
fn answering(
    answers: Vec<(String, u16, String)>,
    log: &mut Vec<String>,
) -> impl FnMut(&str) -> Answer + '_ {
    let answers: HashMap<String, (u16, Vec<u8>)> = answers
        .into_iter()
        .map(|(url, status, body)| (url, (status, body.into_bytes())))
        .collect();
    move |url: &str| {
        log.push(url.to_string());
        Ok(answers.get(url).cloned().unwrap_or((404, Vec::new())))
    }
}

fn ok(url: &str, body: String) -> (String, u16, String) {
    (url.to_string(), 200, body)
}

fn service_index(base: &str, registrations: Option<&str>) -> String {
    let mut resources = vec![
        serde_json::json!({"@id": "https://example.invalid/query", "@type": "SearchQueryService"}),
        serde_json::json!({"@id": base, "@type": PACKAGE_BASE_TYPE}),
    ];
    if let Some(registrations) = registrations {
        resources.push(serde_json::json!({"@id": registrations, "@type": ["RegistrationsBaseUrl/3.6.0", "RegistrationsBaseUrl/Versioned"]}));
    }
    serde_json::json!({"version": "3.0.0", "resources": resources}).to_string()
}

const INDEX: &str = "https://feed.example/v3/index.json";

#[test]
fn reads_a_v3_feed_with_registration() {
    let registration_index = serde_json::json!({"count": 2, "items": [
        {"@id": "page-inline", "items": [
            {"catalogEntry": {"version": "1.0.0", "listed": true, "published": "2024-01-02T03:04:05+00:00"}},
            {"catalogEntry": {"version": "1.0.1+sha.abc", "listed": false, "published": "1900-01-01T00:00:00+00:00"}}
        ]},
        {"@id": "https://cdn.example/page2"}
    ]});
    let page2 = serde_json::json!({"items": [
        {"catalogEntry": {"version": "2.0.0-RC.1", "deprecation": {"reasons": ["Legacy"], "message": "use Other.Lib"}}},
        {"catalogEntry": {"version": "2.0.0", "deprecation": {"reasons": ["CriticalBugs"]}}}
    ]});
    let mut log = Vec::new();
    let get = answering(
        vec![
            ok(
                INDEX,
                service_index("https://cdn.example/flat", Some("https://cdn.example/reg/")),
            ),
            ok(
                "https://cdn.example/flat/my.lib/index.json",
                r#"{"versions": ["1.0.0", "1.0.1", "2.0.0-rc.1", "2.0.0", "not.a.version"]}"#
                    .into(),
            ),
            ok(
                "https://cdn.example/reg/my.lib/index.json",
                registration_index.to_string(),
            ),
            ok("https://cdn.example/page2", page2.to_string()),
        ],
        &mut log,
    );
    let listing = versions([INDEX], "My.Lib", get).unwrap();
    let summary: Vec<(&str, bool, Option<&str>, Option<&str>)> = listing
        .versions
        .iter()
        .map(|v| {
            (
                v.version.as_str(),
                v.listed,
                v.deprecated.as_deref(),
                v.published.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("1.0.0", true, None, Some("2024-01-02T03:04:05+00:00")),
            ("1.0.1", false, None, None),
            ("2.0.0-rc.1", true, Some("use Other.Lib"), None),
            ("2.0.0", true, Some("deprecated: CriticalBugs"), None),
        ]
    );
    assert_eq!(
        listing.versions[0].nupkg_url,
        "https://cdn.example/flat/my.lib/1.0.0/my.lib.1.0.0.nupkg"
    );
    assert!(listing.warnings.is_empty());
    assert_eq!(
        log,
        [
            INDEX,
            "https://cdn.example/flat/my.lib/index.json",
            "https://cdn.example/reg/my.lib/index.json",
            "https://cdn.example/page2"
        ]
    );
}

#[test]
fn an_unknown_package_is_an_empty_list_and_a_bad_id_asks_nothing() {
    let mut log = Vec::new();
    let get = answering(
        vec![ok(INDEX, service_index("https://feed.example/flat/", None))],
        &mut log,
    );
    assert_eq!(versions([INDEX], "Other", get).unwrap(), Listing::default());
    let mut asked = Vec::new();
    for id in [
        "../x",
        "a/b",
        "a%2fb",
        "a?b",
        "",
        "..",
        "a b",
        "x/../../etc",
    ] {
        let err = versions([INDEX], id, |url: &str| {
            asked.push(url.to_string());
            Ok((200, Vec::new()))
        })
        .unwrap_err();
        assert_eq!(err, format!("invalid NuGet package id {id:?}"));
    }
    assert!(asked.is_empty(), "{asked:?}");
}

#[test]
fn broken_feeds_are_one_line_errors() {
    let cases: Vec<((u16, String), &str)> = vec![
        ((401, String::new()), "the credentials were refused"),
        ((403, String::new()), "--index-credential"),
        (
            (200, r#"{"version":"3.0.0","resources":[]}"#.into()),
            "no PackageBaseAddress/3.0.0 resource",
        ),
        ((200, "<html>".into()), "parsing JSON from"),
        ((200, r#"{"resources": 7}"#.into()), "parsing JSON from"),
        ((500, String::new()), "HTTP 500"),
        ((404, String::new()), "no NuGet service index there"),
    ];
    for ((status, body), expected) in cases {
        let err = versions([INDEX], "a", |_: &str| {
            Ok((status, body.clone().into_bytes()))
        })
        .unwrap_err();
        assert!(err.contains(expected) && err.contains(INDEX), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // What the transport refuses (a body over the cap, an origin not granted) names the URL.
    let err = versions([INDEX], "a", |_: &str| {
        Err("larger than 67108864 bytes".into())
    })
    .unwrap_err();
    assert_eq!(err, format!("fetching {INDEX}: larger than 67108864 bytes"));
}

#[test]
fn a_broken_registration_is_a_warning_not_a_failure() {
    let pages: Vec<serde_json::Value> = (0..MAX_REGISTRATION_PAGES + 1)
        .map(|i| serde_json::json!({"@id": format!("https://feed.example/p{i}")}))
        .collect();
    for registration in [
        "{\"items\": [".to_string(),
        serde_json::json!({"items": pages}).to_string(),
        serde_json::json!({"items": [{"@id": "https://feed.example/missing"}]}).to_string(),
    ] {
        let mut log = Vec::new();
        let get = answering(
            vec![
                ok(
                    INDEX,
                    service_index(
                        "https://feed.example/flat/",
                        Some("https://feed.example/reg/"),
                    ),
                ),
                ok(
                    "https://feed.example/flat/a/index.json",
                    r#"{"versions":["1.0.0"]}"#.into(),
                ),
                ok("https://feed.example/reg/a/index.json", registration),
            ],
            &mut log,
        );
        let listing = versions([INDEX], "A", get).unwrap();
        assert_eq!(listing.versions.len(), 1);
        assert!(listing.versions[0].listed);
        assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
        assert!(listing.warnings[0].starts_with("A: registration: "));
        // A page list over the limit is not walked at all.
        assert!(log.len() <= 4, "{log:?}");
    }
}

/// A folder feed as the host's `http` lists one: `tree` is (path below the root, is a dir).
fn folder(root: &str, tree: &[(&str, bool)]) -> Vec<(String, u16, String)> {
    let mut listings: HashMap<String, String> = HashMap::new();
    listings.insert(format!("{root}/"), String::new());
    for (path, is_dir) in tree {
        let (parent, name) = match path.rsplit_once('/') {
            Some((parent, name)) => (format!("{root}/{parent}/"), name),
            None => (format!("{root}/"), *path),
        };
        let line = if *is_dir {
            format!("{name}/\n")
        } else {
            format!("{name}\n")
        };
        listings.entry(parent).or_default().push_str(&line);
        if *is_dir {
            listings.entry(format!("{root}/{path}/")).or_default();
        }
    }
    listings
        .into_iter()
        .map(|(url, body)| (url, 200, body))
        .collect()
}

#[test]
fn reads_folder_feeds_flat_and_hierarchical() {
    let root = "file:///srv/feed";
    let mut log = Vec::new();
    let get = answering(
        folder(
            root,
            &[
                ("My.Lib.1.0.0.nupkg", false),
                ("my.lib.1.0.1-beta.nupkg", false),
                ("My.Lib.Extra.3.0.0.nupkg", false),
                ("My.Lib.notes.txt", false),
                ("my.lib", true),
                ("my.lib/2.0.0", true),
                ("my.lib/2.0.0/my.lib.2.0.0.nupkg", false),
                ("my.lib/3.0.0", true),
                ("my.lib/not-a-version", true),
            ],
        ),
        &mut log,
    );
    let listing = versions([root], "My.Lib", get).unwrap();
    let listed: Vec<(&str, &str)> = listing
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.nupkg_url.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("1.0.0", "file:///srv/feed/My.Lib.1.0.0.nupkg"),
            ("1.0.1-beta", "file:///srv/feed/my.lib.1.0.1-beta.nupkg"),
            ("2.0.0", "file:///srv/feed/my.lib/2.0.0/my.lib.2.0.0.nupkg"),
        ]
    );
    // Names are percent-encoded into the URLs the host decodes.
    let root = "file:///srv/other%20feed";
    let mut log = Vec::new();
    let get = answering(
        folder(
            root,
            &[("Other 1.0.nupkg", false), ("Other.1.0.nupkg", false)],
        ),
        &mut log,
    );
    let listing = versions([root], "Other", get).unwrap();
    assert_eq!(listing.versions.len(), 1);
    assert_eq!(listing.versions[0].version, "1.0.0");
    assert_eq!(
        listing.versions[0].nupkg_url,
        "file:///srv/other%20feed/Other.1.0.nupkg"
    );
    assert_eq!(folder_url("/srv/other feed/"), "file:///srv/other%20feed/");
}

#[test]
fn a_folder_listing_cannot_point_outside_the_folder() {
    let root = "file:///srv/feed";
    let listing =
        "../A.1.0.0.nupkg\n/etc/A.2.0.0.nupkg\nsub/A.3.0.0.nupkg\n..\n../\nA.4.0.0.nupkg\n";
    let mut log = Vec::new();
    let get = answering(vec![ok("file:///srv/feed/", listing.into())], &mut log);
    let found = versions([root], "A", get).unwrap();
    let urls: Vec<&str> = found
        .versions
        .iter()
        .map(|v| v.nupkg_url.as_str())
        .collect();
    assert_eq!(urls, ["file:///srv/feed/A.4.0.0.nupkg"]);
    // A folder that is not there (or not granted) fails the lookup, naming it.
    let err = versions(["file:///gone"], "A", |_: &str| Ok((404, Vec::new()))).unwrap_err();
    assert_eq!(err, "reading folder feed file:///gone/: status 404");
    let err = versions(["file:///x"], "A", |_: &str| Ok((200, vec![0xff]))).unwrap_err();
    assert!(err.ends_with("the listing is not UTF-8"), "{err}");
}

#[test]
fn merges_sources_first_one_wins() {
    let first = "file:///first";
    let mut answers = folder(first, &[("a.1.0.0.nupkg", false)]);
    answers.push(ok(INDEX, service_index("https://feed.example/flat/", None)));
    answers.push(ok(
        "https://feed.example/flat/a/index.json",
        r#"{"versions":["1.0","2.0.0"]}"#.into(),
    ));
    let mut log = Vec::new();
    let get = answering(answers, &mut log);
    let listing = versions([first, INDEX], "A", get).unwrap();
    let urls: Vec<&str> = listing
        .versions
        .iter()
        .map(|v| v.nupkg_url.as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "file:///first/a.1.0.0.nupkg",
            "https://feed.example/flat/a/2.0.0/a.2.0.0.nupkg"
        ]
    );
}

#[test]
fn source_mapping_picks_the_most_specific_pattern() {
    let public = "https://api.nuget.org/v3/index.json";
    let private = "https://pkgs.contoso.example/v3/index.json";
    let mapping = SourceMapping::from_options([
        format!("*={public}").as_str(),
        format!("Contoso.*={private}").as_str(),
        format!("Newtonsoft.Json={private}").as_str(),
    ])
    .unwrap();
    for (id, source, allowed) in [
        ("Contoso.Lib", private, true),
        ("Contoso.Lib", public, false),
        ("newtonsoft.json", private, true),
        ("Newtonsoft.Json", public, false),
        ("Serilog", public, true),
        ("Serilog", private, false),
        ("Serilog", "file:///srv/local/", false),
    ] {
        assert_eq!(mapping.allows(id, source), allowed, "{id} on {source}");
    }
    assert_eq!(
        SourceMapping::from_options(mapping.to_options().iter().map(String::as_str)).unwrap(),
        mapping
    );
    assert!(SourceMapping::default().allows("Anything", public));
    let only_contoso =
        SourceMapping::from_options([format!("Contoso.*={private}").as_str()]).unwrap();
    assert!(!only_contoso.allows("Serilog", private));
    assert!(
        SourceMapping::from_options(["no-url"])
            .unwrap_err()
            .contains("PATTERN=SOURCE-URL")
    );
}
