//! Dependencies point down (DESIGN.md): each module of `src/` names only modules below
//! it, so no module imports one that imports it back.

use std::path::Path;

/// Bottom to top.
const LAYERS: &[&str] = &[
    "http",
    "log",
    "stats",
    "files",
    "site",
    "conn",
    "access",
    "transport",
    "tls",
    "lifecycle",
    // The fuzz targets' bodies (feature `fuzzing`): over the layers they exercise.
    "fuzz",
    "driver",
    "shard",
    "tuning",
    "config",
    "master",
];

/// `(module, module it names)` for every `crate::NAME` in `src/`, `NAME` a module.
fn edges(dir: &Path, out: &mut Vec<(String, String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            edges(&path, out);
            continue;
        }
        let rel = path.strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/src")).unwrap();
        let from = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                // `use crate::{a::X, b};`
                Some(group) => {
                    group[..group.find('}').unwrap()].split(',').map(|p| p.trim().split("::").next().unwrap()).collect()
                }
                None => vec![rest.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap()],
            };
            for to in names.into_iter().filter(|n| !n.is_empty() && *n != from) {
                out.push((from.clone(), to.to_string(), rel.display().to_string()));
            }
        }
    }
}

#[test]
fn no_module_names_one_above_it() {
    let mut found = Vec::new();
    edges(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")), &mut found);
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut checked = 0;
    for (from, to, file) in &found {
        // The binary's entry point and the crate root sit above everything.
        if from == "main" || from == "lib" {
            continue;
        }
        let (Some(f), Some(t)) = (rank(from), rank(to)) else {
            panic!("{file}: module {from} or {to} has no place in LAYERS; add it where it belongs");
        };
        assert!(t < f, "{file}: {from} names crate::{to}, which sits above it ({})", LAYERS.join(" → "));
        checked += 1;
    }
    assert!(checked > 20, "only {checked} imports seen: the scan is broken");
}
