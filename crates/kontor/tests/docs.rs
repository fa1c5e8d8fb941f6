//! The documents an operator relies on stay true to the code: the README's configuration
//! reference names every configuration key (and only real ones), the `LICENSE` file is the
//! licence `Cargo.toml` declares, and `CHANGELOG.md` has a section for the workspace's version.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use kontor::config::{Config, Overrides};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// Tables whose keys are names the operator chooses (a region, an attribute): `cells.*.url`.
const MAPS: &[&str] = &["cells", "telemetry.resource_attributes"];

/// The TOML block of the README's "Configure it" section.
fn reference_block(readme: &str) -> String {
    let section = readme
        .split("\n## Configure it")
        .nth(1)
        .expect("the README has a \"## Configure it\" section");
    let start = section.find("```toml\n").expect("with a ```toml block") + "```toml\n".len();
    let end = section[start..].find("\n```").expect("that ends") + start;
    section[start..end].to_owned()
}

/// Every key path in a JSON value: `server.listen`, `banks[].id`, `cells.*.url`.
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) if MAPS.contains(&prefix) => {
            // A map's own entries are named by the operator; their fields are the keys.
            let key = format!("{prefix}.*");
            out.insert(prefix.to_owned());
            for inner in map.values() {
                if inner.is_object() {
                    paths(inner, &key, out);
                }
            }
        }
        Value::Object(map) => {
            for (name, inner) in map {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                paths(inner, &key, out);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

/// Keys the reference shows commented out (`# otlp_endpoint = …`), under the table they follow
/// (`[worker]`, `[[banks]]`, or a commented `# [server.tls]`).
fn commented_keys(block: &str) -> BTreeSet<String> {
    let mut table = String::new();
    let mut keys = BTreeSet::new();
    for line in block.lines() {
        let bare = line.trim_start_matches('#').trim();
        if let Some(header) = bare.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            table = format!("{}[]", header.replace('.', "[]."));
            continue;
        }
        if let Some(header) = bare.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = normalise_table(header);
            if line.trim_start().starts_with('#') {
                // A section shown commented out (absent by default) is documented itself.
                keys.insert(table.clone());
            }
            continue;
        }
        if !line.trim_start().starts_with('#') {
            continue;
        }
        let Some((name, _)) = bare.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            keys.insert(if table.is_empty() {
                name.to_owned()
            } else {
                format!("{table}.{name}")
            });
        }
    }
    keys
}

/// `cells.uk` is `cells.*`; `banks.tenant_credentials` under `[[banks]]` is `banks[]…`.
fn normalise_table(header: &str) -> String {
    for map in MAPS {
        if let Some(rest) = header.strip_prefix(&format!("{map}.")) {
            let mut parts = rest.splitn(2, '.');
            parts.next();
            return match parts.next() {
                Some(more) => format!("{map}.*.{more}"),
                None => format!("{map}.*"),
            };
        }
    }
    if let Some(rest) = header.strip_prefix("banks.") {
        return format!("banks[].{rest}");
    }
    header.to_owned()
}

/// The configuration the reference block describes, loaded as `--config FILE` would load it.
fn load_reference(block: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kontor.toml");
    // Its secrets are placeholders; real (well-formed) ones let validation reach every key.
    let block = block
        .replace(
            "<base64 of ≥ 32 random bytes>",
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
        )
        .replace(
            "<base64 of 32 random bytes>",
            "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=",
        );
    std::fs::write(&file, block).unwrap();
    let overrides = Overrides {
        data_dir: Some(dir.path().to_owned()),
        listen: None,
    };
    // Only the file configures it: no `KONTOR_…` variable may name a section of the
    // configuration (others, such as CI's KONTOR_REQUIRE_BROWSER, are not configuration).
    let sections: Vec<String> = match serde_json::to_value(Config::default()).unwrap() {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("the configuration is not a table: {other}"),
    };
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_ascii_lowercase();
        let Some(rest) = key.strip_prefix("kontor_") else {
            continue;
        };
        let section = rest.split("__").next().unwrap_or_default();
        assert!(
            !sections.iter().any(|s| s == section),
            "run without configuration in the environment: KONTOR_{} is set",
            rest.to_ascii_uppercase()
        );
    }
    match Config::load(Some(&file), &overrides) {
        Ok(config) => config,
        // Validation may refuse the example's made-up files and hosts; the keys are what counts.
        Err(err) => {
            let message = format!("{err:#}");
            assert!(
                !message.contains("unknown field"),
                "the README's configuration reference names a key the configuration does not have: {message}"
            );
            toml::from_str(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("the reference block is not a configuration: {e}"))
        }
    }
}

