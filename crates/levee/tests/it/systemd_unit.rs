//! The systemd unit shipped in `dist/systemd/levee.service` parses
//! (`systemd-analyze verify`, with no warning), runs the edge without root
//! with exactly the capabilities it needs, and its commands are ones this
//! binary accepts.

use super::*;

#[test]
fn the_systemd_unit_parses_and_grants_only_what_is_needed() {
    let unit = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dist/systemd/levee.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for want in [
        "User=levee",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_BPF CAP_NET_ADMIN",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_BPF CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.lines().any(|l| l == want), "{want} is not in the unit");
    }
    // Its commands are this binary's.
    let bin = env!("CARGO_BIN_EXE_levee");
    for line in text.lines().filter(|l| l.starts_with("ExecStart")) {
        let args: Vec<&str> = line
            .split_once('=')
            .unwrap()
            .1
            .split_whitespace()
            .skip(1)
            .collect();
        assert_eq!(args.get(1), Some(&"--config"), "{line}");
        let (code, out, err) = run(bin, &[args[0], "--help"]);
        assert_eq!(code, 0, "{line}: {out}{err}");
        assert!(out.contains("--config"), "{line}: {out}");
    }
    let (code, _, _) = run("sh", &["-c", "command -v systemd-analyze"]);
    if code != 0 {
        eprintln!("skipped: systemd-analyze is not installed (the unit's text was checked)");
        return;
    }
    let dir = scratch("systemd-unit");
    let here = dir.join("levee.service");
    std::fs::write(&here, text.replace("/usr/local/bin/levee", bin)).unwrap();
    let (code, out, err) = run("systemd-analyze", &["verify", here.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !format!("{out}{err}").contains("levee.service"),
        "systemd-analyze warns about the unit: {out}{err}"
    );
}
