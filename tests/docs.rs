//! The docs keep up with the code: every key of the example configuration
//! (`config/gateway.yaml`) is documented in `docs/configuration.md`, and the
//! README stays a short entry point to `docs/`. No network, no gateway.

use std::path::Path;

use serde_yaml_ng::Value;

/// Maps whose keys are names the operator picks (a pool, a plan, a
/// cluster); the reference writes such a key as `<name>`.
const NAMED_MAPS: [&str; 3] = ["pools", "plans", "provisioning.clusters"];

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every key path of `value` under `prefix`, parents before children
/// (`cache`, `cache.ttl`, …). Lists are values, not walked into.
fn key_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    let Value::Mapping(map) = value else { return };
    for (key, child) in map {
        let key = key.as_str().expect("config keys are strings");
        let key = if NAMED_MAPS.contains(&prefix) {
            "<name>"
        } else {
            key
        };
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        out.push(path.clone());
        key_paths(child, &path, out);
    }
}

#[test]
fn every_key_of_the_example_config_is_in_the_configuration_reference() {
    let example: Value =
        serde_yaml_ng::from_str(&read("config/gateway.yaml")).expect("the example parses");
    let reference = read("docs/configuration.md");
    let mut paths = Vec::new();
    key_paths(&example, "", &mut paths);
    assert!(
        paths.iter().any(|p| p == "cache.max_entries") && paths.len() > 40,
        "the walk found the example's keys: {paths:?}"
    );
    let missing: Vec<&String> = paths
        .iter()
        .filter(|path| {
            // A section counts as documented through its keys (`admin.listen`).
            !reference.contains(&format!("`{path}`")) && !reference.contains(&format!("`{path}."))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "config keys of config/gateway.yaml not documented (as `key.path`) in docs/configuration.md: {missing:?}"
    );
}

#[test]
fn the_readme_is_short_and_maps_the_docs() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move topics to docs/"
    );
    for command in [
        "cargo run --release -- serve --default-backend http://127.0.0.1:8000",
        "./scripts/test.sh",
    ] {
        assert!(readme.contains(command), "README.md lacks `{command}`");
    }
    // Every page in docs/ is linked from the README's map.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for entry in std::fs::read_dir(&docs).expect("docs/") {
        let name = entry.expect("a docs/ entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            assert!(
                readme.contains(&format!("(docs/{name})")),
                "README.md does not link docs/{name}"
            );
        }
    }
    // And every docs/ page (or other file) the README links exists, in docs/
    // or anywhere else in the repository.
    for link in readme.split("](").skip(1) {
        let Some(target) = link.split(')').next() else {
            continue;
        };
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let target = target.split('#').next().unwrap_or(target);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(target);
        assert!(
            path.exists(),
            "README.md links {target}, which does not exist"
        );
    }
}
