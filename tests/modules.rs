//! Tidy check: dependencies between the top-level modules of `src/` point one
//! way. A module's non-test code naming `crate::x` depends on `x`; a cycle
//! among them fails with its path. `scripts/modgraph.py` prints the whole graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a file's non-test code names as `crate::x` or `crate::{x, …}`.
fn references(text: &str) -> BTreeSet<String> {
    let code = text
        .find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at]);
    let code: String = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the first segment of each item counts; nested groups are
            // inside a module already named.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => {
                        found.insert(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> String {
        let first = path
            .strip_prefix(&src)
            .unwrap()
            .components()
            .next()
            .unwrap();
        let name = first.as_os_str().to_string_lossy();
        name.trim_end_matches(".rs").to_string()
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let module = module_of(path);
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        edges.entry(module).or_default().extend(references(&text));
    }
    let modules: BTreeSet<String> = edges.keys().cloned().collect();
    for (module, targets) in edges.iter_mut() {
        targets.retain(|t| modules.contains(t) && t != module);
    }
    edges
}

/// A cycle as its path (first module repeated at the end), if there is one.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in edges.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|module| visit(module, edges, &mut done, &mut Vec::new()))
}

#[test]
fn top_level_modules_have_no_cycle() {
    let edges = graph();
    assert!(edges.len() >= 15, "src/ was not read: {edges:?}");
    if let Some(cycle) = find_cycle(&edges) {
        panic!("module cycle: {}", cycle.join(" → "));
    }
}

#[test]
fn a_cycle_is_found() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    edges.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(
        references("use crate::{x::{self, Y}, z};\nfn f() { crate::w::g() } // crate::v\n"),
        BTreeSet::from(["w".to_string(), "x".to_string(), "z".to_string()])
    );
}

/// Small modules every part may use (configuration, crypto, clocks, logging…);
/// they use only each other.
const LEAVES: &[&str] = &[
    "backoff",
    "clock",
    "config",
    "crypto",
    "fuzz_input",
    "hex",
    "logging",
    "memory",
    "runlock",
    "samples",
    "secret",
    "signing",
    // Reads a zone's file from the system's tz database once per zone name, as
    // `clock` reads the system clock; every answer after that is pure.
    "zone",
];

/// The parts (folders of src/) and the parts each may use besides the leaves:
/// cli and runtime → bot → domain and db; the adapters know no handler; the
/// pure domain imports nothing that does IO.
const MAY_USE: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("db", &["domain"]),
    ("http", &[]),
    ("telegram", &["domain", "http"]),
    ("instagram", &["domain", "http"]),
    ("media", &["domain", "db", "telegram"]),
    ("web", &["domain", "db", "media"]),
    (
        "bot",
        &["domain", "db", "telegram", "instagram", "media", "web"],
    ),
    (
        "runtime",
        &[
            "bot",
            "domain",
            "db",
            "telegram",
            "instagram",
            "media",
            "web",
        ],
    ),
    (
        "cli",
        &[
            "runtime",
            "bot",
            "domain",
            "db",
            "telegram",
            "instagram",
            "media",
            "web",
        ],
    ),
];

/// Every dependency that points the wrong way, and every module not placed in a part.
fn wrong_directions(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for (module, targets) in edges {
        let allowed: Vec<&str> = if LEAVES.contains(&module.as_str()) {
            LEAVES.to_vec()
        } else if let Some((_, parts)) = MAY_USE.iter().find(|(part, _)| part == module) {
            parts.iter().chain(LEAVES).copied().collect()
        } else {
            found.push(format!("{module}: not placed in a part (tests/modules.rs)"));
            continue;
        };
        for target in targets {
            if !allowed.contains(&target.as_str()) {
                found.push(format!("{module} → {target}"));
            }
        }
    }
    found
}

#[test]
fn parts_depend_one_way() {
    let edges = graph();
    let wrong = wrong_directions(&edges);
    assert!(
        wrong.is_empty(),
        "dependencies against the direction of ARCHITECTURE.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_wrong_direction_is_found() {
    let mut edges = BTreeMap::new();
    edges.insert("domain".to_string(), BTreeSet::from(["db".to_string()]));
    edges.insert("web".to_string(), BTreeSet::from(["bot".to_string()]));
    edges.insert(
        "config".to_string(),
        BTreeSet::from(["instagram".to_string()]),
    );
    edges.insert("bot".to_string(), BTreeSet::from(["domain".to_string()]));
    edges.insert("stray".to_string(), BTreeSet::new());
    assert_eq!(
        wrong_directions(&edges),
        [
            "config → instagram",
            "domain → db",
            "stray: not placed in a part (tests/modules.rs)",
            "web → bot",
        ]
    );
}