#[test]
fn the_readme_documents_every_configuration_key() {
    let block = reference_block(&read("README.md"));
    let reference = load_reference(&block);

    let mut documented = BTreeSet::new();
    let parsed: toml::Value = toml::from_str(&block).expect("the reference block is TOML");
    paths(&serde_json::to_value(&parsed).unwrap(), "", &mut documented);
    documented.extend(commented_keys(&block));

    // What the code has: the defaults, and whatever the reference itself fills in (sections
    // that are absent by default, such as [[banks]], show their fields only when present).
    let mut known = BTreeSet::new();
    paths(
        &serde_json::to_value(Config::default()).unwrap(),
        "",
        &mut known,
    );
    paths(&serde_json::to_value(&reference).unwrap(), "", &mut known);

    // An empty list of tables (`banks = []` by default) is documented by its entries' keys.
    let missing: Vec<_> = known
        .difference(&documented)
        .filter(|key| {
            !documented
                .iter()
                .any(|d| d.starts_with(&format!("{key}[].")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "configuration keys missing from the README's reference (\"## Configure it\"): {missing:#?}"
    );
    // The fields of a section absent from both (a commented `# [server.tls]`) are not known
    // here; the section itself is.
    let unknown: Vec<_> = documented
        .difference(&known)
        .filter(|key| !known.iter().any(|k| key.starts_with(&format!("{k}."))))
        .collect();
    assert!(
        unknown.is_empty(),
        "the README's reference names keys the configuration does not have: {unknown:#?}"
    );
}

#[test]
fn the_license_file_is_the_declared_license() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let license = manifest["workspace"]["package"]["license"]
        .as_str()
        .expect("workspace.package.license");
    let text = read("LICENSE");
    let expected = match license {
        "Apache-2.0" => ["Apache License", "Version 2.0, January 2004"],
        "MIT" => ["MIT License", "Permission is hereby granted"],
        other => panic!("no check for the licence {other}; add one"),
    };
    for words in expected {
        assert!(
            text.contains(words),
            "LICENSE does not read as {license}: no {words:?}"
        );
    }
}

#[test]
fn the_changelog_has_the_current_version() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let version = manifest["workspace"]["package"]["version"]
        .as_str()
        .expect("workspace.package.version");
    let changelog = read("CHANGELOG.md");
    let headings: Vec<&str> = changelog.lines().filter(|l| l.starts_with("## ")).collect();
    assert!(
        headings
            .iter()
            .any(|h| h.starts_with("## [Unreleased]") || h.starts_with(&format!("## [{version}]"))),
        "CHANGELOG.md has no \"## [Unreleased]\" or \"## [{version}]\" section: {headings:?}"
    );
}

/// The crates behind the one door (docs/ARCHITECTURE.md, "One door"): what each may depend on
/// among the workspace's crates, as a normal or build dependency.
const DOOR_RULE: &[(&str, &[&str])] = &[
    ("kontor-api", &["kontor-service", "kontor-domain"]),
    ("kontor-worker", &["kontor-service", "kontor-domain"]),
];

/// What their tests may use besides: fixtures that set up databases and banks and look behind
/// the API's back. Never the binary.
const DOOR_TEST_SUPPORT: &[&str] = &[
    "kontor-test-support",
    "kontor-sandbox-bank",
    "kontor-store",
    "kontor-store-sql",
    "kontor-banks",
    "kontor-crypto",
    "kontor-worker",
];

/// The workspace's edges that break the rule, as `from -> to (kind)`.
fn door_violations(metadata: &Value) -> Vec<String> {
    let packages = metadata["packages"].as_array().expect("packages");
    let workspace: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut wrong = Vec::new();
    for (crate_name, allowed) in DOOR_RULE {
        let package = packages
            .iter()
            .find(|p| p["name"] == *crate_name)
            .unwrap_or_else(|| panic!("{crate_name} is not in the workspace any more"));
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let name = dependency["name"].as_str().expect("dependency name");
            if !workspace.contains(name) {
                continue;
            }
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            let ok = match kind {
                "dev" => allowed.contains(&name) || DOOR_TEST_SUPPORT.contains(&name),
                _ => allowed.contains(&name),
            };
            if !ok {
                wrong.push(format!("{crate_name} -> {name} ({kind})"));
            }
        }
    }
    wrong
}

