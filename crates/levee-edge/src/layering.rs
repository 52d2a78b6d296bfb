//! The module layering, checked: no import cycles between the edge's
//! modules (each module's `crate::x` references, outside its tests, form a
//! directed acyclic graph). A test, so that a cycle fails CI, not review.

#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};

/// Items re-exported at the crate root, by the module that defines them.
const REEXPORTS: [(&str, &str); 4] = [
    ("Shared", "shared"),
    ("Loader", "shared"),
    ("Verdict", "accesslog"),
    ("EdgeError", "lib"),
];

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("src is readable").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let module = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("")
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&f).expect("readable");
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut refs = BTreeSet::new();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
                group.split('}').next().unwrap_or("").split(',').collect()
            } else {
                vec![rest]
            };
            for n in names {
                let n = n.trim();
                let name: String = n
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    continue;
                }
                let target = REEXPORTS
                    .iter()
                    .find(|(item, _)| *item == name)
                    .map_or(name.clone(), |(_, m)| m.to_string());
                if target != module && !target.starts_with(char::is_uppercase) {
                    refs.insert(target);
                }
            }
        }
        g.entry(module).or_default().extend(refs);
    }
    let known: BTreeSet<String> = g.keys().cloned().collect();
    for v in g.values_mut() {
        v.retain(|m| known.contains(m));
    }
    g
}

#[test]
fn the_edge_modules_form_no_import_cycle() {
    let g = graph();
    assert!(g.len() > 20, "modules found: {:?}", g.keys());
    // Depth-first search with colours: grey on the stack, black done.
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match colour.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == m).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        colour.insert(m, 1);
        path.push(m);
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, g, colour, path) {
                return Some(c);
            }
        }
        path.pop();
        colour.insert(m, 2);
        None
    }
    let mut colour = BTreeMap::new();
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut colour, &mut Vec::new()) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}
