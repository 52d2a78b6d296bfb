//! Origin protection: a concurrency cap per origin with a short bounded queue;
//! beyond it, 503 with Retry-After at once instead of piling up.

use super::*;

#[test]
fn full_origin_gets_503_with_retry_after_at_once() {
    let o = Origin::start();
    let extra = "max_concurrent_per_origin = 2\nqueue = 2\nqueue_timeout = \"300ms\"";
    let text =
        config(o.addr, "", "").replace("name = \"test\"\n", &format!("name = \"test\"\n{extra}\n"));
    let e = Edge::start("origin-cap", &text);
    let addr = e.addr;
    let handles: Vec<_> = (0..12)
        .map(|i| {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(if i < 2 { 0 } else { 100 }));
                let start = Instant::now();
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(
                    b"GET /delay?ms=1000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                )
                .unwrap();
                let (resp, _) = read_until_close(&mut s, Duration::from_secs(5));
                (
                    parse_response(&resp).0,
                    resp.contains("retry-after: 1"),
                    start.elapsed(),
                )
            })
        })
        .collect();
    let results: Vec<(u16, bool, Duration)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 200).count();
    let shed: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok, 2, "{results:?}");
    assert_eq!(shed.len(), 10, "{results:?}");
    assert!(
        shed.iter().all(|r| r.1),
        "503 without Retry-After: {results:?}"
    );
    // Those beyond the queue were refused at once, those queued after the queue timeout.
    let fast = shed
        .iter()
        .filter(|r| r.2 < Duration::from_millis(200))
        .count();
    assert!(fast >= 8, "{results:?}");
    let max = o
        .stats
        .max_in_flight
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(max <= 2, "origin saw {max} concurrent requests");
    assert_eq!(e.await_defense("origin_busy", 10.0), 10.0);
    let log = e.access_log(12);
    assert_eq!(log.iter().filter(|l| l["verdict"] == "shed").count(), 10);
}
