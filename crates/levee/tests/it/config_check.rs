//! `levee check` and start-up errors name the file, line and key path.

use super::*;

#[test]
fn check_reports_file_line_and_key_path() {
    let dir = scratch("check");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[listener]]\naddress = \"127.0.0.1:0\"\n\n[[site]]\nname = \"a\"\nhosts = [\"a\"]\n[[site.origin]]\nadress = \"127.0.0.1:1\"\n").unwrap();
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["check", "--config", bad.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.toml:8: site[0].origin[0].adress: unknown field `adress`"),
        "{err}"
    );
    let good = dir.join("good.toml");
    std::fs::write(&good, "[[listener]]\naddress = \"127.0.0.1:0\"\n\n[[site]]\nname = \"a\"\nhosts = [\"a\"]\n[[site.origin]]\naddress = \"127.0.0.1:1\"\n").unwrap();
    let (code, out, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["check", "--config", good.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"));
    let missing_cert = dir.join("cert.toml");
    std::fs::write(&missing_cert, "[[listener]]\naddress = \"127.0.0.1:0\"\ntls = true\n[[tls.certificate]]\nserver_names = [\"a\"]\ncert = \"/nonexistent.pem\"\nkey = \"/nonexistent.key\"\n[[site]]\nname = \"a\"\nhosts = [\"a\"]\n[[site.origin]]\naddress = \"127.0.0.1:1\"\n").unwrap();
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["check", "--config", missing_cert.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("tls.certificate[0].cert") && err.contains("/nonexistent.pem"),
        "{err}"
    );
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["serve", "--config", bad.to_str().unwrap()],
    );
    assert_eq!(code, 1);
    assert!(err.contains("bad.toml:8"), "{err}");
}
