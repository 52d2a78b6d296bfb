//! `[crowdsec]`: the edge as a CrowdSec bouncer. It follows the Local
//! API's decision stream: `ban` decisions join the block list (and so the
//! packet filter), `captcha` decisions send the client to the challenge.

use crate::types::Dur;
use serde::Deserialize;

/// The `[crowdsec]` table. Without it the edge asks no Local API.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CrowdSec {
    /// The Local API, e.g. `http://127.0.0.1:8080` (`https://` too).
    pub lapi: String,
    /// The bouncer's key (`cscli bouncers add levee`), or
    pub api_key: Option<String>,
    /// a file holding it (kept out of the configuration).
    pub api_key_file: Option<String>,
    /// How often the stream is asked for what changed.
    pub poll: Dur,
    /// Every call to the Local API gives up after this.
    pub timeout: Dur,
    /// A PEM file of the certificate authority to trust for `https://`
    /// (default: the system's roots).
    pub ca: Option<String>,
    /// At most this many decisions are held (the rest are counted, not applied).
    pub max_decisions: u32,
    /// Push the edge's own automatic blocks to the Local API as alerts
    /// (with a ban each), so that the user's other servers learn from the
    /// edge; needs a machine's credentials (`cscli machines add levee-edge`).
    pub push_blocks: bool,
    pub machine_id: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<String>,
}

impl Default for CrowdSec {
    fn default() -> Self {
        CrowdSec {
            lapi: String::new(),
            api_key: None,
            api_key_file: None,
            poll: Dur::secs(10),
            timeout: Dur::secs(5),
            ca: None,
            max_decisions: 200_000,
            push_blocks: false,
            machine_id: None,
            password: None,
            password_file: None,
        }
    }
}
