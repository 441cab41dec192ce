//! No import cycle between the modules of any workspace crate.
//!
//! Every crate root of every workspace member (`src/lib.rs`, `src/main.rs`,
//! `src/bin/*.rs`) is parsed with `syn`, following its `mod` declarations into files
//! and inline modules. Each path a module names (`use` items, paths in code, paths
//! inside macro calls) that starts with `crate`, `self`, `super`, a child module or a
//! name the module imported is resolved to the module it lands in, following `use`
//! re-exports on the way (so reaching a sibling through the parent's `pub use` still
//! counts as using the sibling).
//!
//! What counts as a cycle:
//! - a module using one of its ancestors or descendants is a tree edge and never
//!   counts: a parent wires its children together, and a child may use what its
//!   parent defines (`rib/mod.rs` defines `Rib`, `rib/export.rs` uses `super::Rib`);
//!   so a parent that uses a child that uses the parent is not a cycle;
//! - any other use is lifted to the two siblings under the nearest common ancestor
//!   (`rib::export::tests` using `rib::loc_rib` is `rib::export -> rib::loc_rib`);
//! - a cycle is a cycle among siblings: `rib::loc_rib -> rib::export -> rib::loc_rib`.
//!
//! Each cycle is reported as one line, `crate: a -> b -> a`, followed by the uses
//! that make its edges.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// The workspace root (this package is one of its members).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.contains("[workspace]"))
        })
        .map(Path::to_path_buf)
        .unwrap_or(manifest)
}

/// One crate to check: its label and root file.
struct CrateRoot {
    label: String,
    file: PathBuf,
}

/// The crate roots of every workspace member.
fn crate_roots(root: &Path) -> Vec<CrateRoot> {
    let manifest: toml::Table = read(&root.join("Cargo.toml"))
        .parse()
        .unwrap_or_else(|error| panic!("{}: {error}", root.join("Cargo.toml").display()));
    let members = manifest
        .get("workspace")
        .and_then(|workspace| workspace.get("members"))
        .and_then(toml::Value::as_array)
        .unwrap_or_else(|| {
            panic!(
                "{}: no workspace.members",
                root.join("Cargo.toml").display()
            )
        });
    let mut roots = Vec::new();
    for member in members {
        let Some(member) = member.as_str() else {
            panic!(
                "{}: a member that is not a string",
                root.join("Cargo.toml").display()
            );
        };
        let src = root.join(member).join("src");
        for (file, kind) in [("lib.rs", "lib"), ("main.rs", "main")] {
            if src.join(file).is_file() {
                roots.push(CrateRoot {
                    label: format!("{member} ({kind})"),
                    file: src.join(file),
                });
            }
        }
        let Ok(bins) = fs::read_dir(src.join("bin")) else {
            continue;
        };
        let mut bins: Vec<PathBuf> = bins.flatten().map(|entry| entry.path()).collect();
        bins.sort();
        for bin in bins {
            let file = if bin.is_dir() {
                bin.join("main.rs")
            } else {
                bin.clone()
            };
            if file.extension().is_some_and(|ext| ext == "rs") && file.is_file() {
                let name = bin.file_stem().map(|s| s.to_string_lossy().into_owned());
                roots.push(CrateRoot {
                    label: format!("{member} (bin {})", name.unwrap_or_default()),
                    file,
                });
            }
        }
    }
    roots
}

fn read(file: &Path) -> String {
    fs::read_to_string(file).unwrap_or_else(|error| panic!("{}: {error}", file.display()))
}

/// A path as written, in the module where it was written.
#[derive(Clone, Debug)]
struct Written {
    segments: Vec<String>,
    /// How it is shown in a report: `rib/export.rs uses super::loc_rib::Rib`.
    shown: String,
}

/// One module of a crate.
#[derive(Default)]
struct Module {
    /// Names from the crate root (`["rib", "export"]`); empty for the root.
    path: Vec<String>,
    parent: Option<usize>,
    children: HashMap<String, usize>,
    /// Names bound by the module's own `use` items, to the path they import.
    bindings: HashMap<String, Vec<String>>,
    /// Modules named by glob imports (`use super::*`), as written.
    globs: Vec<Vec<String>>,
    /// Every path the module names.
    uses: Vec<Written>,
}

