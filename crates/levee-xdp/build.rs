//! Compiles `bpf/levee_xdp.c` (and the benchmark's reference programs in
//! `bpf/bench.c`) with clang for the BPF target. Without clang
//! the crate still builds (an empty object), and loading says what to install.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    build("levee_xdp");
    build("bench");
}

fn build(name: &str) {
    println!("cargo:rerun-if-changed=bpf/{name}.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join(format!("{name}.o"));
    let src = format!("bpf/{name}.c");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let status = Command::new("clang")
        .args([
            "-O2", "-mcpu=v3", "-g", "-target", "bpf", "-Wall", "-I", &multiarch, "-c", &src, "-o",
        ])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => {
            println!("cargo:warning=levee-xdp: {name}.c was not built ({other:?}); install clang, llvm and libbpf-dev (scripts/install-test-deps.sh does)");
            let _ = std::fs::write(&out, b"");
        }
    }
}
