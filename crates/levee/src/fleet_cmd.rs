//! `[fleet]` wiring: start the fleet engine (`levee-fleet`) over the
//! edge's `Shared` (the `Member` the engine talks to), and `levee fleet
//! status`. Wiring only: the edge decides, the engine carries.

use anyhow::{bail, Context, Result};
use levee_edge::Shared;
use levee_fleet::{Joined, Member, View};
use levee_limits::fleet::{CounterDelta, CounterTotal, Decision};
use std::path::PathBuf;
use std::sync::Arc;

/// The edge as the fleet engine sees it.
struct Edge(Arc<Shared>);

impl Member for Edge {
    fn take_counts(&self) -> Vec<CounterDelta> {
        self.0.fleet_take_counts()
    }
    fn apply_totals(&self, totals: &[CounterTotal]) {
        self.0.fleet_apply_totals(totals);
    }
    fn take_decisions(&self) -> Vec<Decision> {
        self.0.fleet_take_decisions()
    }
    fn apply_decision(&self, d: &Decision) -> Result<(), String> {
        self.0.fleet_apply(d)
    }
    fn set_edges(&self, live: u32, degraded: bool) {
        self.0.fleet_set_edges(live, degraded);
    }
    fn heartbeat(&self) -> serde_json::Value {
        self.0.fleet_heartbeat()
    }
    fn show(&self, view: &View) {
        self.0.fleet_show(
            serde_json::to_value(view).unwrap_or_default(),
            view.metrics(unix_ms()),
        );
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `[fleet]` and the challenge secret, resolved (`None`: no fleet).
pub(crate) fn settings(cfg: &levee_config::Config) -> Result<Option<levee_fleet::Settings>> {
    let Some(f) = cfg.fleet.as_ref() else {
        return Ok(None);
    };
    let secret = cfg.challenge.secret.as_deref().unwrap_or_default();
    let ca_pem = match &f.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("fleet.ca: cannot read {p}"))?),
        None => None,
    };
    Ok(Some(levee_fleet::Settings {
        url: f.redis.clone(),
        cluster: f.cluster,
        ca_pem,
        name: levee_edge::edge_name(cfg),
        sync_every: f.sync_every.as_duration(),
        timeout: f.timeout.as_duration(),
        connect_timeout: f.connect_timeout.as_duration(),
        failures_to_open: f.failures_to_open,
        open_for: f.open_for.as_duration(),
        edge_ttl: f.edge_ttl.as_duration(),
        secret_fingerprint: levee_challenge::fingerprint(secret.as_bytes()),
    }))
}

/// Join the fleet, if configured. A secret that differs from the fleet's
/// stops the start; an unreachable store does not (the edge starts on its
/// own, enforcing its share of each limit, and keeps trying).
pub(crate) fn start(s: Option<levee_fleet::Settings>, shared: &Arc<Shared>) -> Result<()> {
    let Some(s) = s else {
        return Ok(());
    };
    let (name, url) = (s.name.clone(), redacted(&s.url));
    shared.join_fleet(&name);
    match levee_fleet::start(s, Arc::new(Edge(Arc::clone(shared))))? {
        Joined::Connected => {
            eprintln!("levee: fleet: joined as {name} through {url}");
        }
        Joined::Unreachable(e) => eprintln!(
            "levee: fleet: warning: {url} is unreachable ({e}); serving on this edge's share of each limit until it answers"
        ),
    }
    Ok(())
}

/// A store URL without its password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[derive(clap::Args)]
pub(crate) struct FleetArgs {
    #[command(subcommand)]
    cmd: FleetCmd,
}

#[derive(clap::Subcommand)]
enum FleetCmd {
    /// The fleet's edges (last heartbeat, sites' modes and rules) and its live
    /// decisions, read from the store.
    Status {
        /// The edge's configuration file (for `[fleet]`).
        #[arg(long, short)]
        config: PathBuf,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(args: FleetArgs) -> Result<()> {
    let FleetCmd::Status { config, json } = args.cmd;
    let cfg = crate::load(&config)?;
    let Some(s) = settings(&cfg)? else {
        bail!("{} has no [fleet] section", config.display());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt
        .block_on(levee_fleet::fleet_status(&s))
        .with_context(|| format!("reading the fleet's state from {}", redacted(&s.url)))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let now = unix_ms();
    println!(
        "{:<20} {:>8} {:>6}  sites (mode, rules)",
        "edge", "seen", "live"
    );
    for e in &r.edges {
        let sites = e
            .said
            .get("sites")
            .and_then(|s| s.as_object())
            .map(|m| {
                m.iter()
                    .map(|(n, v)| {
                        format!(
                            "{n}: {} {}",
                            v.get("mode").and_then(|m| m.as_str()).unwrap_or("?"),
                            v.get("rules").and_then(|r| r.as_u64()).unwrap_or(0)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let degraded = e.said.get("degraded").and_then(|d| d.as_bool()) == Some(true);
        println!(
            "{:<20} {:>7.1}s {:>6}  {sites}{}",
            e.name,
            now.saturating_sub(e.last_heartbeat_unix_ms) as f64 / 1000.0,
            if e.live { "yes" } else { "no" },
            if degraded {
                "  (on its own: store unreachable)"
            } else {
                ""
            }
        );
    }
    println!("\n{} live decisions:", r.decisions.len());
    for d in &r.decisions {
        println!(
            "  {:<40} from {:<12} expires in {:.0}s",
            d.id(),
            d.origin,
            d.expires_unix_ms.saturating_sub(now) as f64 / 1000.0
        );
    }
    for u in &r.unreadable {
        println!("  unreadable snapshot entry {u}");
    }
    Ok(())
}
