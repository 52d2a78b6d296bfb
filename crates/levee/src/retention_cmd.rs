//! `levee retention`: check the retention ledger against the files it
//! names (`verify`), and suspend deletions for an incident (`hold`). The
//! work is the edge's (`levee_edge::verify_retention`, `hold_retention`).

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub(crate) struct RetentionArgs {
    #[command(subcommand)]
    cmd: RetentionCmd,
}

#[derive(clap::Subcommand)]
enum RetentionCmd {
    /// Check the ledger's hash chain and the files it names; exits 1 on any
    /// discrepancy (an altered or missing entry, a file deleted by hand, a
    /// destroyed key still present), naming each.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// A legal hold: the edge deletes no log file until it ends. Recorded
    /// in the ledger with its reason.
    Hold {
        #[arg(long, short)]
        config: PathBuf,
        /// What the hold is for (an incident's id).
        #[arg(long)]
        incident: String,
        /// How long: 30d, 12h, 90m (a bare number is seconds).
        #[arg(long = "for", value_parser = crate::duration::seconds)]
        duration: Duration,
        #[arg(long)]
        reason: String,
    },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) fn run(a: RetentionArgs) -> Result<()> {
    match a.cmd {
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
            reason,
        } => {
            let cfg = crate::load(&config)?;
            let now = now_ms();
            let until = now.saturating_add(duration.as_millis() as u64);
            levee_edge::hold_retention(&cfg, &incident, until, &reason, now)
                .map_err(anyhow::Error::msg)?;
            println!("levee retention: hold for {incident} until {until} ms since the epoch (for {duration:?}): {reason}");
            Ok(())
        }
    }
}
