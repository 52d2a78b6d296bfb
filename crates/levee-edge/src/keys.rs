//! The pseudonymised access log's keys (`[access_log] pseudonymize`): one
//! random 32-byte key per period (`key_rotation`), in a directory of its
//! own (`key_dir`), each destroyed — overwritten, synced, removed — once
//! its period has been over for `key_linkable`. Every creation and
//! destruction is appended to the hash-chained retention ledger
//! (`levee_privacy::ledger`), synced before the key is used or after it is
//! gone, so that a crash loses no entry.
//!
//! Refusals are errors at start, never a silent fall-back to raw addresses:
//! a missing key directory, a key file that is unreadable or not 32 bytes.

use crate::ledger::Ledger;
use levee_privacy::{Pseudonymizer, KEY_LEN};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the key store cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error(
        "access_log.key_dir {0:?} is not a directory: create it (mode 700), apart from the logs"
    )]
    NoDir(PathBuf),
    #[error("pseudonym key {path:?}: {why}")]
    BadKey { path: PathBuf, why: String },
}

/// The keys of the pseudonymised log.
#[derive(Debug)]
pub(crate) struct KeyStore {
    dir: PathBuf,
    rotation_s: u64,
    linkable_s: u64,
    keep_prefix: bool,
    period: u64,
}

fn key_name(period_start_s: u64) -> String {
    format!("key-{period_start_s}.bin")
}

/// The period start of a key file's name, if it is one.
pub(crate) fn key_start(name: &str) -> Option<u64> {
    name.strip_prefix("key-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

impl KeyStore {
    /// Open the store at `now_s` and the pseudonymizer of the current period.
    pub(crate) fn open(
        cfg: &levee_config::AccessLog,
        ledger: &mut Ledger,
        now_s: u64,
    ) -> Result<(KeyStore, Pseudonymizer), KeyError> {
        let dir = PathBuf::from(cfg.key_dir.as_deref().unwrap_or(""));
        if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            return Err(KeyError::NoDir(dir));
        }
        let mut s = KeyStore {
            dir,
            rotation_s: cfg.key_rotation.as_duration().as_secs().max(1),
            linkable_s: cfg.key_linkable.as_duration().as_secs(),
            keep_prefix: cfg.keep_prefix,
            period: 0,
        };
        s.period = now_s / s.rotation_s;
        let p = s.load_or_create(ledger, now_s)?;
        s.destroy_expired(ledger, now_s);
        Ok((s, p))
    }

    fn load_or_create(
        &mut self,
        ledger: &mut Ledger,
        now_s: u64,
    ) -> Result<Pseudonymizer, KeyError> {
        let start = self.period * self.rotation_s;
        let path = self.dir.join(key_name(start));
        let bad = |why: String| KeyError::BadKey {
            path: path.clone(),
            why,
        };
        let key = match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.is_file() => return Err(bad("not a regular file".into())),
            Ok(_) => {
                let k = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
                if k.len() != KEY_LEN {
                    return Err(bad(format!(
                        "{} bytes, a key is {KEY_LEN}: restore it, or remove it to start a new period key",
                        k.len()
                    )));
                }
                k
            }
            Err(_) => {
                let mut k = vec![0u8; KEY_LEN];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut k)
                    .map_err(|_| bad("no randomness for a new key".into()))?;
                write_key(&path, &k).map_err(|e| bad(e.to_string()))?;
                let _ = ledger.append(
                    now_s * 1000,
                    "key_created",
                    &key_name(start),
                    serde_json::json!({
                        "period_start_s": start,
                        "period_end_s": start + self.rotation_s,
                        "destroy_after_s": start + self.rotation_s + self.linkable_s,
                    }),
                );
                k
            }
        };
        Ok(Pseudonymizer::new(&key, self.keep_prefix))
    }

    /// Called by the log writer: a new pseudonymizer when the period turns
    /// (old keys past their linkable time are destroyed then).
    pub(crate) fn tick(&mut self, ledger: &mut Ledger, now_s: u64) -> Option<Pseudonymizer> {
        let p = now_s / self.rotation_s;
        if p == self.period {
            return None;
        }
        self.period = p;
        let next = match self.load_or_create(ledger, now_s) {
            Ok(n) => Some(n),
            Err(e) => {
                // Keep the current key (and pseudonyms) rather than write raw addresses.
                eprintln!("levee: {e}; the previous pseudonym key stays in use");
                None
            }
        };
        self.destroy_expired(ledger, now_s);
        next
    }

    /// Overwrite, sync and remove every key whose period ended more than
    /// `key_linkable` ago, and record it.
    fn destroy_expired(&mut self, ledger: &mut Ledger, now_s: u64) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut names: Vec<(u64, PathBuf)> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                key_start(&n).map(|s| (s, e.path()))
            })
            .collect();
        names.sort();
        for (start, path) in names {
            let end = start.saturating_add(self.rotation_s);
            if end.saturating_add(self.linkable_s) > now_s || start / self.rotation_s == self.period
            {
                continue;
            }
            let wiped = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| {
                    f.write_all(&[0u8; KEY_LEN])?;
                    f.sync_all()
                })
                .and_then(|()| std::fs::remove_file(&path));
            match wiped {
                Ok(()) => {
                    let _ = ledger.append(
                        now_s * 1000,
                        "key_destroyed",
                        &key_name(start),
                        serde_json::json!({"period_start_s": start, "period_end_s": end}),
                    );
                }
                Err(e) => eprintln!(
                    "levee: cannot destroy pseudonym key {}: {e}",
                    path.display()
                ),
            }
        }
    }
}