#[test]
fn the_api_and_the_worker_reach_the_data_only_through_the_service() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let wrong = door_violations(&metadata);
    assert!(
        wrong.is_empty(),
        "docs/ARCHITECTURE.md (\"One door\"): kontor-api and kontor-worker depend only on \
         kontor-service and kontor-domain among the workspace's crates; these edges break it:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_door_rule_names_an_edge_that_breaks_it() {
    let metadata = serde_json::json!({ "packages": [
        { "name": "kontor-api", "dependencies": [
            { "name": "kontor-service", "kind": null },
            { "name": "kontor-store-sql", "kind": null },
            { "name": "kontor-test-support", "kind": "dev" },
            { "name": "serde", "kind": null },
        ]},
        { "name": "kontor-worker", "dependencies": [
            { "name": "kontor-banks", "kind": "build" },
            { "name": "kontor", "kind": "dev" },
        ]},
        { "name": "kontor-service", "dependencies": [] },
        { "name": "kontor-store-sql", "dependencies": [] },
        { "name": "kontor-test-support", "dependencies": [] },
        { "name": "kontor-banks", "dependencies": [] },
        { "name": "kontor", "dependencies": [] },
    ]});
    assert_eq!(
        door_violations(&metadata),
        [
            "kontor-api -> kontor-store-sql (normal)",
            "kontor-worker -> kontor-banks (build)",
            "kontor-worker -> kontor (dev)",
        ]
    );
}

/// The stops of docs/ARCHITECTURE.md's request walk, in order: each file with the items it
/// names in parentheses after it (``- **`path`** (`item`, `item`): …``).
fn walk_stops(architecture: &str) -> Vec<(String, Vec<String>)> {
    let section = architecture
        .split("\n## One request's walk")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a \"## One request's walk\" section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut stops = Vec::new();
    for line in section.lines() {
        let Some(rest) = line.strip_prefix("- **`") else {
            continue;
        };
        let (path, rest) = rest.split_once("`**").expect("a stop's path ends with `**");
        let named = rest
            .trim_start()
            .strip_prefix('(')
            .and_then(|rest| rest.split_once(')'))
            .map(|(inside, _)| inside)
            .unwrap_or_else(|| panic!("the stop {path} names no items in parentheses"));
        let items = named
            .split(',')
            .map(|item| item.trim().trim_matches('`').to_owned())
            .collect();
        stops.push((path.to_owned(), items));
    }
    stops
}

#[test]
fn the_architecture_walk_goes_through_at_most_five_files_that_hold_what_it_names() {
    let stops = walk_stops(&read("docs/ARCHITECTURE.md"));
    assert!(
        (1..=5).contains(&stops.len()),
        "the walk goes through {} files: {stops:?}",
        stops.len()
    );
    for (path, items) in &stops {
        let source = std::fs::read_to_string(root().join(path))
            .unwrap_or_else(|e| panic!("the walk names {path}: {e}"));
        for item in items {
            let defined = ["fn", "struct", "enum", "trait", "type"]
                .iter()
                .any(|keyword| {
                    source.contains(&format!("{keyword} {item}("))
                        || source.contains(&format!("{keyword} {item}<"))
                        || source.contains(&format!("{keyword} {item} "))
                });
            assert!(defined, "the walk says {path} defines {item}; it does not");
        }
    }
}
