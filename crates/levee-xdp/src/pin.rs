//! Pinning: the filter's link and maps live in a bpffs directory, so the
//! protection stays while no controller runs; `attach_or_reuse` is what
//! `levee serve` does at start, `detach` what `levee xdp detach` does.

use crate::{host, Config, Filter, XdpError, MAPS};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{ProgramError, Xdp, XdpMode};
use std::path::Path;

/// Mount bpffs at /sys/fs/bpf when the pin directory lives there and it is
/// not mounted yet (pins elsewhere must already be on a bpffs).
pub fn ensure_bpffs(dir: &Path) -> Result<(), XdpError> {
    if !dir.starts_with("/sys/fs/bpf") {
        return Ok(());
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    if mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/bpf") && l.contains(" bpf "))
    {
        return Ok(());
    }
    let ok = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(XdpError::Pin(
            "bpffs is not mounted at /sys/fs/bpf and mounting it failed: run `mount -t bpf bpf /sys/fs/bpf` as root".into(),
        ))
    }
}

/// How `attach_or_reuse` got its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// Loaded and attached now.
    New,
    /// A filter was already attached (pinned); its maps are reused.
    Reused,
}

/// The `levee serve` path: reuse a pinned, attached filter (so a restarted
/// edge keeps every block and never leaves the interface unprotected), or
/// load, attach and pin one.
pub fn attach_or_reuse(
    config: Config,
    dir: &Path,
    iface: &str,
    mode: XdpMode,
) -> Result<(Filter, Attached), XdpError> {
    host::check_privileges().map_err(XdpError::Pin)?;
    host::check_iface(iface).map_err(XdpError::Pin)?;
    ensure_bpffs(dir)?;
    let want = host::ifindex(iface);
    if dir.join("link").exists() {
        let mut f = Filter::open_pinned(None, dir)?;
        if f.ifindex != 0 && want.is_some_and(|w| w != f.ifindex) {
            return Err(XdpError::Pin(format!(
                "the filter pinned in {} is attached to another interface (index {}), not {iface}: `levee xdp detach --pin-dir {}` first, or give this one another pin_dir",
                dir.display(),
                f.ifindex,
                dir.display()
            )));
        }
        f.set_config(config)?;
        return Ok((f, Attached::Reused));
    }
    let mut f = Filter::open_pinned(Some(config), dir)?;
    f.attach(iface, mode)?;
    Ok((f, Attached::New))
}

impl Filter {
    /// Attach to an interface and pin the link (needs `open_pinned`): the
    /// filter stays attached after this process exits.
    pub fn attach(&mut self, iface: &str, mode: XdpMode) -> Result<(), XdpError> {
        let dir = self
            .pin_dir
            .clone()
            .ok_or_else(|| XdpError::Pin("attach needs a pinned filter".into()))?;
        let prog: &mut Xdp = self
            .ebpf
            .program_mut("levee_xdp")
            .ok_or_else(|| XdpError::Load("no program levee_xdp".into()))?
            .try_into()?;
        let id = prog.attach(iface, mode).map_err(|e| match e {
            ProgramError::UnknownInterface { .. } => {
                XdpError::Pin(format!("no interface {iface:?} (see `ip link`)"))
            }
            other => XdpError::Program(other),
        })?;
        let link = prog.take_link(id)?;
        let fd: FdLink = link.try_into().map_err(|e| {
            XdpError::Pin(format!(
                "the kernel attached without a bpf_link ({e:?}); it cannot be pinned"
            ))
        })?;
        fd.pin(dir.join("link"))
            .map_err(|e| XdpError::Pin(format!("cannot pin the link: {e}")))?;
        self.ifindex = host::ifindex(iface).unwrap_or(0);
        self.write_config()?;
        Ok(())
    }

    /// Remove the pinned link (the program leaves the interface) and the map pins.
    pub fn detach(dir: &Path) -> Result<(), XdpError> {
        let link = dir.join("link");
        if !link.exists() {
            return Err(XdpError::NotAttached(link.display().to_string()));
        }
        let pinned = PinnedLink::from_pin(&link)
            .map_err(|e| XdpError::Pin(format!("cannot open {}: {e}", link.display())))?;
        let fd = pinned
            .unpin()
            .map_err(|e| XdpError::Pin(format!("cannot unpin {}: {e}", link.display())))?;
        drop(fd);
        for m in MAPS {
            let _ = std::fs::remove_file(dir.join(m));
        }
        let _ = std::fs::remove_dir(dir);
        Ok(())
    }
}
