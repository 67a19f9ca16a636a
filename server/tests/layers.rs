//! The server's layers, checked on its sources: each module of the library imports only
//! modules of its own layer or the layers below it (`error`/`clock`/`config`, then `storage`,
//! `office`, `http`), no group of modules imports itself round a cycle, and the HTTP layer
//! writes no SQL. `ARCHITECTURE.md` has the table these rules come from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One library source file: its module path (`office::users`) and its code without comments.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    code: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The library's modules (the binary's `main.rs` and `cli/` sit above every layer).
fn modules() -> Vec<Module> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                if p.file_name().unwrap() != "cli" {
                    stack.push(p);
                }
                continue;
            }
            if p.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src()).unwrap();
            let mut path: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if path == ["main"] {
                continue;
            }
            if path.last().is_some_and(|l| l == "mod" || l == "lib") {
                path.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.push(Module {
                path,
                file: rel.to_path_buf(),
                code: strip_comments(&text),
            });
        }
    }
    out
}

/// The text without `//` comments (doc comments may name any module) or string literals.
fn strip_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut kept = String::new();
        let mut in_str = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_str {
                if c == '\\' {
                    chars.next();
                } else if c == '"' {
                    in_str = false;
                }
                continue;
            }
            if c == '"' {
                in_str = true;
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            kept.push(c);
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The layer a module belongs to, lowest first; `None` for the crate root (it only declares
/// and re-exports).
fn layer(path: &[String]) -> Option<usize> {
    match path.first().map(String::as_str) {
        None => None,
        Some("error" | "clock" | "config" | "display") => Some(0),
        Some("storage") => Some(1),
        Some("office") => Some(2),
        Some("http") => Some(3),
        Some(other) => panic!("module {other} is in no layer: add it to ARCHITECTURE.md and here"),
    }
}

const LAYER_NAMES: [&str; 4] = ["error/clock/config/display", "storage", "office", "http"];

/// Every path the code names through `crate::` or `super::`, resolved to segments from the
/// crate root (a braced group is expanded one level: `crate::a::{b, c::d}`).
fn referenced_paths(module: &Module) -> Vec<Vec<String>> {
    let code = &module.code;
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let start = if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            // A module's path already names its folder for a `mod.rs`: `super` is one up.
            let mut base = module.path.clone();
            base.pop();
            Some((base, "super::".len()))
        } else {
            None
        };
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        match start {
            Some((base, skip)) if boundary => {
                let tail = &rest[skip..];
                for path in expand(tail) {
                    let mut full = base.clone();
                    full.extend(path);
                    found.push(full);
                }
                i += skip;
            }
            _ => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    found
}

/// `a::b::{c, d::e}` -> `[a, b, c]`, `[a, b, d, e]`; `a::b` -> `[a, b]`.
fn expand(tail: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = tail;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(rest[..end].to_owned());
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix("::") {
            rest = r;
            if let Some(group) = rest.strip_prefix('{') {
                let close = group.find('}').unwrap_or(group.len());
                return group[..close]
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && *s != "self")
                    .map(|item| {
                        let mut path = segments.clone();
                        path.extend(item.split(" as ").next().unwrap_or(item).split("::").map(
                            |s| {
                                s.trim_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                                    .to_owned()
                            },
                        ));
                        path
                    })
                    .chain(std::iter::once(segments.clone()))
                    .collect();
            }
        } else {
            break;
        }
    }
    vec![segments]
}

/// The longest prefix of `path` that is a module of the crate.
fn module_of(path: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| known.contains(p))
}

/// `sql_params!` is exported at the crate root but belongs to the storage layer.
fn macro_module(path: &[String]) -> Option<Vec<String>> {
    (path.first().map(String::as_str) == Some("sql_params"))
        .then(|| vec!["storage".to_owned(), "sql".to_owned()])
}

/// Which modules each module names, by module path.
type Edges = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

/// The import graph between modules: who names which module.
fn graph() -> (Vec<Module>, Edges) {
    let modules = modules();
    let known: BTreeSet<Vec<String>> = modules.iter().map(|m| m.path.clone()).collect();
    let mut edges = BTreeMap::new();
    for m in &modules {
        let targets: BTreeSet<Vec<String>> = referenced_paths(m)
            .iter()
            .filter_map(|p| macro_module(p).or_else(|| module_of(p, &known)))
            .filter(|t| *t != m.path && !t.is_empty())
            .collect();
        edges.insert(m.path.clone(), targets);
    }
    (modules, edges)
}

#[test]
fn every_library_module_is_in_a_layer_and_imports_only_downwards() {
    let (modules, edges) = graph();
    assert!(modules.len() > 40, "found only {} modules", modules.len());
    let mut wrong = Vec::new();
    for m in &modules {
        let Some(own) = layer(&m.path) else { continue };
        for target in &edges[&m.path] {
            let theirs = layer(target).unwrap_or(usize::MAX);
            if theirs > own {
                wrong.push(format!(
                    "{} ({}) imports {} ({})",
                    m.file.display(),
                    LAYER_NAMES[own],
                    target.join("::"),
                    LAYER_NAMES.get(theirs).copied().unwrap_or("the crate root"),
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that go up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_modules_import_each_other_round_a_cycle() {
    let (_, edges) = graph();
    // A module's own children are part of it: `mod.rs` declaring and re-exporting them is not
    // an import back.
    let is_within = |from: &Vec<String>, to: &Vec<String>| to.starts_with(from);
    let mut cycles = Vec::new();
    for start in edges.keys() {
        // Depth-first search for a path back to `start`.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, trail)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if is_within(&node, next) {
                    continue;
                }
                if next == start {
                    let mut names: Vec<String> = trail.iter().map(|p| p.join("::")).collect();
                    names.push(start.join("::"));
                    cycles.push(names.join(" -> "));
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_http_layer_writes_no_sql() {
    let sql_words = [
        "sql_params!",
        ".execute(",
        ".query_opt(",
        ".query_row(",
        ".query_all(",
    ];
    let offenders: Vec<String> = modules()
        .iter()
        .filter(|m| m.path.first().is_some_and(|l| l == "http"))
        .flat_map(|m| {
            sql_words
                .iter()
                .filter(|w| m.code.contains(*w))
                .map(|w| format!("{} uses {w}", m.file.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "SQL in the HTTP layer:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import_and_a_cycle() {
    // The rules above pass only if the checker can see what they forbid.
    let m = Module {
        path: vec!["storage".into(), "keys".into()],
        file: PathBuf::from("storage/keys.rs"),
        code: strip_comments(
            "use crate::office::users::{self, UserRow};\n// crate::http::web\nlet s = \"crate::http\";",
        ),
    };
    let paths = referenced_paths(&m);
    assert!(paths.contains(&vec!["office".into(), "users".into(), "UserRow".into()]));
    assert!(
        paths
            .iter()
            .all(|p| p.first().is_some_and(|s| s == "office"))
    );
    let child = Module {
        path: vec!["http".into(), "web".into(), "layout".into()],
        file: PathBuf::from("http/web/layout.rs"),
        code: "use super::auth::WebUser;".into(),
    };
    assert_eq!(
        referenced_paths(&child),
        vec![vec![
            "http".to_owned(),
            "web".into(),
            "auth".into(),
            "WebUser".into()
        ]]
    );
}
