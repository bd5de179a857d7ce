//! The library's modules import each other without cycles, and the data floor (`model/`)
//! imports nothing above it.
//!
//! Read from the source, every file of the crate from `lib.rs` down, for every platform
//! (`cfg(windows)` files too; test code, `cfg(test)` modules and files, is not the library): each `crate::…`, `super::…` and `self::…` path (in code, `use` trees with braces, and
//! serde's `"crate::…"` attribute strings; comments are skipped) is resolved to a *node*: a
//! top-level module (`engine`, `path`, `sys`, …), or one file of `model/` (`model::state`, …).
//! Names the crate root or `model/mod.rs` re-export (`crate::Level`) resolve to the module
//! that defines them; those two files are hubs, not nodes. An unresolvable path fails the test,
//! so nothing is skipped silently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path from the crate root, e.g. `["path", "fanout"]`.
type ModPath = Vec<String>;

struct File {
    module: ModPath,
    tokens: Vec<String>,
}

/// The crate's files from `lib.rs` down, following `mod` declarations (and their
/// `#[path = "…"]`), whatever their `cfg` except `test`: test code is not the library (as
/// `cargo modules` sees it by default), and whole-monitor tests may sit inside a source's
/// directory for its hooks.
fn files(src: &Path) -> Vec<File> {
    let (mut out, mut seen) = (Vec::new(), BTreeSet::new());
    let mut todo = vec![(src.join("lib.rs"), Vec::new(), false)];
    while let Some((path, module, test)) = todo.pop() {
        let tokens = tokens(&strip_comments(&std::fs::read_to_string(&path).unwrap()));
        let dir = path.parent().unwrap().to_owned();
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let children_dir = if matches!(stem, "lib" | "mod") { dir.clone() } else { dir.join(stem) };
        for (at, _) in tokens.iter().enumerate().filter(|(_, t)| *t == "mod") {
            let (Some(name), Some(";")) = (tokens.get(at + 1), tokens.get(at + 2).map(String::as_str)) else {
                continue;
            };
            let attributes = attributes_before(&tokens, at);
            let file = match attributes.split("path=\"").nth(1) {
                Some(rest) => dir.join(&rest[..rest.find('"').unwrap()]),
                None => [children_dir.join(format!("{name}.rs")), children_dir.join(name).join("mod.rs")]
                    .into_iter()
                    .find(|f| f.exists())
                    .unwrap_or_else(|| panic!("no file for mod {name} in {}", path.display())),
            };
            let mut child = module.clone();
            child.push(name.clone());
            todo.push((file, child, test || is_test(&attributes)));
        }
        seen.insert(std::fs::canonicalize(&path).unwrap());
        if !test {
            out.push(File { module, tokens });
        }
    }
    // Every file is reached, so none escapes the check.
    let mut all = Vec::new();
    walk(src, &mut all);
    for path in all {
        assert!(seen.contains(&std::fs::canonicalize(&path).unwrap()), "{} is in no module", path.display());
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The outer attributes (and visibility) right before the token at `at`, joined without spaces.
fn attributes_before(tokens: &[String], at: usize) -> String {
    // The index of the bracket matching the closing one at `close`, walking back.
    let opening = |close: usize, open: &str, shut: &str| {
        let mut depth = 0;
        (0..=close).rev().find(|&k| {
            depth += (tokens[k] == shut) as i32 - (tokens[k] == open) as i32;
            depth == 0
        })
    };
    let mut start = at;
    if start > 0 && tokens[start - 1] == ")" {
        // `pub(crate)`, `pub(super)`, `pub(in …)`
        if let Some(k) = opening(start - 1, "(", ")").filter(|&k| k > 0 && tokens[k - 1] == "pub") {
            start = k - 1;
        }
    } else if start > 0 && tokens[start - 1] == "pub" {
        start -= 1;
    }
    while start > 0 && tokens[start - 1] == "]" {
        match opening(start - 1, "[", "]") {
            Some(k) if k > 0 && tokens[k - 1] == "#" => start = k - 1,
            _ => break,
        }
    }
    tokens[start..at].concat()
}

fn is_test(attributes: &str) -> bool {
    attributes.contains("cfg(test)") || attributes.contains("cfg(all(test")
}

/// The text without `//` and `/* */` comments (doc links are not imports); string literals
/// are kept, since serde's attributes name functions in them.
fn strip_comments(text: &str) -> String {
    let (mut out, mut chars) = (String::with_capacity(text.len()), text.chars().peekable());
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                out.push(c);
                out.extend(chars.next());
            }
            '"' => {
                in_string = !in_string;
                out.push(c);
            }
            // A character literal holding a quote must not open a string.
            '\'' if !in_string && chars.peek() == Some(&'"') => {
                out.push_str("'\"");
                chars.next();
            }
            '/' if !in_string && chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if !in_string && chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Tokens of the text: identifiers, `::`, and single punctuation characters. A string literal
/// is re-tokenised when it reads as a path (`"crate::x::y"`) and dropped otherwise.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if !(d.is_alphanumeric() || d == '_') {
                    break;
                }
                end = j + d.len_utf8();
                chars.next();
            }
            out.push(text[i..end].to_owned());
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            out.push("::".to_owned());
        } else if c == '"' {
            let mut literal = String::new();
            while let Some((_, d)) = chars.next() {
                match d {
                    '\\' => drop(chars.next()),
                    '"' => break,
                    d => literal.push(d),
                }
            }
            if ["crate::", "super::", "self::"].iter().any(|p| literal.starts_with(p)) {
                out.extend(tokens(&literal));
            } else {
                out.push(format!("\"{literal}\""));
            }
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// Expands the path tree starting at `tokens[at]` (after a `::`) into full paths.
fn tree(tokens: &[String], at: &mut usize, prefix: &ModPath, out: &mut Vec<ModPath>) {
    let mut path = prefix.clone();
    loop {
        match tokens.get(*at).map(String::as_str) {
            Some("{") => {
                *at += 1;
                while tokens.get(*at).is_some_and(|t| t != "}") {
                    tree(tokens, at, &path, out);
                    if tokens.get(*at).is_some_and(|t| t == ",") {
                        *at += 1;
                    }
                }
                *at += 1;
                return;
            }
            // `{self, …}` names the module the group is in.
            Some("self") if path.len() == prefix.len() && !path.is_empty() => {
                *at += 1;
                break;
            }
            Some(t) if t == "*" || t.starts_with(|c: char| c.is_alphanumeric() || c == '_') => {
                path.push(t.to_owned());
                *at += 1;
                if tokens.get(*at).is_some_and(|t| t == "::") {
                    *at += 1;
                    continue;
                }
                // `name as alias`
                if tokens.get(*at).is_some_and(|t| t == "as") {
                    *at += 2;
                }
                break;
            }
            _ => break,
        }
    }
    out.push(path);
}

/// Every absolute path a file names through `crate::`, `super::` or `self::`.
fn references(file: &File) -> Vec<ModPath> {
    let tokens = &file.tokens;
    let mut out = Vec::new();
    // Inline modules (`mod tests { … }`) open so far, with the brace depth they opened at:
    // `super::` inside one is relative to it. A `cfg(test)` one is skipped whole.
    let (mut inline, mut depth): (Vec<(String, usize)>, usize) = (Vec::new(), 0);
    let mut test_until: Option<usize> = None;
    for i in 0..tokens.len() {
        match tokens[i].as_str() {
            "{" => {
                if i >= 2 && tokens[i - 2] == "mod" {
                    inline.push((tokens[i - 1].clone(), depth));
                    if test_until.is_none() && is_test(&attributes_before(tokens, i - 2)) {
                        test_until = Some(depth);
                    }
                }
                depth += 1;
            }
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                if test_until == Some(depth) {
                    test_until = None;
                }
            }
            _ => {}
        }
        if test_until.is_some() {
            continue;
        }
        let starts_path = i == 0 || tokens[i - 1] != "::";
        if !starts_path || tokens.get(i + 1).is_none_or(|t| t != "::") {
            continue;
        }
        let here = || file.module.iter().cloned().chain(inline.iter().map(|(m, _)| m.clone())).collect::<ModPath>();
        let mut base = match tokens[i].as_str() {
            "crate" => Vec::new(),
            "self" | "super" => here(),
            _ => continue,
        };
        let mut at = i;
        while tokens.get(at).is_some_and(|t| t == "super") && tokens.get(at + 1).is_some_and(|t| t == "::") {
            base.pop().expect("super:: above the crate root");
            at += 2;
        }
        if tokens[at] == "crate" || tokens[at] == "self" {
            at += 2;
        }
        tree(tokens, &mut at, &base, &mut out);
    }
    out
}

