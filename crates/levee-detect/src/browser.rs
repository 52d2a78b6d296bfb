//! What a request's `User-Agent` claims, and whether the rest of the request
//! agrees: the traits every release of the major browser engines has shown
//! for years, so that a bot copying a browser's `User-Agent` (as Mirai and
//! its descendants do) stands out on a freshly started edge with no
//! baseline, while real browsers never do.
//!
//! The table is deliberately small and conservative: a trait is in it only
//! if every current and recent release of the engine has it, over HTTP/1.1
//! and plain HTTP as well as HTTPS (traits sent only to secure contexts,
//! such as `Sec-Fetch-*` and `Sec-CH-UA`, are left out for that reason).
//!
//! | engine (UA token) | HTTP/1.1: first field | always sends | HTTP/2 SETTINGS ids, in order (Akamai fingerprint) |
//! |---|---|---|---|
//! | Chromium (`Chrome/`, `CriOS/`, `Edg/`, `OPR/`) | `Host` | `Accept`, `Accept-Encoding`, `Accept-Language` | `1,2,4,6` (v106+) or `1,3,4,6` (earlier) |
//! | Gecko (`Firefox/`, `FxiOS/`) | `Host` | `Accept`, `Accept-Encoding`, `Accept-Language` | `1,4,5` or `1,2,4,5` |
//! | WebKit (`Safari/` with `Version/`, no Chromium token) | `Host` | `Accept`, `Accept-Encoding`, `Accept-Language` | starts `2` or `4` (`2,3,4,8,9`, `2,4,3,9`, `4,3`) |
//!
//! Sources: the HTTP/1.1 orders and SETTINGS frames of Chrome 51–131,
//! Firefox 60–133 and Safari 12–18 as published with curl-impersonate
//! (lwthiker) and in Akamai's "Passive Fingerprinting of HTTP/2 Clients"
//! (Black Hat EU 2017). Any engine not in the table is judged only by the
//! tool list (`tool`).
//!
//! Nothing here is a verdict on its own: the detector uses it to tell which
//! part of a flood's population is suspect when there is no learned
//! baseline to compare with (`detector`).

/// A browser engine a `User-Agent` can claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Chromium,
    Gecko,
    WebKit,
}

/// What the request's traits say about its `User-Agent`'s claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// It claims a browser and has that browser's traits.
    Browser(Engine),
    /// It claims a browser and lacks one of its traits (named).
    Impostor(Engine, &'static str),
    /// It names an HTTP library, scanner or attack tool (named), or has no `User-Agent`.
    Tool(&'static str),
    /// Anything else (another client, an unknown engine): no opinion.
    Other,
}

impl Judgement {
    /// Traffic a freshly started edge may hold suspect in a flood.
    pub fn suspect(self) -> bool {
        matches!(self, Judgement::Impostor(..) | Judgement::Tool(_))
    }
}

/// The engine a `User-Agent` claims, if any.
pub fn claimed(ua: &[u8]) -> Option<Engine> {
    let has = |t: &[u8]| ua.windows(t.len()).any(|w| w == t);
    if !has(b"Mozilla/5.0") {
        return None;
    }
    if has(b"Chrome/") || has(b"CriOS/") || has(b"Edg/") || has(b"OPR/") || has(b"Chromium/") {
        Some(Engine::Chromium)
    } else if has(b"Firefox/") || has(b"FxiOS/") {
        Some(Engine::Gecko)
    } else if has(b"Safari/") && has(b"Version/") {
        Some(Engine::WebKit)
    } else {
        None
    }
}

/// HTTP libraries, scanners and attack tools that name themselves, matched
/// case-blind at the start of the `User-Agent` (or anywhere, for scanners
/// that append to a browser string).
const TOOLS_PREFIX: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests/",
    "python-urllib/",
    "python-httpx/",
    "aiohttp/",
    "go-http-client/",
    "java/",
    "apache-httpclient/",
    "okhttp/",
    "libwww-perl/",
    "lwp::",
    "php/",
    "guzzlehttp/",
    "ruby",
    "node-fetch/",
    "axios/",
    "undici",
    "httpie/",
    "wrk",
    "ab/",
    "apachebench/",
    "siege/",
    "hey/",
    "loadimpact",
    "k6/",
    "locust",
    "masscan",
    "zgrab",
];
const TOOLS_ANYWHERE: &[&str] = &[
    "nmap",
    "nikto",
    "sqlmap",
    "nuclei",
    "dirbuster",
    "gobuster",
    "wpscan",
    "masscan",
    "zgrab",
    "httrack",
    "mirai",
];
/// Self-declared robots, matched only when no browser engine is claimed
/// (phone models such as "CUBOT" appear in real browsers' strings).
const BOT_WORDS: &[&str] = &["bot", "crawler", "spider"];

