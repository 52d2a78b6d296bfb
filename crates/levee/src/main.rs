//! `levee`: the command line. It parses arguments and wires the engines
//! together; the work happens in the `levee-*` crates.

mod acme_cmd;
mod crowdsec_cmd;
mod duration;
mod feed;
mod fleet_cmd;
mod hunt_cmd;
mod report_cmd;
mod retention_cmd;
mod xdp_cmd;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// mimalloc: fewer page faults and no `madvise` churn on the request path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "levee",
    version,
    about = "A self-hosted DDoS shield for web platforms"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the edge: a hardened reverse proxy in front of your origins.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, short, required_unless_present = "demo", conflicts_with = "demo")]
        config: Option<PathBuf>,
        /// Run with a built-in demo origin and no configuration file.
        #[arg(long)]
        demo: bool,
        /// With --demo: where the edge listens.
        #[arg(long, default_value = "127.0.0.1:8080", requires = "demo")]
        listen: SocketAddr,
        /// With --demo: where the admin listener listens.
        #[arg(long, default_value = "127.0.0.1:9090", requires = "demo")]
        admin: SocketAddr,
        /// Worker threads (default: one per available core).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Rehearse an attack against your own edge (which must opt in) and measure
    /// what legitimate users felt.
    Drill(Box<DrillArgs>),
    /// Validate a configuration file without starting anything.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Review web access logs after an attack: Sigma rules, indicators of
    /// compromise and exfiltration detectors; say what was checked and what
    /// was found. Exit status: 0 no finding at or above --fail-on, 1
    /// findings, 2 usage errors.
    #[command(after_help = hunt_cmd::after_help())]
    Hunt(Box<hunt_cmd::HuntArgs>),
    /// The incident report for the CERT and the regulator (Markdown, HTML,
    /// JSON, STIX 2.1) from an incident record and hunt's findings.
    Report(Box<report_cmd::ReportArgs>),
    /// The XDP packet filter (root): attach, detach, block, unblock, allow, stats, list.
    Xdp(Box<xdp_cmd::XdpArgs>),
    /// The retention ledger: verify it against the files, or put a legal hold.
    Retention(retention_cmd::RetentionArgs),
    /// Fleet mode (`[fleet]`): the edges sharing one Redis and their decisions.
    Fleet(fleet_cmd::FleetArgs),
    /// Run only the demo origin (for benchmarks that put other proxies in
    /// front of the same origin). Never expose it: it serves fake data.
    DemoOrigin {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Serve {
            config,
            demo,
            listen,
            admin,
            workers,
        } => serve(config, demo, listen, admin, workers),
        Cmd::Check { config } => check(&config),
        Cmd::Drill(args) => drill(*args),
        Cmd::DemoOrigin { listen } => demo_origin(listen),
        Cmd::Hunt(args) => hunt_cmd::run(*args),
        Cmd::Report(args) => report_cmd::run(*args),
        Cmd::Xdp(args) => xdp_cmd::run(*args),
        Cmd::Retention(args) => retention_cmd::run(args),
        Cmd::Fleet(args) => fleet_cmd::run(args),
    };
    if let Err(e) = result {
        eprintln!("levee: error: {e:#}");
        std::process::exit(1);
    }
}

pub(crate) fn load(path: &Path) -> Result<levee_config::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    Ok(levee_config::parse(&path.display().to_string(), &text)?)
}

fn demo_origin(listen: SocketAddr) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (addr, _stats) = levee_origin::spawn(listen)
            .await
            .with_context(|| format!("cannot start the demo origin on {listen}"))?;
        eprintln!("levee: demo origin on http://{addr} (stats: /__origin/stats)");
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        Ok(())
    })
}

fn check(path: &Path) -> Result<()> {
    let cfg = load(path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async { levee_edge::check(cfg) })
        .with_context(|| format!("{} is valid TOML but cannot be used", path.display()))?;
    println!("{}: ok", path.display());
    Ok(())
}

fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn serve(
    config: Option<PathBuf>,
    demo: bool,
    listen: SocketAddr,
    admin: SocketAddr,
    workers: Option<usize>,
) -> Result<()> {
    let workers = match workers {
        Some(0) => bail!("--workers must be at least 1"),
        Some(w) => w,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // The control runtime (admin, health checks, signals); the edge starts its own workers.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let (cfg, loader): (levee_config::Config, Option<levee_edge::Loader>) = if demo {
            let (origin, _stats) = levee_origin::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .context("cannot start the demo origin")?;
            let token = random_token();
            eprintln!("levee: demo origin on http://{origin}");
            eprintln!("levee: drill token (GET /.well-known/levee-drill): {token}");
            let mut cfg = levee_config::demo(listen, admin, origin, &token);
            let dir = std::env::temp_dir().join("levee-demo-incidents");
            eprintln!("levee: demo incident records in {}", dir.display());
            cfg.incidents.dir = Some(dir.display().to_string());
            (cfg, None)
        } else {
            let path = config.context("--config is required")?;
            let cfg = load(&path)?;
            let p = path.clone();
            let loader: levee_edge::Loader =
                Box::new(move || load(&p).map_err(|e| format!("{e:#}")));
            (cfg, Some(loader))
        };
        let drain = cfg.limits.drain_timeout.as_duration();
        let xdp = cfg.xdp.clone();
        let fleet = fleet_cmd::settings(&cfg)?;
        let crowdsec = crowdsec_cmd::settings(&cfg)?;
        let acme = acme_cmd::settings(&cfg, fleet.as_ref())?;
        let edge = levee_edge::Edge::start(cfg, loader, workers)
            .await
            .context("cannot start the edge")?;
        fleet_cmd::start(fleet, &edge.shared)?;
        crowdsec_cmd::start(crowdsec, &edge.shared)?;
        acme_cmd::start(acme, &edge.shared)?;
        feed::start(&xdp, &edge.shared);
        for a in &edge.listen {
            eprintln!("levee: edge listening on http://{a}");
        }
        if let Some(a) = edge.admin {
            eprintln!("levee: admin listening on http://{a}");
        }
        if demo {
            eprintln!(
                "levee: try: curl -i http://{}/",
                edge.listen.first().map_or(listen, |a| *a)
            );
        }
        wait_for_signals(&edge).await?;
        eprintln!("levee: shutting down, draining connections for up to {drain:?}");
        let left = edge.shutdown(drain).await;
        if left > 0 {
            eprintln!("levee: {left} connections still open at the drain deadline; closing them");
        } else {
            eprintln!("levee: drained");
        }
        Ok::<(), anyhow::Error>(())
    })?;
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

async fn wait_for_signals(edge: &levee_edge::Edge) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let sh = std::sync::Arc::clone(&edge.shared);
                match tokio::task::spawn_blocking(move || sh.reload()).await {
                    Ok(Ok(g)) => eprintln!("levee: configuration reloaded (generation {g})"),
                    Ok(Err(e)) => eprintln!("levee: reload refused, still running the previous configuration: {e}"),
                    Err(e) => eprintln!("levee: reload failed: {e}"),
                }
            }
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
        }
    }
}

#[derive(clap::Args)]
struct DrillArgs {
    /// The edge to drill, e.g. http://127.0.0.1:8080/ or https://example.org/
    #[arg(long)]
    target: String,
    /// A built-in scenario (http-flood, carpet-bomb, cache-bust, dogpile,
    /// conn-flood, slowloris, slow-post, slow-read, malformed, h2-rapid-reset,
    /// h2-continuation, h2-ping-flood, tls-handshake-flood, mixed) or a TOML file.
    #[arg(long)]
    scenario: String,
    /// How long the attack lasts: 30s, 2m, 1h (a bare number is seconds).
    #[arg(long, default_value = "30s", value_parser = duration::seconds)]
    duration: Duration,
    /// Legitimate traffic alone before the attack: 2s, 0 (a bare number is seconds).
    #[arg(long, default_value = "2s", value_parser = duration::seconds)]
    warmup: Duration,
    /// Attack requests per second in all (default: as fast as possible).
    #[arg(long)]
    rate: Option<u32>,
    /// The edge's drill token (`[drill] token`); optional for loopback targets.
    #[arg(long, env = "LEVEE_DRILL_TOKEN")]
    token: Option<String>,
    /// Stop after this many attack requests.
    #[arg(long, default_value_t = 50_000_000)]
    max_requests: u64,
    /// The edge's admin address, to chart its CPU and memory.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// The origin's address, if it is Levee's demo origin, to count what reached it.
    #[arg(long)]
    origin: Option<SocketAddr>,
    /// Number of legitimate clients (default: the scenario's).
    #[arg(long)]
    legit: Option<u32>,
    /// Token the scenario's staff clients carry (`Authorization: Bearer ...`).
    #[arg(long, env = "LEVEE_STAFF_TOKEN")]
    staff_token: Option<String>,
    /// Write the JSON result here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// A condition that must hold, e.g. 'legit_success>=0.999' (repeatable).
    #[arg(long)]
    expect: Vec<String>,
    /// Threads for the drill's clients (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// The Host header to send (default: the target's host).
    #[arg(long)]
    host: Option<String>,
    /// Attack over IPv6 from a network namespace the drill creates (needs root):
    /// bots use many /64s of fd00:1e7e:b::/48; the edge must listen on [::] and
    /// is reached at fd00:1e7e::1 (a loopback target is rewritten to it).
    #[arg(long)]
    ipv6: bool,
    /// Internal: this drill runs inside the IPv6 namespace.
    #[arg(long, hide = true)]
    v6_sources: bool,
}