/// The names a hub file (`lib.rs`, `model/mod.rs`) re-exports, with the module they come from.
fn reexports(file: &File) -> BTreeMap<String, ModPath> {
    let mut names = BTreeMap::new();
    let tokens = &file.tokens;
    for i in 0..tokens.len() {
        // `pub use` and `pub(crate) use` (a crate-internal re-export is still a path through
        // the hub).
        let after = match tokens.get(i + 1).map(String::as_str) {
            Some("(")
                if tokens.get(i + 2).is_some_and(|t| t == "crate") && tokens.get(i + 3).is_some_and(|t| t == ")") =>
            {
                i + 4
            }
            _ => i + 1,
        };
        if tokens[i] == "pub" && tokens.get(after).is_some_and(|t| t == "use") {
            let mut paths = Vec::new();
            let mut at = after + 1;
            tree(tokens, &mut at, &file.module, &mut paths);
            for mut path in paths {
                let name = path.pop().unwrap();
                names.insert(name, path);
            }
        }
    }
    names
}

/// The node an absolute path lands in: its top-level module, or its file for `model::…`.
fn node(path: &[String], modules: &BTreeSet<ModPath>, hubs: &BTreeMap<ModPath, BTreeMap<String, ModPath>>) -> ModPath {
    let mut path = path.to_vec();
    // Resolve re-exported names through the hubs until the path starts with a real module.
    for _ in 0..4 {
        let hub_len = (0..path.len()).rev().find(|&n| hubs.contains_key(&path[..n]));
        let Some(n) = hub_len else { break };
        let next = &path[n];
        let mut child = path[..n].to_vec();
        child.push(next.clone());
        if modules.iter().any(|m| m.starts_with(&child)) {
            break;
        }
        let Some(source) = hubs[&path[..n]].get(next) else {
            panic!("cannot resolve {} (not a module, not re-exported)", path.join("::"))
        };
        let mut resolved = source.clone();
        resolved.extend(path[n..].iter().cloned());
        path = resolved;
    }
    let depth = if path.first().is_some_and(|m| m == "model") { 2 } else { 1 };
    let node: ModPath = path.into_iter().take(depth).collect();
    assert!(modules.iter().any(|m| m.starts_with(&node)), "unknown module {}", node.join("::"));
    node
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = files(&src);
    let modules: BTreeSet<ModPath> = files.iter().map(|f| f.module.clone()).collect();
    let hub_modules = [vec![], vec!["model".to_owned()]];
    let hubs: BTreeMap<ModPath, _> =
        files.iter().filter(|f| hub_modules.contains(&f.module)).map(|f| (f.module.clone(), reexports(f))).collect();
    assert_eq!(hubs.len(), 2, "lib.rs and model/mod.rs");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !hub_modules.contains(&f.module)) {
        let from = node(&file.module, &modules, &hubs).join("::");
        let targets = edges.entry(from.clone()).or_default();
        for reference in references(file) {
            let to = node(&reference, &modules, &hubs).join("::");
            if to != from {
                targets.insert(to);
            }
        }
    }
    edges
}

