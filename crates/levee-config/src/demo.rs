//! The configuration of `levee serve --demo`.

use crate::*;
use std::net::SocketAddr;

/// The configuration of `levee serve --demo`: the edge on `listen`, the admin
/// listener on `admin`, one site in front of the built-in demo origin.
pub fn demo(
    listen: SocketAddr,
    admin: SocketAddr,
    origin: SocketAddr,
    drill_token: &str,
) -> Config {
    let text = format!(
        r#"
[[listener]]
address = "{listen}"

[admin]
address = "{admin}"

[drill]
token = "{drill_token}"

[[site]]
name = "demo"
hosts = ["localhost", "127.0.0.1", "[::1]", "demo.levee.test"]
max_concurrent_per_origin = 64
queue = 64

[[site.origin]]
address = "{origin}"

[site.health]
path = "/healthz"
interval = "2s"

[site.cache]
enabled = true
keep_params = ["q"]
"#
    );
    match parse("demo", &text) {
        Ok(c) => c,
        // The demo text is fixed; a failure here is a bug caught by the unit test.
        Err(e) => unreachable!("built-in demo configuration is invalid: {e}"),
    }
}
