//! `levee report` on a real incident: a drill flood recorded by the edge,
//! its access log reviewed by `levee hunt`, and the record rendered in all
//! four formats, from the file the edge wrote and from what `GET
//! /incidents/{id}` returned; the STIX bundle validated by OASIS's
//! `stix2-validator`.

use super::incidents::{await_closed, flood, get_json, incidents_config};
use super::*;

fn validate_stix(path: &std::path::Path) {
    // The package's own entry point, through python3 (a pip script may not be on PATH).
    let (code, out, err) = run(
        "python3",
        &[
            "-c",
            "import sys; from stix2validator.scripts.stix2_validator import main; sys.argv[0] = 'stix2_validator'; sys.exit(main())",
            path.to_str().unwrap(),
        ],
    );
    assert!(
        !err.contains("No module named"),
        "stix2-validator is not installed: scripts/install-test-deps.sh installs it (python3 -m pip install stix2-validator)"
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("STIX JSON: Valid"), "{out}");
    assert!(!out.contains("[X]"), "{out}");
}

#[test]
fn a_recorded_flood_becomes_a_valid_stix_bundle_and_three_reports_with_hunts_findings() {
    let o = Origin::start();
    let dir = scratch("report-flood");
    let e = Edge::start("report-flood", &incidents_config(&o, &dir));
    flood(&e, &o, "400", "4");
    let list = await_closed(&e, 20);
    let id = list["incidents"][0]["id"].as_str().unwrap().to_string();
    let api = e.dir.join("incident.json");
    std::fs::write(&api, get_json(&e, &format!("/incidents/{id}")).to_string()).unwrap();
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    // hunt over the edge's own access log of the same period.
    let hunt = e.dir.join("hunt.json");
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &[
            "hunt",
            e.dir.join("access.log").to_str().unwrap(),
            "--json",
            hunt.to_str().unwrap(),
        ],
    );
    assert!(code == 0 || code == 1, "{err}");
    let out = |n: &str| e.dir.join(n);
    for (source, tag) in [(&file, "file"), (&api, "api")] {
        let (code, _, err) = run(
            env!("CARGO_BIN_EXE_levee"),
            &[
                "report",
                "--incident",
                source.to_str().unwrap(),
                "--hunt",
                hunt.to_str().unwrap(),
                "--config",
                e.dir.join("levee.toml").to_str().unwrap(),
                "--html",
                out(&format!("{tag}.html")).to_str().unwrap(),
                "--markdown",
                out(&format!("{tag}.md")).to_str().unwrap(),
                "--json",
                out(&format!("{tag}.json")).to_str().unwrap(),
                "--stix",
                out(&format!("{tag}.stix.json")).to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{err}");
        validate_stix(&out(&format!("{tag}.stix.json")));
        let md = std::fs::read_to_string(out(&format!("{tag}.md"))).unwrap();
        for section in [
            "## Timeline",
            "## Nature and vectors",
            "## Peak rates and duration",
            "## Impact on the service",
            "## Measures taken",
            "## Indicators",
            "## Personal data (GDPR Art. 33)",
            "## ICO personal data breach form",
            "**72-hour clock.**",
        ] {
            assert!(md.contains(section), "{tag}: no {section:?} in\n{md}");
        }
        // hunt ran: the personal-data part says what it checked.
        assert!(md.contains("Checked: 1 log file(s)"), "{md}");
        // Pseudonymised by default: the flood's loopback sources are not named.
        assert!(!md.contains("127.20.") && !md.contains("127.250."), "{md}");
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out(&format!("{tag}.json"))).unwrap())
                .unwrap();
        assert_eq!(j["id"], id.as_str());
        assert!(
            j["peaks"]["requests_per_s"].as_f64().unwrap() > 100.0,
            "{j}"
        );
        let html = std::fs::read_to_string(out(&format!("{tag}.html"))).unwrap();
        assert!(html.contains("<svg") && !html.contains("<script"));
    }
    // The two sources give the same report.
    let a: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out("file.json")).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out("api.json")).unwrap()).unwrap();
    assert_eq!(a["peaks"], b["peaks"]);
    assert_eq!(
        a["timeline"].as_array().unwrap().len(),
        b["timeline"].as_array().unwrap().len()
    );
    // Two edges' parts merge into one incident (here the same part twice:
    // every count doubles, the edges are both named).
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &[
            "report",
            "--incident",
            file.to_str().unwrap(),
            "--incident",
            api.to_str().unwrap(),
            "--json",
            out("merged.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out("merged.json")).unwrap()).unwrap();
    assert_eq!(
        m["peaks"]["requests"].as_u64().unwrap(),
        2 * a["peaks"]["requests"].as_u64().unwrap()
    );
    assert!(m["edge"].as_str().unwrap().contains('+'), "{}", m["edge"]);
    // A damaged record: named with its line; a file that holds no incident is an error.
    let bad = e.dir.join("bad.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&bad, format!("{}\n{{\"type\":\"sec", text.trim_end())).unwrap();
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &[
            "report",
            "--incident",
            bad.to_str().unwrap(),
            "--json",
            out("bad.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let n = text.trim_end().lines().count() + 1;
    assert!(err.contains(&format!("bad.jsonl:{n}: ")), "{err}");
    std::fs::write(&bad, "not an incident\n").unwrap();
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["report", "--incident", bad.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no incident in it"), "{err}");
}