/// A cycle in the graph, if any, as the list of nodes on it (the first one again at the end).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        at: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = stack.iter().position(|s| s == at) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(at.to_owned());
            return Some(cycle);
        }
        if done.contains(at) {
            return None;
        }
        stack.push(at.to_owned());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(at.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

fn show(edges: &BTreeMap<String, BTreeSet<String>>) -> String {
    edges
        .iter()
        .map(|(from, to)| format!("  {from} -> {}\n", to.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect()
}

#[test]
fn no_import_cycle_between_library_modules() {
    let edges = graph();
    // `cargo test --test module_graph -- --nocapture` prints the layering.
    println!("imports:\n{}", show(&edges));
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle: {}\nall imports:\n{}", cycle.join(" -> "), show(&edges));
    }
}

#[test]
fn the_model_imports_nothing_above_it() {
    let edges = graph();
    let upward: Vec<String> = edges
        .iter()
        .filter(|(from, _)| from.starts_with("model::"))
        .flat_map(|(from, to)| to.iter().filter(|t| !t.starts_with("model::")).map(move |t| format!("{from} -> {t}")))
        .collect();
    assert!(upward.is_empty(), "the model imports from above: {upward:?}");
    // The floor is really there and read: every file of it is imported by something above.
    let used: BTreeSet<&String> = edges.values().flatten().collect();
    for file in ["model::state", "model::snapshot", "model::event", "model::level", "model::verdict", "model::path"] {
        assert!(edges.contains_key(file) && used.contains(&file.to_owned()), "{file} missing from the graph");
    }
}

/// The checker itself finds what it must: a cycle in a made-up graph, paths in braces and
/// strings, and no paths in comments.
#[test]
fn the_checker_sees_cycles_braces_and_strings() {
    let edges: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(from, to)| (from.to_owned(), BTreeSet::from([to.to_owned()])))
        .collect();
    assert_eq!(find_cycle(&edges).unwrap(), ["a", "b", "c", "a"]);
    let file = File {
        module: vec!["model".into(), "path".into()],
        tokens: tokens(&strip_comments(concat!(
            "use crate::{x::{A, b::C}, D as E};\n/// [`crate::doc`]\n",
            "#[serde(serialize_with = \"super::event::f\")]\nlet s = \"http://x\"; // crate::comment\n",
            "#[cfg(test)]\nmod tests { use crate::skipped; }\nmod inner { use super::super::y; }\n",
        ))),
    };
    let found: Vec<String> = references(&file).iter().map(|p| p.join("::")).collect();
    assert_eq!(found, ["x::A", "x::b::C", "D", "model::event::f", "model::y"]);
}