/// The tool a `User-Agent` names, if any ("no user-agent" when empty).
pub fn tool(ua: &[u8]) -> Option<&'static str> {
    if ua.iter().all(u8::is_ascii_whitespace) {
        return Some("no user-agent");
    }
    let lower = ua.to_ascii_lowercase();
    if let Some(t) = TOOLS_PREFIX
        .iter()
        .find(|t| lower.starts_with(t.as_bytes()))
    {
        return Some(t);
    }
    TOOLS_ANYWHERE
        .iter()
        .find(|t| lower.windows(t.len()).any(|w| w == t.as_bytes()))
        .copied()
}

/// The protocol facts the judgement uses besides the `User-Agent`.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Field names in the order sent (lower-case), pseudo-fields excluded.
    pub names: &'a [&'a str],
    /// Whether the request came over HTTP/2 (no `Host` field order to judge then).
    pub h2: bool,
    /// The HTTP/2 SETTINGS fingerprint (`1:65536;2:0;…|window|…`), if known.
    pub h2_settings: Option<&'a str>,
}

/// Judge a request's `User-Agent` against its other traits.
pub fn judge(ua: &[u8], seen: &Seen<'_>) -> Judgement {
    let Some(engine) = claimed(ua) else {
        let lower = ua.to_ascii_lowercase();
        let bot = BOT_WORDS
            .iter()
            .find(|w| lower.windows(w.len()).any(|x| x == w.as_bytes()));
        return match (tool(ua), bot) {
            (Some(t), _) => Judgement::Tool(t),
            (None, Some(b)) => Judgement::Tool(b),
            (None, None) => Judgement::Other,
        };
    };
    // Scanners that append their name to a browser string.
    if let Some(t) = tool(ua) {
        return Judgement::Tool(t);
    }
    let has = |n: &str| seen.names.contains(&n);
    if !seen.h2 && seen.names.first() != Some(&"host") {
        return Judgement::Impostor(engine, "host is not the first field");
    }
    for n in ["accept", "accept-encoding", "accept-language"] {
        if !has(n) {
            return Judgement::Impostor(
                engine,
                match n {
                    "accept" => "no accept",
                    "accept-encoding" => "no accept-encoding",
                    _ => "no accept-language",
                },
            );
        }
    }
    if let Some(s) = seen.h2_settings {
        if !settings_match(engine, s) {
            return Judgement::Impostor(engine, "http/2 settings of another client");
        }
    }
    Judgement::Browser(engine)
}

/// The SETTINGS ids of an Akamai fingerprint (`1:65536;2:0;4:6291456|…`).
fn settings_ids(fp: &str) -> Vec<u32> {
    let settings = fp.split('|').next().unwrap_or("");
    settings
        .split(';')
        .filter_map(|kv| kv.split(':').next()?.trim().parse().ok())
        .collect()
}

