//! `levee retention`: what is held and what goes next (`status`), the
//! ledger checked against the files (`verify`), deletions suspended for an
//! incident (`hold`), and one person's lines erased from every log
//! (`erase`). The work is the edge's (`levee_edge::retention_status`,
//! `verify_retention`, `hold_retention`, `erase_retention`); an erasure
//! while an edge writes the logs is asked of that edge's admin API.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub(crate) struct RetentionArgs {
    #[command(subcommand)]
    cmd: RetentionCmd,
}

#[derive(clap::Subcommand)]
enum RetentionCmd {
    /// Per tier (raw, pseudonymised): the oldest record, the files and when
    /// each is due; the holds in force; the keys and when each is destroyed.
    Status {
        #[arg(long, short)]
        config: PathBuf,
        /// Print the status as JSON (times in ms since the epoch).
        #[arg(long)]
        json: bool,
    },
    /// Check the ledger's hash chain and the files it names; exits 1 on any
    /// discrepancy (an altered or missing entry, a file deleted by hand, a
    /// destroyed key still present), naming each.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// A legal hold: the edge deletes no log file, and nothing is erased,
    /// until it ends. Recorded in the ledger with its reason.
    Hold {
        #[arg(long, short)]
        config: PathBuf,
        /// What the hold is for (an incident's id).
        #[arg(long)]
        incident: String,
        /// How long: 30d, 12h, 90m (a bare number is seconds).
        #[arg(long = "for", value_parser = crate::duration::seconds, conflicts_with = "until", required_unless_present = "until")]
        duration: Option<Duration>,
        /// Until when: a date (2027-03-31: to the end of that day, UTC) or
        /// an RFC 3339 time (2027-03-31T12:00:00Z).
        #[arg(long, value_parser = until_ms)]
        until: Option<u64>,
        #[arg(long)]
        reason: String,
    },
    /// Erase one person's lines from every log still held (live and
    /// rotated, raw and pseudonymised, .gz too); recorded in the ledger
    /// without the address, refused under a legal hold. While an edge is
    /// writing the logs it does the work, asked over its admin API.
    Erase {
        #[arg(long, short)]
        config: PathBuf,
        /// The person's IP address (matched raw, and by its pseudonym under
        /// every key still kept).
        #[arg(
            long,
            conflicts_with = "pseudonym",
            required_unless_present = "pseudonym"
        )]
        address: Option<std::net::IpAddr>,
        /// A pseudonym as the log writes it (anon-…).
        #[arg(long)]
        pseudonym: Option<String>,
        /// Why (a request's reference): recorded in the ledger.
        #[arg(long)]
        reason: String,
        /// The running edge's admin listener (default: `[admin] address`).
        #[arg(long)]
        admin: Option<std::net::SocketAddr>,
    },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `--until`: a date (to the end of that day, UTC) or an RFC 3339 time.
fn until_ms(s: &str) -> std::result::Result<u64, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return u64::try_from(t.as_millisecond()).map_err(|_| "before 1970".to_string());
    }
    let d: jiff::civil::Date = s.parse().map_err(|_| {
        format!("{s:?}: write a date (2027-03-31) or an RFC 3339 time (2027-03-31T12:00:00Z)")
    })?;
    let end = d
        .tomorrow()
        .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
        .map_err(|e| format!("{s:?}: {e}"))?;
    u64::try_from(end.timestamp().as_millisecond()).map_err(|_| "before 1970".to_string())
}

/// A time in ms since the epoch, as RFC 3339 (UTC, to the second).
fn when(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(|m| jiff::Timestamp::from_millisecond(m).ok())
        .map_or_else(
            || format!("{ms} ms"),
            |t| t.round(jiff::Unit::Second).map_or(t, |r| r).to_string(),
        )
}

fn opt_when(v: &serde_json::Value) -> String {
    v.as_u64().map_or_else(|| "-".to_string(), when)
}

pub(crate) fn run(a: RetentionArgs) -> Result<()> {
    match a.cmd {
        RetentionCmd::Status { config, json } => {
            let cfg = crate::load(&config)?;
            let s = levee_edge::retention_status(&cfg, now_ms());
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_status(&s);
            }
            Ok(())
        }
        RetentionCmd::Verify { config } => {
            let cfg = crate::load(&config)?;
            let problems = levee_edge::verify_retention(&cfg);
            if problems.is_empty() {
                println!(
                    "levee retention: the ledger verifies and every file it names is as recorded"
                );
                return Ok(());
            }
            for p in &problems {
                println!("{p}");
            }
            bail!("{} discrepancies in the retention ledger", problems.len())
        }
        RetentionCmd::Hold {
            config,
            incident,
            duration,
            until,
            reason,
        } => {
            let cfg = crate::load(&config)?;
            let now = now_ms();
            let until = match (until, duration) {
                (Some(u), _) => u,
                (None, Some(d)) => now.saturating_add(d.as_millis() as u64),
                (None, None) => bail!("give --for or --until"),
            };
            if until <= now {
                bail!("--until {} is in the past", when(until));
            }
            levee_edge::hold_retention(&cfg, &incident, until, &reason, now)
                .map_err(anyhow::Error::msg)?;
            println!(
                "levee retention: hold {incident} until {}: {reason}",
                when(until)
            );
            Ok(())
        }
        RetentionCmd::Erase {
            config,
            address,
            pseudonym,
            reason,
            admin,
        } => {
            let cfg = crate::load(&config)?;
            let who = match (address, pseudonym) {
                (Some(ip), _) => levee_edge::Person::Address(ip),
                (None, Some(p)) => levee_edge::Person::Pseudonym(p),
                (None, None) => bail!("give --address or --pseudonym"),
            };
            let done = match levee_edge::erase_retention(&cfg, &who, &reason, now_ms()) {
                Ok(d) => serde_json::to_value(d)?,
                Err(levee_edge::EraseError::Busy(path)) => {
                    eprintln!(
                        "levee retention: {} is being written by a running edge; asking it to erase",
                        path.display()
                    );
                    ask_edge(&cfg, admin, &who, &reason)?
                }
                Err(e) => bail!("{e}"),
            };
            print_erased(&done);
            Ok(())
        }
    }
}

