//! File-descriptor exhaustion: with a tiny descriptor limit, the accept loop
//! backs off instead of spinning or dying, and serves again once descriptors free up.

use super::*;

#[test]
fn accept_loop_survives_emfile() {
    let o = Origin::start();
    let mut e = Edge::start_limited(
        "fd-exhaustion",
        &config(o.addr, "header_timeout = \"30s\"", ""),
        64,
    );
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Ok(s) = TcpStream::connect(e.addr) {
            held.push(s);
        }
    }
    assert!(
        held.len() > 64,
        "the kernel backlog should take more than the edge can accept"
    );
    // Hold them until the edge has used every descriptor it may have (its
    // next accept must fail), however slowly it gets there on a busy machine.
    let fds = format!("/proc/{}/fd", e.child.id());
    let start = Instant::now();
    while std::fs::read_dir(&fds).map_or(0, |d| d.count()) < 62 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the edge never filled its descriptors"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The accept loop retries every 50 ms: give it a few tries at EMFILE.
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    // Descriptors come back: the edge accepts and serves again.
    let start = Instant::now();
    loop {
        if http_get(e.addr, "/healthz", &[]).0 == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "edge did not recover"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(e.defense("accept_fd_exhausted") >= 1.0, "no EMFILE seen");
    assert!(e.child.try_wait().unwrap().is_none(), "the edge died");
}