/// The module tree of one crate.
#[derive(Default)]
struct Tree {
    modules: Vec<Module>,
}

impl Tree {
    /// Loads the module tree rooted at `file`.
    fn load(file: &Path) -> Result<Tree, String> {
        let mut tree = Tree::default();
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        tree.add_file(None, String::new(), file, dir)?;
        Ok(tree)
    }

    fn add_file(
        &mut self,
        parent: Option<usize>,
        name: String,
        file: &Path,
        children_dir: PathBuf,
    ) -> Result<usize, String> {
        let parsed = syn::parse_file(&read(file))
            .map_err(|error| format!("{}: does not parse: {error}", file.display()))?;
        self.add_module(parent, name, file, &parsed.items, children_dir)
    }

    fn add_module(
        &mut self,
        parent: Option<usize>,
        name: String,
        file: &Path,
        items: &[syn::Item],
        children_dir: PathBuf,
    ) -> Result<usize, String> {
        let index = self.modules.len();
        let mut path = parent
            .map(|p| self.modules[p].path.clone())
            .unwrap_or_default();
        if parent.is_some() {
            path.push(name.clone());
        }
        self.modules.push(Module {
            path,
            parent,
            ..Module::default()
        });
        if let Some(parent) = parent {
            self.modules[parent].children.insert(name, index);
        }
        let shown_file = file
            .components()
            .skip_while(|c| c.as_os_str() != "src")
            .skip(1)
            .collect::<PathBuf>();
        let mut collector = Collector {
            file: shown_file.display().to_string(),
            bindings: HashMap::new(),
            globs: Vec::new(),
            uses: Vec::new(),
            depth: 0,
        };
        for item in items {
            match item {
                syn::Item::Mod(module) => {
                    let child = module.ident.to_string();
                    let dir = children_dir.join(&child);
                    match &module.content {
                        Some((_, inner)) => {
                            self.add_module(Some(index), child, file, inner, dir)?;
                        }
                        None => {
                            let child_file = module_file(file, module, &children_dir)?;
                            let grand_dir = if child_file.ends_with("mod.rs") {
                                child_file
                                    .parent()
                                    .map(Path::to_path_buf)
                                    .unwrap_or_default()
                            } else {
                                dir
                            };
                            self.add_file(Some(index), child, &child_file, grand_dir)?;
                        }
                    }
                }
                other => collector.visit_item(other),
            }
        }
        let module = &mut self.modules[index];
        module.bindings = collector.bindings;
        module.globs = collector.globs;
        module.uses = collector.uses;
        Ok(index)
    }

    /// The module a path written in `module` lands in; None when it leaves the crate
    /// (std, a dependency) or names a local item of `module` itself.
    fn resolve(&self, module: usize, segments: &[String], depth: usize) -> Option<usize> {
        if depth > 16 || segments.is_empty() {
            return None;
        }
        let mut base = module;
        let mut rest = segments;
        match segments[0].as_str() {
            "crate" => {
                base = 0;
                rest = &segments[1..];
            }
            "self" => rest = &segments[1..],
            "super" => {
                while rest.first().is_some_and(|s| s == "super") {
                    base = self.modules[base].parent?;
                    rest = &rest[1..];
                }
            }
            first => {
                if self.modules[module].children.contains_key(first) {
                } else if let Some(bound) = self.modules[module].bindings.get(first) {
                    let mut full = bound.clone();
                    full.extend_from_slice(&segments[1..]);
                    return self.resolve(module, &full, depth + 1);
                } else {
                    // Through a glob import (`use super::*` in a test module).
                    return self.modules[module].globs.iter().find_map(|glob| {
                        let target = self.resolve(module, glob, depth + 1)?;
                        let seen = &self.modules[target];
                        if seen.children.contains_key(first) || seen.bindings.contains_key(first) {
                            let mut full = glob.clone();
                            full.extend_from_slice(segments);
                            self.resolve(module, &full, depth + 1)
                        } else {
                            None
                        }
                    });
                }
            }
        }
        self.descend(base, rest, depth)
    }

