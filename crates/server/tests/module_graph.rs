//! The code's shape (STYLE.md): sibling modules depend on each other in one direction only. Reads
//! every source file of the crate, takes each `super::NAME` a module names (in `use` lines and in
//! paths) as an edge to its sibling NAME, and fails on any cycle, naming it.

#![allow(clippy::unwrap_used)] // a test that cannot read its sources should fail loudly

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is (`dir/name.rs` or `dir/name/mod.rs`), as its directory and its name.
fn module_of(src: &Path, file: &Path) -> (PathBuf, String) {
    let rel = file.strip_prefix(src).unwrap();
    let stem = rel.file_stem().unwrap().to_string_lossy().into_owned();
    let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
    if stem == "mod" {
        let name = parent
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        (parent.parent().unwrap_or(Path::new("")).to_path_buf(), name)
    } else {
        (parent, stem)
    }
}

/// Sibling names after `super::` in `text` (code only: comment lines are skipped).
fn siblings_named(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim_start) {
        if line.starts_with("//") {
            continue;
        }
        for part in line.split("super::").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `super::{a, b}` names several; a lowercase name followed by `::` or used in a
            // group is a module (types are CamelCase, functions are called with `(`).
            if name.is_empty() {
                if let Some(group) = part.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or("");
                    for item in group.split(',') {
                        let item = item.trim();
                        if let Some((module, _)) = item.split_once("::") {
                            names.insert(module.trim().to_owned());
                        }
                    }
                }
            } else if part[name.len()..].starts_with("::") {
                names.insert(name);
            }
        }
    }
    names
}

#[test]
fn sibling_modules_have_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // Edges between modules of one directory: (dir) -> module -> modules it names.
    let mut graph: BTreeMap<(PathBuf, String), BTreeSet<String>> = BTreeMap::new();
    let mut modules: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    for file in &files {
        modules.insert(module_of(&src, file));
    }
    for file in &files {
        let (dir, name) = module_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let edges = graph.entry((dir.clone(), name.clone())).or_default();
        for sibling in siblings_named(&text) {
            if sibling != name && modules.contains(&(dir.clone(), sibling.clone())) {
                edges.insert(sibling);
            }
        }
    }
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 10,
        "the graph was read: {graph:?}"
    );
    // Depth-first search for a cycle among siblings.
    fn visit(
        graph: &BTreeMap<(PathBuf, String), BTreeSet<String>>,
        dir: &Path,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph
            .get(&(dir.to_path_buf(), node.to_owned()))
            .into_iter()
            .flatten()
        {
            if let Some(cycle) = visit(graph, dir, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut cycles = BTreeSet::new();
    let dirs: BTreeSet<PathBuf> = graph.keys().map(|(d, _)| d.clone()).collect();
    for dir in dirs {
        let mut done = BTreeSet::new();
        for (d, node) in graph.keys() {
            if *d == dir
                && let Some(cycle) = visit(&graph, &dir, node, &mut Vec::new(), &mut done)
            {
                cycles.insert(format!("{}: {}", dir.display(), cycle.join(" -> ")));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles between sibling modules: {cycles:#?}"
    );
}
