//! `levee report`: an incident record (and hunt's findings) into the
//! report for the CERT and the regulator (`levee-report`).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The incident record: a file of `[incidents] dir`, or what `GET
    /// /incidents/{id}` returned. Repeat it for each fleet edge's part of
    /// one incident: the parts merge into one.
    #[arg(long, required = true)]
    incident: Vec<PathBuf>,
    /// `levee hunt --json` findings from the same period (without them the
    /// personal-data question is "not assessed").
    #[arg(long)]
    hunt: Option<PathBuf>,
    /// The edge's configuration: route tags (personal, special categories,
    /// export) and the retention ledger.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The retention ledger to cite (default: the one of --config).
    #[arg(long)]
    ledger: Option<PathBuf>,
    /// Pseudonymise addresses under this key (the file `levee hunt
    /// --pseudonymize` used); without it, a key drawn for this report.
    #[arg(long, conflicts_with = "raw_addresses")]
    key: Option<PathBuf>,
    /// Show client addresses as they are (to share with a CSIRT).
    #[arg(long)]
    raw_addresses: bool,
    /// The reporting organisation, as the forms should name it.
    #[arg(long)]
    organisation: Option<String>,
    /// Write a self-contained, printable HTML page here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write Markdown here (the default, to standard output, when no output is given).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a STIX 2.1 bundle here.
    #[arg(long)]
    stix: Option<PathBuf>,
}

fn write(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("levee report: wrote {}", path.display());
    Ok(())
}

pub(crate) fn run(a: ReportArgs) -> Result<()> {
    let mut parts = Vec::new();
    let mut names = Vec::new();
    for path in &a.incident {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the incident record {name}"))?;
        let part = levee_incident::read_any(&name, &text);
        if part.id.is_empty() && part.series.is_empty() {
            for p in &part.problems {
                eprintln!("levee report: {p}");
            }
            bail!("{name}: no incident in it (give a file of [incidents] dir, or the JSON of GET /incidents/ID)");
        }
        parts.push(part);
        names.push(name);
    }
    let incident = levee_incident::merge(parts);
    for p in &incident.problems {
        eprintln!("levee report: warning: {p}");
    }
    let name = names.join(", ");
    let hunt = match &a.hunt {
        Some(p) => {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the hunt findings {}", p.display()))?;
            Some(
                serde_json::from_str::<levee_report::hunt::Hunt>(&t)
                    .with_context(|| format!("{}: not `levee hunt --json` output", p.display()))?,
            )
        }
        None => None,
    };
    let cfg = match &a.config {
        Some(c) => Some(crate::load(c)?),
        None => None,
    };
    let routes = cfg
        .iter()
        .flat_map(|c| c.site.iter())
        .flat_map(|s| {
            s.route.iter().map(|r| levee_report::RouteTag {
                site: s.name.clone(),
                name: r.name.clone(),
                paths: r.paths.clone(),
                personal: r.is_personal(),
                special: r.special.clone(),
                export: r.export,
            })
        })
        .collect();
    let ledger_path = a
        .ledger
        .clone()
        .or_else(|| cfg.as_ref().map(|c| levee_edge::ledger_path(&c.access_log)));
    let ledger = match ledger_path {
        Some(p) if p.exists() => {
            let t = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read the retention ledger {}", p.display()))?;
            Some(levee_report::cite_ledger(
                &p.display().to_string(),
                &t,
                &incident.id,
                incident.opened_unix_ms,
                incident.closed_unix_ms,
            ))
        }
        Some(p) if a.ledger.is_some() => {
            bail!("the retention ledger {} does not exist", p.display())
        }
        _ => None,
    };
    let addresses = if a.raw_addresses {
        levee_report::Addresses::Raw
    } else {
        let (key, same) = match &a.key {
            Some(p) => {
                let k = std::fs::read(p)
                    .with_context(|| format!("cannot read the key file {}", p.display()))?;
                if k.len() < 16 {
                    bail!("the key file {} must hold at least 16 bytes (the file given to levee hunt --pseudonymize)", p.display());
                }
                (k, true)
            }
            None => {
                let mut k = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
                    .map_err(|_| anyhow::anyhow!("no random key could be drawn"))?;
                (k.to_vec(), false)
            }
        };
        levee_report::Addresses::Pseudonymised {
            key: levee_privacy::Pseudonymizer::new(&key, false),
            same_as_hunt: same,
        }
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let r = levee_report::build(levee_report::Input {
        incident,
        incident_file: name,
        hunt,
        hunt_file: a.hunt.as_ref().map(|p| p.display().to_string()),
        routes,
        ledger,
        addresses,
        organisation: a.organisation.clone(),
        now_ms,
    });
    let none = a.html.is_none() && a.markdown.is_none() && a.json.is_none() && a.stix.is_none();
    if let Some(p) = &a.html {
        write(p, &levee_report::html(&r))?;
    }
    if let Some(p) = &a.markdown {
        write(p, &levee_report::markdown(&r))?;
    }
    if let Some(p) = &a.json {
        write(
            p,
            &(serde_json::to_string_pretty(&r).context("serialising the report")? + "\n"),
        )?;
    }
    if let Some(p) = &a.stix {
        let b = levee_report::stix::bundle(&r);
        write(
            p,
            &(serde_json::to_string_pretty(&b).context("serialising the bundle")? + "\n"),
        )?;
    }
    if none {
        print!("{}", levee_report::markdown(&r));
    }
    Ok(())
}
