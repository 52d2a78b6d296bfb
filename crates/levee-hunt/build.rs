//! Embeds the bundled SigmaHQ rules (`rules/sigmahq`, refreshed by
//! `scripts/update-sigma-bundle.sh`): a table of (path, text), the
//! snapshot's description and the Detection Rule License's text.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
            out.push(p);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("rules/sigmahq");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    for sub in ["rules", "rules-emerging-threats", "rules-threat-hunting"] {
        let d = root.join(sub);
        println!("cargo:rerun-if-changed={}", d.display());
        if d.is_dir() {
            walk(&d, &mut files)?;
        }
    }
    files.sort();
    let mut code = String::from("/// The bundled rules: (path in SigmaHQ/sigma, text).\npub(crate) const RULES: &[(&str, &str)] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&root)?.to_string_lossy().replace('\\', "/");
        writeln!(
            code,
            "    ({rel:?}, include_str!({:?})),",
            f.display().to_string()
        )?;
    }
    code.push_str("];\n");
    for (name, file) in [
        ("SNAPSHOT", "SNAPSHOT"),
        ("LICENCE", "LICENSE.Detection.Rules.md"),
    ] {
        let p = root.join(file);
        println!("cargo:rerun-if-changed={}", p.display());
        if p.is_file() {
            writeln!(
                code,
                "pub(crate) const {name}: &str = include_str!({:?});",
                p.display().to_string()
            )?;
        } else {
            writeln!(code, "pub(crate) const {name}: &str = \"\";")?;
        }
    }
    std::fs::write(
        PathBuf::from(std::env::var("OUT_DIR")?).join("sigma_bundle.rs"),
        code,
    )?;
    Ok(())
}