fn print_status(s: &serde_json::Value) {
    println!(
        "retention {} · ledger {} ({} entries{})",
        if s["enabled"] == true { "on" } else { "OFF" },
        s["ledger"].as_str().unwrap_or(""),
        s["ledger_entries"],
        s["ledger_broken"]
            .as_str()
            .map_or(String::new(), |e| format!(", BROKEN: {e}"))
    );
    for t in s["tiers"].as_array().into_iter().flatten() {
        let files = t["files"].as_array().map_or(0, Vec::len);
        println!(
            "\n{} log {}: kept {} days · {} files, {} bytes · oldest record {}",
            t["tier"].as_str().unwrap_or(""),
            t["log"].as_str().unwrap_or(""),
            t["days"],
            files,
            t["bytes"],
            opt_when(&t["oldest_record_ms"])
        );
        for f in t["files"].as_array().into_iter().flatten() {
            println!(
                "  {:<32} {:>12} B  records {} … {}  {}",
                f["file"].as_str().unwrap_or(""),
                f["bytes"],
                opt_when(&f["first_record_ms"]),
                opt_when(&f["last_record_ms"]),
                if f["live"] == true {
                    "live".to_string()
                } else {
                    format!("due {}", opt_when(&f["due_ms"]))
                }
            );
        }
    }
    let holds = s["holds"].as_array().cloned().unwrap_or_default();
    println!();
    if holds.is_empty() {
        println!("holds: none");
    }
    for h in &holds {
        println!(
            "HOLD {} until {}: {} (nothing is deleted or erased meanwhile)",
            h["subject"].as_str().unwrap_or(""),
            opt_when(&h["until_ms"]),
            h["reason"].as_str().unwrap_or("")
        );
    }
    let next = s["next_deletions"].as_array().cloned().unwrap_or_default();
    if !next.is_empty() {
        println!("next deletions:");
    }
    for n in next.iter().take(10) {
        println!(
            "  {} {} ({}){}",
            opt_when(&n["due_ms"]),
            n["file"].as_str().unwrap_or(""),
            n["tier"].as_str().unwrap_or(""),
            if n["overdue"] == true && n["held"] == true {
                " — due, held"
            } else if n["overdue"] == true {
                " — due at the next sweep"
            } else {
                ""
            }
        );
    }
    for u in s["erasures_unfinished"].as_array().into_iter().flatten() {
        println!(
            "UNFINISHED ERASURE started {} ({}): run it again",
            opt_when(&u["started_ms"]),
            u["reason"].as_str().unwrap_or("")
        );
    }
    if let Some(k) = s["keys"].as_object() {
        println!("pseudonym keys in {}:", k["dir"].as_str().unwrap_or(""));
        for key in k["present"].as_array().into_iter().flatten() {
            println!(
                "  {} from {} · destroyed {}",
                key["key"].as_str().unwrap_or(""),
                opt_when(&key["period_start_ms"]),
                opt_when(&key["destroyed_at_ms"])
            );
        }
    }
}

fn print_erased(d: &serde_json::Value) {
    for f in d["files"].as_array().into_iter().flatten() {
        println!(
            "  {}: {} lines removed, {} kept",
            f["file"].as_str().unwrap_or(""),
            f["lines_removed"],
            f["lines_kept"]
        );
    }
    println!(
        "levee retention: erased {} lines from {} of {} files (recorded in the ledger){}",
        d["lines_removed"],
        d["files"].as_array().map_or(0, Vec::len),
        d["files_scanned"],
        if d["resolved"] == false {
            "; the pseudonym matched no address in a raw log (only its pseudonymised lines went)"
        } else {
            ""
        }
    );
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Ask the running edge to erase (POST /retention/erase on its admin
/// listener, with the configured token); its answer, or why not.
fn ask_edge(
    cfg: &levee_config::Config,
    admin: Option<std::net::SocketAddr>,
    who: &levee_edge::Person,
    reason: &str,
) -> Result<serde_json::Value> {
    let addr = match admin {
        Some(a) => a,
        None => {
            let a = cfg.admin.address;
            if !cfg.admin.enabled {
                bail!("the edge has no admin listener ([admin] enabled = false): give --admin ADDR, or stop the edge first");
            }
            if a.port() == 0 {
                bail!("[admin] address has port 0: give the running edge's --admin ADDR");
            }
            a
        }
    };
    let token = cfg
        .admin
        .token
        .as_deref()
        .context("the edge's erasure API needs the [admin] token in the configuration")?;
    let q = match who {
        levee_edge::Person::Address(ip) => format!("address={}", enc(&ip.to_string())),
        levee_edge::Person::Pseudonym(p) => format!("pseudonym={}", enc(p)),
    };
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot reach the edge's admin listener at {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3600)))?;
    write!(
        s,
        "POST /retention/erase?{q}&reason={} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        enc(reason),
        addr.ip()
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .with_context(|| format!("reading the answer of {addr}"))?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.split(' ').nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body)
        .with_context(|| format!("the edge at {addr} answered {status}: {body}"))?;
    if status != "200" {
        bail!(
            "the edge at {addr} answered {status}: {}",
            v["error"].as_str().unwrap_or(body)
        );
    }
    Ok(v)
}
