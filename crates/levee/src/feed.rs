//! `levee serve` with `[xdp] iface`: attach (or reuse) the packet filter and
//! copy the edge's block decisions into it every `sync_every`, on a thread of
//! its own. Wiring only: the edge decides (`Shared::filter_view`),
//! `levee_xdp::Mirror` copies.

use levee_config::{Xdp, XdpMode};
use levee_edge::Shared;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Start the filter and its feeder; on any failure say so once and return
/// (the edge carries on without it).
pub(crate) fn start(cfg: &Xdp, shared: &Arc<Shared>) {
    let Some(iface) = cfg.iface.clone() else {
        return;
    };
    // The SYN proxy only with the host settings in place: without the
    // nftables SYNPROXY table, every connection to its ports would fail.
    let problems = levee_xdp::host::synproxy_problems(&cfg.synproxy_ports);
    let config = levee_xdp::Config {
        drop_fragments: !cfg.keep_fragments,
        syn_budget: cfg.syn_budget,
        pkt_budget: cfg.packet_budget,
        window_ms: (cfg.window.as_duration().as_millis() as u64).max(1),
        synproxy: !cfg.synproxy_ports.is_empty() && problems.is_empty(),
        synproxy_mss: cfg.synproxy_mss,
        synproxy_wscale: cfg.synproxy_wscale,
    };
    let mode = match cfg.mode {
        XdpMode::Auto => aya::programs::XdpMode::Default,
        XdpMode::Native => aya::programs::XdpMode::Driver,
        XdpMode::Generic => aya::programs::XdpMode::Skb,
    };
    let dir = Path::new(&cfg.pin_dir);
    let (mut filter, how) = match levee_xdp::attach_or_reuse(config, dir, &iface, mode) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("levee: packet filter off ({e}); the edge carries on without it");
            shared.event(
                "packet_filter",
                "",
                serde_json::json!({"iface": iface, "attached": false, "error": e.to_string()}),
            );
            return;
        }
    };
    if let Err(e) = filter.set_ports(&cfg.service_ports, &cfg.synproxy_ports) {
        eprintln!("levee: packet filter: ports: {e}");
    }
    if !cfg.synproxy_ports.is_empty() {
        if problems.is_empty() {
            eprintln!(
                "levee: XDP SYN proxy on ports {:?} (with the nftables SYNPROXY table levee_synproxy)",
                cfg.synproxy_ports
            );
        } else {
            eprintln!(
                "levee: warning: XDP SYN proxy left off for ports {:?}: {}; load the host settings printed by `levee xdp synproxy-rules --port PORT` and restart",
                cfg.synproxy_ports,
                problems.join("; ")
            );
        }
    }
    let reused = how == levee_xdp::Attached::Reused;
    eprintln!(
        "levee: packet filter on {iface} ({}; pins in {}); block decisions mirrored every {:?}",
        if reused {
            "already attached, reused"
        } else {
            "attached"
        },
        dir.display(),
        cfg.sync_every.as_duration()
    );
    match levee_xdp::host::ensure_syncookies() {
        Ok((_, true)) => eprintln!("levee: SYN cookies were off; turned on"),
        Ok(_) => {}
        Err(e) => eprintln!("levee: warning: {e}"),
    }
    shared.event(
        "packet_filter",
        "",
        serde_json::json!({"iface": iface, "attached": true, "reused": reused}),
    );
    let mut mirror = match levee_xdp::Mirror::adopt(&filter) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("levee: packet filter: cannot read its maps ({e}); starting empty");
            levee_xdp::Mirror::default()
        }
    };
    let every = cfg.sync_every.as_duration();
    let sh = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("levee-xdp-feed".into())
        .spawn(move || feed(&sh, &mut filter, &mut mirror, every));
    if let Err(e) = spawned {
        eprintln!("levee: packet filter: cannot start its feeder: {e}");
    }
}

/// The filter's counters in Prometheus text, for the edge's `/metrics`.
fn publish_metrics(shared: &Shared, filter: &levee_xdp::Filter, mirror: &levee_xdp::Mirror) {
    use std::fmt::Write;
    let Ok(stats) = filter.stats() else {
        return;
    };
    let mut t = String::from(
        "# HELP levee_xdp_packets_total Packets the XDP filter saw, by verdict reason.\n# TYPE levee_xdp_packets_total counter\n",
    );
    for (r, n) in stats {
        let _ = writeln!(t, "levee_xdp_packets_total{{reason=\"{}\"}} {n}", r.label());
    }
    let _ = writeln!(
        t,
        "# HELP levee_xdp_mirrored_blocks Edge blocks held in the XDP filter.\n# TYPE levee_xdp_mirrored_blocks gauge\nlevee_xdp_mirrored_blocks {}",
        mirror.len()
    );
    shared.set_extra_metrics(t);
}

fn feed(
    shared: &Shared,
    filter: &mut levee_xdp::Filter,
    mirror: &mut levee_xdp::Mirror,
    every: Duration,
) {
    let mut last_sweep = Instant::now();
    let mut last_metrics = Instant::now();
    let mut last_key = None;
    let mut warned = false;
    while !shared.shutting_down() {
        // Rebuild the wanted set only when something it depends on moved
        // (list files can hold many thousands of prefixes).
        let key = shared.view_key();
        if key.prefix_rules || last_key != Some(key) {
            let view = shared.filter_view();
            let wanted = levee_xdp::Wanted {
                blocks: view
                    .blocks
                    .into_iter()
                    .map(|(ip, len, left)| ((ip, len), left))
                    .collect(),
                allow: view.allow,
            };
            let a = mirror.apply(filter, &wanted, levee_xdp::monotonic_ns());
            if a.failed > 0 {
                if !warned {
                    eprintln!(
                        "levee: packet filter: {} entries refused by the kernel (maps full?); retrying",
                        a.failed
                    );
                    warned = true;
                }
                last_key = None;
            } else {
                last_key = Some(key);
            }
        }
        if last_metrics.elapsed() >= Duration::from_secs(1) {
            last_metrics = Instant::now();
            publish_metrics(shared, filter, mirror);
        }
        // Expired entries never drop anything (the program checks expiry);
        // the edge's own leave with the edge's expiry above; this sweep
        // removes manual ones (`levee xdp block --ttl`), walking every map.
        if last_sweep.elapsed() >= Duration::from_secs(60) {
            last_sweep = Instant::now();
            let _ = filter.sweep(levee_xdp::monotonic_ns());
        }
        std::thread::sleep(every);
    }
}
