//! SYN and ACK floods against the XDP SYN proxy, on the veth lab of
//! `xdp_edge` (two namespaces the test creates). The server side runs the
//! host settings `levee xdp synproxy-rules` prints (nftables SYNPROXY,
//! sysctls) and a `levee serve` with `[xdp] synproxy_ports`, in native mode. A legitimate
//! client completes its handshakes through XDP's cookie SYN-ACKs and the
//! kernel's SYNPROXY while hping3 floods SYNs and ACKs from random spoofed
//! sources: every SYN is answered from XDP (the server never holds a
//! half-open connection), every bogus ACK is dropped.
//!
//! Needs root, hping3, nftables and XDP; skipped with a message elsewhere.

use super::xdp_edge::{start_filtered_edge, Lab, LEGIT, LEGIT6, SRV, SRV6};
use super::xdp_filter::stat;
use super::*;

fn in_srv(lab: &Lab, args: &[&str]) -> (i32, String, String) {
    run("ip", &[&["netns", "exec", &lab.srv], args].concat())
}

#[test]
fn syn_and_ack_floods_are_answered_from_xdp_while_clients_connect() {
    let Some(mut lab) = Lab::new() else {
        return;
    };
    let levee = env!("CARGO_BIN_EXE_levee");
    // The host settings, exactly as levee prints them.
    let (_, rules, _) = run(levee, &["xdp", "synproxy-rules", "--port", "8080"]);
    let (code, out, err) = in_srv(&lab, &["sh", "-c", &rules]);
    if code != 0 {
        eprintln!("skipped: the SYNPROXY host settings failed here: {out}{err}");
        return;
    }
    let dir = scratch("syn-flood");
    // Native mode on veth: the SYN-ACKs XDP sends back (XDP_TX) reach the
    // client only when the client's end of the pair runs an XDP program too
    // (a veth quirk; physical NICs need nothing). Give it one that passes all.
    let pass = dir.join("bench.o");
    std::fs::write(&pass, levee_xdp::BENCH_PROGRAMS).unwrap();
    let peer = lab.iface.replacen("lva", "lvb", 1);
    let (code, _, err) = run(
        "ip",
        &[
            "-n",
            &lab.cli,
            "link",
            "set",
            "dev",
            &peer,
            "xdpdrv",
            "obj",
            pass.to_str().unwrap(),
            "program",
            "empty_pass",
        ],
    );
    assert_eq!(code, 0, "XDP pass program on the client's veth: {err}");
    lab.spawn_in_srv(
        &[levee, "demo-origin", "--listen", "127.0.0.1:18080"],
        Stdio::null(),
    );
    let Some((_, _, said)) =
        start_filtered_edge(&mut lab, &dir, "mode = \"native\"\nsynproxy_ports = [8080]")
    else {
        return;
    };
    assert!(said.contains("XDP SYN proxy on ports [8080]"), "{said}");
    assert!(!said.contains("warning"), "{said}");
    // The first request already went through the proxied handshake.
    let st = lab.stats();
    assert!(stat(&st, "synproxy_synack") >= 1, "{st}");
    assert!(stat(&st, "synproxy_cookie_ok") >= 1, "{st}");

    // IPv6 goes through the same proxied handshake.
    let (_, code6) = lab.get_url(LEGIT6, &format!("http://[{SRV6}]:8080/"), "3");
    assert_eq!(code6, "200", "IPv6 through the SYN proxy");
    let st6 = lab.stats();
    assert!(
        stat(&st6, "synproxy_synack") > stat(&st, "synproxy_synack"),
        "{st6}"
    );
    assert!(
        stat(&st6, "synproxy_cookie_ok") > stat(&st, "synproxy_cookie_ok"),
        "{st6}"
    );
    let st = st6;
    let synacks = stat(&st, "synproxy_synack");
    let bad = stat(&st, "synproxy_bad_ack");
    let (codes, (syns, acks, half_open)) = lab.browse_during(|| {
        let syns = lab.spoofed_syn_flood("20000");
        // Half-open connections on the server right after the SYN flood
        // (the legitimate client's own handshake may be in flight).
        let (_, ss, _) = in_srv(&lab, &["ss", "-Htn", "state", "syn-recv"]);
        let flood: Vec<&str> = ss.lines().filter(|l| !l.contains(LEGIT)).collect();
        let acks = lab.hping(&[
            "-A",
            "-p",
            "8080",
            "--rand-source",
            "-c",
            "5000",
            "-i",
            "u50",
            SRV,
        ]);
        (syns, acks, flood.len())
    });
    let st = lab.stats();
    let answered = stat(&st, "synproxy_synack") - synacks;
    let dropped = stat(&st, "synproxy_bad_ack") - bad;
    eprintln!(
        "SYN flood: {syns} sent, {answered} answered from XDP; ACK flood: {acks} sent, {dropped} dropped; {half_open} half-open; legit {} requests",
        codes.len()
    );
    assert!(
        answered * 100 >= syns * 95,
        "{answered} of {syns} SYNs answered\n{st}"
    );
    // The legitimate client's own handshakes count too: at least the flood's ACKs.
    assert!(
        dropped * 100 >= acks * 95,
        "{dropped} of {acks} ACKs dropped\n{st}"
    );
    assert_eq!(half_open, 0, "the server holds half-open flood connections");
    assert!(codes.len() >= 10, "{codes:?}");
    let failed: Vec<_> = codes.iter().filter(|c| *c != "200").collect();
    assert!(
        failed.is_empty(),
        "legitimate client failed during the floods: {failed:?} of {}",
        codes.len()
    );
}
