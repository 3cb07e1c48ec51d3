//! The core's modules import each other one way only: `spec` at the bottom, `gpu` on `spec`
//! alone, nothing importing back up. Read off the sources (`crate::<module>` paths outside
//! comments); `cargo test -p lens2logit --lib module_graph` shows the graph and fails on a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of `crate/` (the facade, the lab log's database, the server and the CLI
/// are packages of their own).
fn modules(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            let is_module = e.path().is_dir() || name.ends_with(".rs");
            (is_module
                && !["lib", "web", "cli", "serve", "labdb", "module_graph"]
                    .contains(&stem.as_str()))
            .then_some(stem)
        })
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The modules `source` names as `crate::<module>`, one of `known`.
fn imports(source: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group[..group.find('}').unwrap_or(group.len())]
                .split(',')
                .map(|n| n.trim().split("::").next().unwrap_or(""))
                .collect(),
            None => vec![rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")],
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| known.contains(*n))
                .map(String::from),
        );
    }
    found
}

/// Module -> the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crate");
    let known = modules(&root);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in &known {
        let mut files = Vec::new();
        let dir = root.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        }
        let file = root.join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
        let entry = edges.entry(module.clone()).or_default();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            entry.extend(imports(&text, &known).into_iter().filter(|m| m != module));
        }
    }
    edges
}

/// A cycle through `graph`, if any, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_import_one_way_and_gpu_only_the_contracts() {
    let graph = graph();
    for (module, imports) in &graph {
        eprintln!(
            "{module} -> {}",
            imports.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    assert_eq!(
        cycle(&graph),
        None,
        "the modules import each other in a cycle"
    );
    let gpu: Vec<&String> = graph["gpu"]
        .iter()
        .filter(|m| *m != "spec" && *m != "error")
        .collect();
    assert!(
        gpu.is_empty(),
        "gpu imports {gpu:?}: only spec (and error) belong below it"
    );
    assert!(
        graph["spec"].iter().all(|m| m == "error"),
        "spec imports {:?}",
        graph["spec"]
    );
}

/// The README's list of the modules and what each imports, as the graph has it.
#[test]
fn the_readme_draws_the_graph_the_sources_have() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block = readme
        .split_once("<!-- modules: cargo test -p lens2logit --lib module_graph -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- /modules -->"))
        .map(|(list, _)| list)
        .expect("the README's module list between its markers");
    let mut drawn: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in block.lines().filter(|l| l.starts_with("- ")) {
        let (modules, imports) = line[2..].split_once(" → ").expect("`module` → imports");
        let imports: BTreeSet<String> = match imports {
            "nothing" => BTreeSet::new(),
            list => list.split(", ").map(String::from).collect(),
        };
        for module in modules.split(", ") {
            drawn.insert(module.trim_matches('`').to_string(), imports.clone());
        }
    }
    assert_eq!(drawn, graph(), "update the README's module list");
}

#[test]
fn a_cycle_is_found() {
    let g = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycle(&g), Some(vec!["a".into(), "b".into(), "a".into()]));
    let known = BTreeSet::from(["isp".to_string(), "gpu".to_string()]);
    let text =
        "use crate::{isp::param, Error};\n// crate::gpu in a comment\nlet x = crate::gpu::Gpu;";
    assert_eq!(imports(text, &known), known);
}