    /// Follows `rest` down from `base` through child modules and `use` bindings.
    fn descend(&self, mut base: usize, rest: &[String], depth: usize) -> Option<usize> {
        let mut rest = rest;
        while let Some(first) = rest.first() {
            if let Some(&child) = self.modules[base].children.get(first) {
                base = child;
                rest = &rest[1..];
            } else if let Some(bound) = self.modules[base].bindings.get(first) {
                let mut full = bound.clone();
                full.extend_from_slice(&rest[1..]);
                // A binding to something outside the crate still is a use of `base`.
                return self.resolve(base, &full, depth + 1).or(Some(base));
            } else {
                break;
            }
        }
        Some(base)
    }

    fn is_ancestor(&self, ancestor: usize, mut module: usize) -> bool {
        loop {
            if module == ancestor {
                return true;
            }
            match self.modules[module].parent {
                Some(parent) => module = parent,
                None => return false,
            }
        }
    }

    /// The chain from the root down to `module`.
    fn chain(&self, mut module: usize) -> Vec<usize> {
        let mut chain = vec![module];
        while let Some(parent) = self.modules[module].parent {
            chain.push(parent);
            module = parent;
        }
        chain.reverse();
        chain
    }

    /// The sibling edge a use from `from` to `to` makes, or None for a tree edge.
    fn lift(&self, from: usize, to: usize) -> Option<(usize, usize)> {
        if self.is_ancestor(from, to) || self.is_ancestor(to, from) {
            return None;
        }
        let (a, b) = (self.chain(from), self.chain(to));
        let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        Some((a[common], b[common]))
    }

    fn name(&self, module: usize) -> String {
        let path = &self.modules[module].path;
        if path.is_empty() {
            "crate".to_string()
        } else {
            path.join("::")
        }
    }

    /// Every cycle among siblings, one line each.
    fn cycles(&self, label: &str) -> Vec<String> {
        // Sibling edges with the uses that make them.
        let mut edges: BTreeMap<usize, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
        for (from, module) in self.modules.iter().enumerate() {
            for written in &module.uses {
                let Some(to) = self.resolve(from, &written.segments, 0) else {
                    continue;
                };
                if let Some((a, b)) = self.lift(from, to) {
                    edges
                        .entry(a)
                        .or_default()
                        .entry(b)
                        .or_default()
                        .push(written.shown.clone());
                }
            }
        }
        let mut lines = Vec::new();
        for component in strongly_connected(&edges) {
            if component.len() < 2 {
                continue;
            }
            let cycle = shortest_cycle(&edges, &component);
            let names: Vec<String> = cycle.iter().map(|&m| self.name(m)).collect();
            let because: Vec<String> = cycle
                .windows(2)
                .filter_map(|pair| edges.get(&pair[0])?.get(&pair[1])?.first().cloned())
                .collect();
            let mut line = format!("{label}: {}", names.join(" -> "));
            let others: Vec<String> = component
                .iter()
                .filter(|m| !cycle.contains(m))
                .map(|&m| self.name(m))
                .collect();
            if !others.is_empty() {
                line.push_str(&format!(" (tangled with {})", others.join(", ")));
            }
            line.push_str(&format!("   [{}]", because.join("; ")));
            lines.push(line);
        }
        lines
    }
}

/// The file of `mod name;` declared in `file`.
fn module_file(file: &Path, module: &syn::ItemMod, children_dir: &Path) -> Result<PathBuf, String> {
    for attribute in &module.attrs {
        if attribute.path().is_ident("path")
            && let syn::Meta::NameValue(value) = &attribute.meta
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(path),
                ..
            }) = &value.value
        {
            let dir = file.parent().unwrap_or(Path::new("."));
            return Ok(dir.join(path.value()));
        }
    }
    let name = module.ident.to_string();
    let flat = children_dir.join(format!("{name}.rs"));
    let nested = children_dir.join(&name).join("mod.rs");
    if flat.is_file() {
        Ok(flat)
    } else if nested.is_file() {
        Ok(nested)
    } else {
        Err(format!(
            "{}: `mod {name};` has no file ({} or {})",
            file.display(),
            flat.display(),
            nested.display()
        ))
    }
}

/// Collects the `use` items and paths of one module (not of its child modules).
struct Collector {
    file: String,
    bindings: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    uses: Vec<Written>,
    /// Nesting in function bodies and blocks: `use` there binds no module name.
    depth: usize,
}

