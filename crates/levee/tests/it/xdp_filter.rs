//! The XDP packet filter on a real interface: `levee xdp` attaches it to the
//! loopback of a network namespace the test creates (generic mode), a
//! blocked source is dropped at the packet level while another address
//! still gets answers, protection stays between controller runs, counters
//! say why, and `detach` restores traffic. Needs root (CI runs as root);
//! skipped with a message elsewhere.

use super::*;

fn sh(args: &[&str]) -> (i32, String, String) {
    run(args[0], &args[1..])
}

/// The packet count of one reason in `levee xdp stats` output.
pub(crate) fn stat(stats: &str, reason: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(reason))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn blocked_source_is_dropped_at_l3_and_detach_restores_it() {
    let ns = format!("lvx{}", std::process::id());
    if sh(&["ip", "netns", "add", &ns]).0 != 0 {
        eprintln!("skipped: cannot create a network namespace (needs root)");
        return;
    }
    // A bpffs of our own, outside /sys (which `ip netns exec` remounts).
    let bpf = scratch("xdp-bpffs");
    if sh(&["mount", "-t", "bpf", "bpf", bpf.to_str().unwrap()]).0 != 0 {
        sh(&["ip", "netns", "del", &ns]);
        eprintln!("skipped: cannot mount bpffs");
        return;
    }
    let pins = bpf.join("levee");
    let pins = pins.to_str().unwrap();
    let levee = env!("CARGO_BIN_EXE_levee");
    let cleanup = |origin: Option<&mut std::process::Child>| {
        if let Some(o) = origin {
            let _ = o.kill();
            let _ = o.wait();
        }
        sh(&["ip", "netns", "del", &ns]);
        sh(&["umount", bpf.to_str().unwrap()]);
    };
    sh(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
    let mut origin = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            levee,
            "demo-origin",
            "--listen",
            "127.0.0.1:18080",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let get = |src: &str| {
        sh(&[
            "ip",
            "netns",
            "exec",
            &ns,
            "curl",
            "-s",
            "-m",
            "2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--interface",
            src,
            "http://127.0.0.1:18080/healthz",
        ])
        .1
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while get("127.0.0.9") != "200" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, err) = sh(&[
        "ip",
        "netns",
        "exec",
        &ns,
        levee,
        "xdp",
        "attach",
        "--iface",
        "lo",
        "--mode",
        "generic",
        "--pin-dir",
        pins,
    ]);
    if code != 0 {
        cleanup(Some(&mut origin));
        if err.contains("load") || err.contains("Operation not permitted") {
            eprintln!("skipped: the kernel refused the XDP program here: {err}");
            return;
        }
        panic!("attach failed: {out}{err}");
    }
    assert_eq!(get("127.0.0.9"), "200", "attached, nothing blocked yet");
    // The controller has exited; the filter is still there. Block one source.
    let (code, out, err) = sh(&[levee, "xdp", "block", "127.0.0.9", "--pin-dir", pins]);
    assert_eq!(code, 0, "{out}{err}");
    let t = Instant::now();
    assert_ne!(get("127.0.0.9"), "200", "blocked source still answered");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(get("127.0.0.10"), "200", "another source is unaffected");
    let (_, stats, _) = sh(&[
        levee,
        "xdp",
        "stats",
        "--interval-ms",
        "50",
        "--pin-dir",
        pins,
    ]);
    let blocked = stat(&stats, "blocked_address");
    assert!(blocked >= 1, "{stats}");
    let (_, list, _) = sh(&[levee, "xdp", "list", "--pin-dir", pins]);
    assert!(list.contains("127.0.0.9"), "{list}");
    // Bad input is refused with a clear message: an unknown interface, no
    // rights (as nobody), a bad address.
    let (code, _, err) = sh(&[
        levee,
        "xdp",
        "attach",
        "--iface",
        "nosuch0",
        "--pin-dir",
        pins,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("no interface \"nosuch0\""), "{err}");
    if sh(&["which", "setpriv"]).0 == 0 {
        let (code, _, err) = sh(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            levee,
            "xdp",
            "stats",
            "--pin-dir",
            pins,
        ]);
        assert_ne!(code, 0);
        assert!(err.contains("needs root"), "{err}");
    }
    let (code, _, err) = sh(&[levee, "xdp", "block", "127.0.0.300", "--pin-dir", pins]);
    assert_ne!(code, 0);
    assert!(err.contains("not an address or CIDR"), "{err}");
    // Unblock, then detach: traffic flows, pins are gone.
    assert_eq!(
        sh(&[levee, "xdp", "unblock", "127.0.0.9", "--pin-dir", pins]).0,
        0
    );
    assert_eq!(get("127.0.0.9"), "200");
    sh(&[levee, "xdp", "block", "127.0.0.9", "--pin-dir", pins]);
    let (code, out, err) = sh(&[levee, "xdp", "detach", "--pin-dir", pins]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(get("127.0.0.9"), "200", "detach did not remove the filter");
    let (code, _, err) = sh(&[levee, "xdp", "stats", "--pin-dir", pins]);
    assert_ne!(code, 0);
    assert!(err.contains("levee xdp attach"), "{err}");
    cleanup(Some(&mut origin));
}
