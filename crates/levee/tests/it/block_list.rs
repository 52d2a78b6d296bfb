//! Block and allow lists: static from the configuration, expiring blocks from
//! the admin API; a blocked client is refused at accept; changes are numbered
//! for followers.

use super::*;

/// Whether a client at `src` is served (`/healthz` answers 200).
pub(super) fn served(e: &Edge, src: &str) -> bool {
    let Ok(mut s) = connect_from(src.parse().unwrap(), e.addr) else {
        return false;
    };
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    read_until_close(&mut s, Duration::from_secs(2))
        .0
        .starts_with("HTTP/1.1 200")
}

fn admin(e: &Edge, method: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let (resp, _) = raw(e.admin, req.as_bytes(), Duration::from_secs(3));
    let (status, body) = parse_response(&resp);
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn static_and_dynamic_blocks_are_refused_at_accept() {
    let o = Origin::start();
    let e = Edge::start(
        "block-list",
        &config(
            o.addr,
            "",
            "\n[lists]\nblock = [\"127.0.11.0/24\"]\nallow = [\"127.0.11.7\"]\n",
        ),
    );
    assert!(!served(&e, "127.0.11.5"), "statically blocked");
    assert!(
        served(&e, "127.0.11.7"),
        "allow-listed inside a blocked network"
    );
    assert!(served(&e, "127.0.12.5"));
    // Dynamic blocks need the token, expire, and are listed.
    assert_eq!(
        admin(&e, "POST", "/blocks?cidr=127.0.13.0/24&ttl=1", None).0,
        401
    );
    let (s, v) = admin(&e, "POST", "/blocks?cidr=127.0.13.0/24&ttl=1", Some(TOKEN));
    assert_eq!(s, 200, "{v}");
    assert!(!served(&e, "127.0.13.2"));
    let (_, list) = admin(&e, "GET", "/blocks", None);
    assert_eq!(list["dynamic"][0]["cidr"], "127.0.13.0/24");
    // What the packet filter is fed: the static block without expiry, the
    // dynamic one with its time left, and the allow entry.
    let pf = &list["packet_filter"];
    assert_eq!(pf["blocks"], 2, "{list}");
    assert_eq!(pf["allow"], 1, "{list}");
    assert_eq!(pf["entries"][0]["cidr"], "127.0.11.0/24");
    assert!(pf["entries"][0]["expires_in_ms"].is_null());
    assert_eq!(pf["entries"][1]["cidr"], "127.0.13.0/24");
    assert!(pf["entries"][1]["expires_in_ms"].as_u64().unwrap() <= 1000);
    std::thread::sleep(Duration::from_millis(2300));
    assert!(served(&e, "127.0.13.2"), "the block expired");
    let (_, ch) = admin(&e, "GET", "/blocks/changes?since=0", None);
    let ops: Vec<&str> = ch["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, vec!["add", "expire"], "{ch}");
    // Unblock by hand.
    admin(&e, "POST", "/blocks?cidr=127.0.14.9&ttl=600", Some(TOKEN));
    assert!(!served(&e, "127.0.14.9"));
    assert_eq!(
        admin(&e, "DELETE", "/blocks?cidr=127.0.14.9", Some(TOKEN)).0,
        200
    );
    assert!(served(&e, "127.0.14.9"));
    assert!(e.await_defense("blocked", 3.0) >= 3.0);
    assert!(e
        .access_log(3)
        .iter()
        .any(|l| l["reason"] == "blocked" && l["client"] == "127.0.11.5"));
}

#[test]
fn cidr_list_files_block_at_accept_and_bad_lines_are_named() {
    let o = Origin::start();
    let dir = scratch("block-files");
    let block = dir.join("block.txt");
    let allow = dir.join("allow.txt");
    std::fs::write(
        &block,
        "# botnet C2 ranges\n127.0.21.0/24\n\n127.0.22.9 # one host\n",
    )
    .unwrap();
    std::fs::write(&allow, "127.0.21.200\n").unwrap();
    let lists = format!(
        "\n[lists]\nblock_files = [{:?}]\nallow_files = [{:?}]\n",
        block.display().to_string(),
        allow.display().to_string()
    );
    let e = Edge::start("block-files", &config(o.addr, "", &lists));
    assert!(!served(&e, "127.0.21.5"));
    assert!(!served(&e, "127.0.22.9"));
    assert!(served(&e, "127.0.21.200"), "allow file");
    assert!(served(&e, "127.0.22.10"));
    // A bad line is reported with its file and line, and the edge refuses to start.
    std::fs::write(&block, "127.0.21.0/24\n10.0.0.0/33\n").unwrap();
    let cfg = dir.join("bad.toml");
    std::fs::write(&cfg, config(o.addr, "", &lists).replace("ACCESS_LOG", "-")).unwrap();
    let (code, out, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["check", "--config", cfg.to_str().unwrap()],
    );
    assert_ne!(code, 0, "{out}");
    let expected = format!("{}:2", block.display());
    assert!(
        err.contains(&expected) && err.contains("lists.block_files"),
        "{err}"
    );
}