impl Collector {
    fn record(&mut self, segments: Vec<String>) {
        let shown = format!("{} uses {}", self.file, segments.join("::"));
        self.uses.push(Written { segments, shown });
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let name = name.ident.to_string();
                let (bound, full) = if name == "self" {
                    (prefix.last().cloned().unwrap_or_default(), prefix.clone())
                } else {
                    let mut full = prefix.clone();
                    full.push(name.clone());
                    (name, full)
                };
                self.bind(bound, full);
            }
            syn::UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                if rename.ident != "self" {
                    full.push(rename.ident.to_string());
                }
                self.bind(rename.rename.to_string(), full);
            }
            syn::UseTree::Glob(_) => {
                if self.depth == 0 {
                    self.globs.push(prefix.clone());
                }
                self.record(prefix.clone());
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    fn bind(&mut self, name: String, full: Vec<String>) {
        if self.depth == 0 && name != "_" {
            self.bindings.insert(name, full.clone());
        }
        self.record(full);
    }

    /// Paths inside macro calls: runs of `a::b::c` in the tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let mut run: Vec<String> = Vec::new();
        let mut colons = 0;
        for token in tokens {
            match token {
                TokenTree::Ident(ident) => {
                    if colons != 2 && !run.is_empty() {
                        self.token_run(std::mem::take(&mut run));
                    }
                    run.push(ident.to_string());
                    colons = 0;
                }
                TokenTree::Punct(punct) if punct.as_char() == ':' && colons < 2 => colons += 1,
                TokenTree::Group(group) => {
                    self.token_run(std::mem::take(&mut run));
                    colons = 0;
                    self.tokens(group.stream());
                }
                _ => {
                    self.token_run(std::mem::take(&mut run));
                    colons = 0;
                }
            }
        }
        self.token_run(run);
    }

    fn token_run(&mut self, run: Vec<String>) {
        if run.len() >= 2 {
            self.record(run);
        }
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // Nested modules are modules of their own (`Tree::add_module`); inside a
        // function body they are left out.
    }

    fn visit_block(&mut self, block: &'ast syn::Block) {
        self.depth += 1;
        syn::visit::visit_block(self, block);
        self.depth -= 1;
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.segments.len() >= 2 {
            self.record(path.segments.iter().map(|s| s.ident.to_string()).collect());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {
        // `pub(in crate::a)` restricts who may use an item; it uses nothing.
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.tokens(mac.tokens.clone());
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {
        // Doc links, derives and cfgs name no module.
    }
}

/// Tarjan's strongly connected components of the sibling graph.
fn strongly_connected(edges: &BTreeMap<usize, BTreeMap<usize, Vec<String>>>) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a BTreeMap<usize, BTreeMap<usize, Vec<String>>>,
        index: HashMap<usize, usize>,
        low: HashMap<usize, usize>,
        stack: Vec<usize>,
        on_stack: BTreeSet<usize>,
        components: Vec<Vec<usize>>,
    }
    fn visit(state: &mut State, node: usize) {
        let index = state.index.len();
        state.index.insert(node, index);
        state.low.insert(node, index);
        state.stack.push(node);
        state.on_stack.insert(node);
        let next: Vec<usize> = state
            .edges
            .get(&node)
            .map(|targets| targets.keys().copied().collect())
            .unwrap_or_default();
        for target in next {
            if !state.index.contains_key(&target) {
                visit(state, target);
                let low = state.low[&node].min(state.low[&target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(&target) {
                let low = state.low[&node].min(state.index[&target]);
                state.low.insert(node, low);
            }
        }
        if state.low[&node] == state.index[&node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(&top);
                component.push(top);
                if top == node {
                    break;
                }
            }
            component.sort_unstable();
            state.components.push(component);
        }
    }
    let mut state = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    let nodes: BTreeSet<usize> = edges
        .iter()
        .flat_map(|(from, targets)| std::iter::once(*from).chain(targets.keys().copied()))
        .collect();
    for node in nodes {
        if !state.index.contains_key(&node) {
            visit(&mut state, node);
        }
    }
    state.components
}

/// The shortest cycle through the first node of a strongly connected component,
/// staying inside it: `[a, b, a]`.
fn shortest_cycle(
    edges: &BTreeMap<usize, BTreeMap<usize, Vec<String>>>,
    component: &[usize],
) -> Vec<usize> {
    let start = component[0];
    let inside: BTreeSet<usize> = component.iter().copied().collect();
    let mut came_from: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in edges.get(&node).map(|t| t.keys()).into_iter().flatten() {
            if !inside.contains(&next) {
                continue;
            }
            if next == start {
                let mut cycle = vec![start, node];
                let mut at = node;
                while at != start {
                    at = came_from[&at];
                    cycle.push(at);
                }
                cycle.reverse();
                return cycle;
            }
            if let std::collections::hash_map::Entry::Vacant(entry) = came_from.entry(next) {
                entry.insert(node);
                queue.push_back(next);
            }
        }
    }
    component.to_vec()
}

/// The cycles of the crate rooted at `file`, or the reason it could not be read.
fn check_crate(label: &str, file: &Path) -> Vec<String> {
    match Tree::load(file) {
        Ok(tree) => tree.cycles(label),
        Err(error) => vec![format!("{label}: {error}")],
    }
}

#[test]
fn no_import_cycle_between_modules() {
    let root = workspace_root();
    let roots = crate_roots(&root);
    assert!(
        roots.iter().any(|r| r.label.starts_with("bgpd")),
        "no crate found under {}",
        root.display()
    );
    let mut problems = Vec::new();
    for crate_root in &roots {
        problems.extend(check_crate(&crate_root.label, &crate_root.file));
    }
    assert!(
        problems.is_empty(),
        "import cycles between modules:\n{}",
        problems.join("\n")
    );
}

/// Writes `files` (path, text) under a new directory and checks the crate rooted at
/// its `lib.rs`.
fn check_files(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap_or_else(|error| panic!("temporary directory: {error}"));
    for (path, text) in files {
        let file = dir.path().join(path);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent).unwrap_or_else(|error| panic!("{path}: {error}"));
        }
        fs::write(&file, text).unwrap_or_else(|error| panic!("{path}: {error}"));
    }
    check_crate("example", &dir.path().join("lib.rs"))
        .into_iter()
        .map(|line| line.split("   [").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn siblings_that_use_each_other_are_a_cycle() {
    let found = check_files(&[
        ("lib.rs", "mod rib;"),
        ("rib/mod.rs", "mod export; mod loc_rib; pub struct Rib;"),
        (
            "rib/loc_rib.rs",
            "use super::export::may_export; pub fn change() {}",
        ),
        (
            "rib/export.rs",
            "pub fn may_export() { super::loc_rib::change() }",
        ),
    ]);
    assert_eq!(
        found,
        ["example: rib::export -> rib::loc_rib -> rib::export"]
    );
}

#[test]
fn a_parent_and_its_children_are_no_cycle() {
    // The parent defines the type and re-exports a child; children use the parent.
    let found = check_files(&[
        ("lib.rs", "mod rib; use rib::Rib;"),
        (
            "rib/mod.rs",
            "mod task; mod export; pub struct Rib; pub use task::run;",
        ),
        (
            "rib/task.rs",
            "use super::Rib; use super::export::rule; pub fn run(_: Rib) {}",
        ),
        (
            "rib/export.rs",
            "use crate::rib::Rib; pub fn rule(_: &Rib) {}",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_sibling_reached_through_the_parent_counts() {
    // `a` uses `b` through the parent's re-export, `b` uses `a`: still a cycle.
    let found = check_files(&[
        ("lib.rs", "mod a; mod b; pub use b::B;"),
        ("a.rs", "use crate::B; pub struct A;"),
        ("b.rs", "pub struct B(crate::a::A);"),
    ]);
    assert_eq!(found, ["example: a -> b -> a"]);
}

#[test]
fn uses_inside_nested_and_test_modules_count_for_their_top_sibling() {
    // A test module of `a` using `b`, and a macro call in `b` naming `a`.
    let found = check_files(&[
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "pub fn f() {}\n#[cfg(test)]\nmod tests { use super::super::b::g; }",
        ),
        ("b.rs", "pub fn g() { println!(\"{:?}\", crate::a::f()) }"),
    ]);
    assert_eq!(found, ["example: a -> b -> a"]);
}

#[test]
fn a_missing_module_file_is_reported() {
    let found = check_files(&[("lib.rs", "mod gone;")]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("`mod gone;` has no file"), "{found:?}");
}