fn settings_match(engine: Engine, fp: &str) -> bool {
    let ids = settings_ids(fp);
    match engine {
        Engine::Chromium => ids == [1, 2, 4, 6] || ids == [1, 3, 4, 6] || ids == [1, 2, 3, 4, 6],
        Engine::Gecko => ids == [1, 4, 5] || ids == [1, 2, 4, 5] || ids == [1, 2, 4, 5, 9],
        Engine::WebKit => matches!(ids.first(), Some(2) | Some(4)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const FIREFOX: &[u8] =
        b"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const SAFARI: &[u8] = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";

    fn h1<'a>(names: &'a [&'a str]) -> Seen<'a> {
        Seen {
            names,
            h2: false,
            h2_settings: None,
        }
    }

    #[test]
    fn engines_are_told_apart() {
        assert_eq!(claimed(CHROME), Some(Engine::Chromium));
        assert_eq!(claimed(FIREFOX), Some(Engine::Gecko));
        assert_eq!(claimed(SAFARI), Some(Engine::WebKit));
        assert_eq!(claimed(b"curl/8.5.0"), None);
        assert_eq!(claimed(b"Mozilla/4.0 (compatible; MSIE 6.0)"), None);
    }

    #[test]
    fn real_browsers_http1_orders_are_browsers() {
        // Chrome 131 over HTTP/1.1 (plain HTTP: no Sec-Fetch-*, no client hints).
        let chrome = [
            "host",
            "connection",
            "upgrade-insecure-requests",
            "user-agent",
            "accept",
            "accept-encoding",
            "accept-language",
            "cookie",
        ];
        assert_eq!(
            judge(CHROME, &h1(&chrome)),
            Judgement::Browser(Engine::Chromium)
        );
        let firefox = [
            "host",
            "user-agent",
            "accept",
            "accept-language",
            "accept-encoding",
            "connection",
            "upgrade-insecure-requests",
            "priority",
        ];
        assert_eq!(
            judge(FIREFOX, &h1(&firefox)),
            Judgement::Browser(Engine::Gecko)
        );
        let safari = [
            "host",
            "accept",
            "upgrade-insecure-requests",
            "user-agent",
            "accept-language",
            "accept-encoding",
            "connection",
        ];
        assert_eq!(
            judge(SAFARI, &h1(&safari)),
            Judgement::Browser(Engine::WebKit)
        );
    }

    #[test]
    fn mirai_order_is_an_impostor() {
        // Mirai's HTTP flood: User-Agent before Host, no Accept-Encoding.
        let mirai = [
            "user-agent",
            "host",
            "accept",
            "accept-language",
            "connection",
        ];
        let ua = b"Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36";
        assert_eq!(
            judge(ua, &h1(&mirai)),
            Judgement::Impostor(Engine::Chromium, "host is not the first field")
        );
        let no_encoding = [
            "host",
            "user-agent",
            "accept",
            "accept-language",
            "connection",
        ];
        assert_eq!(
            judge(ua, &h1(&no_encoding)),
            Judgement::Impostor(Engine::Chromium, "no accept-encoding")
        );
        assert!(judge(ua, &h1(&no_encoding)).suspect());
    }

    #[test]
    fn tools_name_themselves() {
        let names = ["host", "user-agent", "accept"];
        assert_eq!(judge(b"curl/8.5.0", &h1(&names)), Judgement::Tool("curl/"));
        assert_eq!(
            judge(b"python-requests/2.31.0", &h1(&names)),
            Judgement::Tool("python-requests/")
        );
        assert_eq!(judge(b"", &h1(&names)), Judgement::Tool("no user-agent"));
        let scanner = b"Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:Port Check)";
        assert_eq!(judge(scanner, &h1(&names)), Judgement::Tool("nikto"));
        assert_eq!(
            judge(b"MyCompanyMonitor/1.0", &h1(&names)),
            Judgement::Other
        );
        assert_eq!(
            judge(b"Mozilla/5.0 (compatible; bot)", &h1(&names)),
            Judgement::Tool("bot")
        );
        // A phone model is not a robot when a browser engine is claimed.
        let cubot = b"Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
        let full = [
            "host",
            "user-agent",
            "accept",
            "accept-encoding",
            "accept-language",
        ];
        assert_eq!(
            judge(cubot, &h1(&full)),
            Judgement::Browser(Engine::Chromium)
        );
        assert!(!Judgement::Other.suspect());
    }

    #[test]
    fn http2_settings_must_be_the_engines() {
        let names = ["user-agent", "accept", "accept-encoding", "accept-language"];
        let seen = |s| Seen {
            names: &names,
            h2: true,
            h2_settings: Some(s),
        };
        let chrome = "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p";
        let firefox = "1:65536;2:0;4:131072;5:16384|12517377|0|m,p,a,s";
        let safari = "2:0;3:100;4:2097152;8:1;9:1|10420225|0|m,s,a,p";
        let h2load = "3:100;4:65535|0|0|";
        assert_eq!(
            judge(CHROME, &seen(chrome)),
            Judgement::Browser(Engine::Chromium)
        );
        assert_eq!(
            judge(FIREFOX, &seen(firefox)),
            Judgement::Browser(Engine::Gecko)
        );
        assert_eq!(
            judge(SAFARI, &seen(safari)),
            Judgement::Browser(Engine::WebKit)
        );
        assert!(judge(CHROME, &seen(firefox)).suspect());
        assert!(judge(CHROME, &seen(h2load)).suspect());
        assert!(judge(FIREFOX, &seen(h2load)).suspect());
        // HTTP/2 has no Host field: its position is not judged.
        let no_settings = Seen {
            names: &names,
            h2: true,
            h2_settings: None,
        };
        assert_eq!(
            judge(CHROME, &no_settings),
            Judgement::Browser(Engine::Chromium)
        );
    }
}