/// The pseudonymizers of every key still in `cfg`'s key directory (the
/// periods whose pseudonyms can still be linked), oldest first.
pub(crate) fn present(cfg: &levee_config::AccessLog) -> Vec<(String, Pseudonymizer)> {
    let Some(dir) = cfg.key_dir.as_deref().filter(|_| cfg.pseudonymize) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, String, Pseudonymizer)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let start = key_start(&name)?;
            let key = std::fs::read(e.path())
                .ok()
                .filter(|k| k.len() == KEY_LEN)?;
            Some((start, name, Pseudonymizer::new(&key, cfg.keep_prefix)))
        })
        .collect();
    out.sort_by_key(|k| k.0);
    out.into_iter().map(|(_, n, p)| (n, p)).collect()
}

fn write_key(path: &Path, key: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(key)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, rotation: u64, linkable: u64) -> levee_config::AccessLog {
        levee_config::AccessLog {
            path: dir.join("logs/access.log").to_string_lossy().into_owned(),
            pseudonymize: true,
            key_dir: Some(dir.join("keys").to_string_lossy().into_owned()),
            key_rotation: levee_config::Dur::secs(rotation),
            key_linkable: levee_config::Dur::secs(linkable),
            ledger: Some(dir.join("ledger.jsonl").to_string_lossy().into_owned()),
            ..levee_config::AccessLog::default()
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("levee-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("keys")).unwrap();
        d
    }

    #[test]
    fn keys_rotate_and_are_destroyed_after_their_linkable_time() {
        let d = scratch("rotate");
        let c = cfg(&d, 100, 50);
        let ip: std::net::IpAddr = "192.0.2.9".parse().unwrap();
        let mut l = Ledger::open(d.join("ledger.jsonl")).unwrap();
        let (mut ks, p0) = KeyStore::open(&c, &mut l, 1000).unwrap();
        let first = p0.ip(ip);
        // Same period: the same key, the same pseudonym after a restart.
        let (_, again) = KeyStore::open(&c, &mut l, 1050).unwrap();
        assert_eq!(again.ip(ip), first);
        assert!(ks.tick(&mut l, 1099).is_none());
        let p1 = ks.tick(&mut l, 1100).expect("a new period");
        assert_ne!(p1.ip(ip), first);
        assert!(d.join("keys/key-1000.bin").exists(), "kept while linkable");
        ks.tick(&mut l, 1200);
        assert!(!d.join("keys/key-1000.bin").exists(), "destroyed");
        // No key Levee keeps gives the old pseudonym any more.
        for e in std::fs::read_dir(d.join("keys")).unwrap() {
            let k = std::fs::read(e.unwrap().path()).unwrap();
            assert_ne!(Pseudonymizer::new(&k, false).ip(ip), first);
        }
        let text = std::fs::read_to_string(d.join("ledger.jsonl")).unwrap();
        let (entries, _) = levee_privacy::ledger::verify(&text).unwrap();
        let acts: Vec<(&str, &str)> = entries
            .iter()
            .map(|e| (e.action.as_str(), e.subject.as_str()))
            .collect();
        assert!(
            acts.contains(&("key_destroyed", "key-1000.bin")),
            "{acts:?}"
        );
        assert!(acts.contains(&("key_created", "key-1100.bin")), "{acts:?}");
    }

    #[test]
    fn a_missing_dir_or_a_short_key_refuses_to_start() {
        let d = scratch("refuse");
        let mut c = cfg(&d, 100, 50);
        c.key_dir = Some(d.join("nowhere").to_string_lossy().into_owned());
        let mut l = Ledger::open(d.join("ledger.jsonl")).unwrap();
        assert!(matches!(
            KeyStore::open(&c, &mut l, 1000),
            Err(KeyError::NoDir(_))
        ));
        let c = cfg(&d, 100, 50);
        std::fs::write(d.join("keys/key-1000.bin"), b"short").unwrap();
        let e = KeyStore::open(&c, &mut l, 1000).unwrap_err().to_string();
        assert!(e.contains("5 bytes, a key is 32"), "{e}");
    }
}
