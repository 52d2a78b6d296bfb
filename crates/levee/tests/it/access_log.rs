//! The access log never slows requests: a full buffer drops lines and counts them.

use super::*;

#[test]
fn full_log_buffer_drops_and_counts_but_serves() {
    let o = Origin::start();
    let text = config(o.addr, "", "")
        .replace("path = \"ACCESS_LOG\"", "path = \"ACCESS_LOG\"\nbuffer = 5");
    let e = Edge::start("access-log-full", &text);
    let url = e.url("/healthz");
    let (code, out, err) = run("wrk", &["-t1", "-c8", "-d2s", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("Non-2xx"), "{out}");
    std::thread::sleep(Duration::from_millis(200));
    let dropped = e.metric("levee_access_log_dropped_total");
    let written = e.metric("levee_access_log_lines_total");
    assert!(dropped > 0.0, "nothing dropped: {written} written");
    assert!(written > 0.0);
    // Every line that was written is whole JSON.
    let lines = e.access_log(1);
    assert!(lines.len() as f64 >= written - 1.0);
}
