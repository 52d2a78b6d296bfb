//! The live egress view of routes tagged personal (`[[site.route]]
//! personal`, `[site.egress]`): one client walking member records among
//! ordinary visitors raises one `egress_outlier` event naming it (as the
//! access log names it: a pseudonym when the log is pseudonymised), the
//! metrics count the route's bytes and records, and `GET /egress` lists the
//! heaviest clients, behind the admin token.

use super::*;

const EGRESS: &str = r#"
[site.defense]
enabled = false

[[site.route]]
name = "members"
paths = ["/api/members/"]
personal = true

[site.egress]
window = "60s"
alert_records = 40
alert_bytes = "100MiB"
alert_share = 0.3
"#;

fn get_from(e: &Edge, src: &str, path: &str) -> u16 {
    let mut c = connect_from(src.parse().unwrap(), e.addr).unwrap();
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let (resp, _) = read_until_close(&mut c, Duration::from_secs(5));
    parse_response(&resp).0
}

fn events(e: &Edge, kind: &str) -> Vec<serde_json::Value> {
    let (st, body) = http_get(e.admin, "/events?since=0", &[]);
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["event"] == kind)
        .cloned()
        .collect()
}

/// Twenty visitors read three member pages each; one client walks 60.
fn walk(e: &Edge) {
    for i in 0..20 {
        for id in 0..3 {
            assert_eq!(
                get_from(
                    e,
                    &format!("127.0.20.{}", i + 1),
                    &format!("/api/members/{}", 1 + i * 3 + id)
                ),
                200
            );
        }
    }
    for id in 0..60 {
        assert_eq!(
            get_from(e, "127.0.21.99", &format!("/api/members/{}", id + 1)),
            200
        );
    }
    // Pages off the tagged route are not counted.
    for _ in 0..50 {
        assert_eq!(get_from(e, "127.0.22.1", "/"), 200);
    }
}

#[test]
fn one_client_walking_member_records_raises_one_event_and_shows_in_the_view() {
    let o = Origin::start();
    let e = Edge::start("egress-view", &config(o.addr, "", EGRESS));
    walk(&e);
    let out = events(&e, "egress_outlier");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["client"], "127.0.21.99", "{out:?}");
    assert_eq!(out[0]["class"], "personal");
    assert!(out[0]["records"].as_u64().unwrap() >= 40, "{out:?}");
    assert!(out[0]["share_records"].as_f64().unwrap() >= 0.3, "{out:?}");
    // The metrics: every 2xx of the route, none of the others.
    let records = e.metric("levee_egress_records_total{site=\"test\",class=\"personal\"}");
    assert_eq!(records, 120.0);
    assert!(e.metric("levee_egress_bytes_total{site=\"test\",class=\"personal\"}") > 0.0);
    assert_eq!(e.metric("levee_egress_outliers_total{site=\"test\"}"), 1.0);
    // The view names clients: the token is required.
    let (st, _) = http_get(e.admin, "/egress", &[]);
    assert_eq!(st, 401);
    let auth = format!("Bearer {TOKEN}");
    let (st, body) = http_get(e.admin, "/egress", &[("Authorization", &auth)]);
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let site = &v["sites"][0];
    assert_eq!(site["records"], 120, "{v}");
    assert_eq!(site["top"][0]["client"], "127.0.21.99", "{v}");
    assert_eq!(site["top"][0]["records"], 60, "{v}");
    assert_eq!(
        site["top"].as_array().unwrap().len(),
        20,
        "the 20 heaviest: {v}"
    );
}

#[test]
fn with_a_pseudonymised_log_the_event_names_the_pseudonym_the_log_has() {
    let o = Origin::start();
    let keys = scratch("egress-keys");
    let text = config(o.addr, "", EGRESS).replace(
        "[access_log]\npath = \"ACCESS_LOG\"",
        &format!(
            "[access_log]\npath = \"ACCESS_LOG\"\npseudonymize = true\nkey_dir = \"{}\"",
            keys.display()
        ),
    );
    let e = Edge::start("egress-pseudo", &text);
    walk(&e);
    let out = events(&e, "egress_outlier");
    assert_eq!(out.len(), 1, "{out:?}");
    let name = out[0]["client"].as_str().unwrap().to_string();
    assert!(name.starts_with("anon-"), "{name}");
    let log = e.access_log(230);
    let walker: Vec<&serde_json::Value> = log
        .iter()
        .filter(|l| l["client"] == name.as_str())
        .collect();
    assert_eq!(walker.len(), 60, "the walker's lines under its pseudonym");
    assert!(!log.iter().any(|l| l["client"] == "127.0.21.99"));
}
