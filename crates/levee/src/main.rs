//! `levee`: the command line. It parses arguments and wires the engines
//! together; the work happens in the `levee-*` crates.

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
    /// Validate a configuration file without starting anything.
    Check {
        #[arg(long, short)]
        config: PathBuf,
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
    };
    if let Err(e) = result {
        eprintln!("levee: error: {e:#}");
        std::process::exit(1);
    }
}

fn load(path: &Path) -> Result<levee_config::Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    Ok(levee_config::parse(&path.display().to_string(), &text)?)
}

fn check(path: &Path) -> Result<()> {
    let cfg = load(path)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async { levee_edge::state::State::build(cfg, None, 0) })
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
            (levee_config::demo(listen, admin, origin, &token), None)
        } else {
            let path = config.context("--config is required")?;
            let cfg = load(&path)?;
            let p = path.clone();
            let loader: levee_edge::Loader =
                Box::new(move || load(&p).map_err(|e| format!("{e:#}")));
            (cfg, Some(loader))
        };
        let drain = cfg.limits.drain_timeout.as_duration();
        let edge = levee_edge::Edge::start(cfg, loader, workers)
            .await
            .context("cannot start the edge")?;
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