/// `--ipv6`: make the namespace, run this same drill inside it, clean up.
fn drill_in_namespace(a: &DrillArgs) -> Result<()> {
    let ns = levee_drill::netns::Netns::create()?;
    let port = a
        .target
        .rsplit_once(':')
        .and_then(|(_, p)| p.trim_end_matches('/').parse::<u16>().ok())
        .context("--ipv6 needs a target with a port, e.g. http://127.0.0.1:8080/")?;
    let loopback = a.target.contains("://127.")
        || a.target.contains("://localhost")
        || a.target.contains("://[::1]");
    let target = if loopback {
        format!("http://[{}]:{port}/", levee_drill::netns::HOST_ADDR)
    } else {
        a.target.clone()
    };
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1).peekable();
    while let Some(x) = it.next() {
        if x == "--ipv6" {
            continue;
        }
        if x == "--target" {
            it.next();
            args.extend(["--target".to_string(), target.clone()]);
            continue;
        }
        if x.starts_with("--target=") {
            args.push(format!("--target={target}"));
            continue;
        }
        args.push(x);
    }
    args.push("--v6-sources".into());
    if a.host.is_none() && loopback {
        args.extend(["--host".to_string(), "localhost".to_string()]);
    }
    let exe = std::env::current_exe().context("cannot find the levee executable")?;
    eprintln!(
        "levee drill: IPv6 namespace {} ready; attacking {target} from fd00:1e7e:b::/48",
        ns.name
    );
    let status = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(exe)
        .args(&args)
        .status()
        .context("cannot run the drill inside the namespace")?;
    drop(ns);
    if !status.success() {
        bail!("the drill inside the IPv6 namespace failed ({status})");
    }
    Ok(())
}

fn drill(a: DrillArgs) -> Result<()> {
    if a.ipv6 {
        return drill_in_namespace(&a);
    }
    let scenario = if a.scenario.ends_with(".toml") || Path::new(&a.scenario).exists() {
        let text = std::fs::read_to_string(&a.scenario)
            .with_context(|| format!("cannot read the scenario file {}", a.scenario))?;
        levee_drill::scenario::parse(&a.scenario, &text)?
    } else {
        levee_drill::scenario::built_in(&a.scenario)?
    };
    let expects = a
        .expect
        .iter()
        .map(|e| levee_drill::expect::parse(e))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = a.workers {
        rt.worker_threads(w.max(1));
    }
    let rt = rt
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let opts = levee_drill::Options {
        target: a.target,
        scenario,
        duration: a.duration,
        warmup: a.warmup,
        rate: a.rate,
        token: a.token,
        max_requests: a.max_requests,
        admin: a.admin,
        origin: a.origin,
        legit_clients: a.legit,
        staff_token: a.staff_token,
        live: true,
        host: a.host,
        v6_sources: a.v6_sources,
    };
    eprintln!(
        "levee drill: {} against {} for {:?} (+{:?} warm-up)",
        opts.scenario.name, opts.target, opts.duration, opts.warmup
    );
    let mut report = rt.block_on(levee_drill::run(opts))?;
    let mut failed = Vec::new();
    for e in &expects {
        let verdict = e.check(&report.summary)?;
        report
            .expectations
            .push((e.text.clone(), verdict.is_none()));
        if let Some(why) = verdict {
            failed.push(why);
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&report.summary).unwrap_or_default()
    );
    if let Some(p) = &a.json {
        std::fs::write(p, report.to_json())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &a.html {
        std::fs::write(p, report.to_html())
            .with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("levee drill: report written to {}", p.display());
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    if !failed.is_empty() {
        bail!("expectations failed:\n  {}", failed.join("\n  "));
    }
    Ok(())
}
