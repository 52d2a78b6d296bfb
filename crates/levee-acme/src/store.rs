//! The state directory: the account's credentials and each host's
//! certificate and key, written atomically (a temporary file, then a
//! rename) with keys readable by the owner only (0600).
//!
//! ```text
//! STATE_DIR/account-<hash of the directory URL>.json
//! STATE_DIR/certs/<host>.pem      chain, leaf first
//! STATE_DIR/certs/<host>.key      PKCS#8 key
//! ```

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// The files of one state directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

/// FNV-1a, for a stable file name per directory URL.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Store {
    pub(crate) fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    pub(crate) fn account_path(&self, directory: &str) -> PathBuf {
        self.dir
            .join(format!("account-{:016x}.json", fnv(directory)))
    }

    fn cert_paths(&self, host: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.join("certs");
        (d.join(format!("{host}.pem")), d.join(format!("{host}.key")))
    }

    /// Write `bytes` to `path` atomically, mode 0600.
    pub(crate) fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), String> {
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))
    }

    /// The stored certificate chain and key of `host`, if both are there.
    pub(crate) fn load_cert(&self, host: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let (c, k) = self.cert_paths(host);
        Some((std::fs::read(c).ok()?, std::fs::read(k).ok()?))
    }

    /// Keep `host`'s new certificate: the key first, so that a chain on
    /// disk never meets an older key after a crash between the two.
    pub(crate) fn save_cert(&self, host: &str, chain: &[u8], key: &[u8]) -> Result<(), String> {
        let (c, k) = self.cert_paths(host);
        self.write(&k, key)?;
        self.write(&c, chain)
    }

    /// Check that the directory can be created and written, at start.
    pub(crate) fn check(&self) -> Result<(), String> {
        let probe = self.dir.join(".levee-write-check");
        self.write(&probe, b"ok")?;
        let _ = std::fs::remove_file(probe);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn keys_are_private_and_writes_atomic() {
        let dir = std::env::temp_dir().join(format!("levee-acme-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let s = Store::new(&dir);
        s.check().unwrap();
        assert!(s.load_cert("a.test").is_none());
        s.save_cert("a.test", b"chain", b"key").unwrap();
        assert_eq!(
            s.load_cert("a.test").unwrap(),
            (b"chain".to_vec(), b"key".to_vec())
        );
        let mode = std::fs::metadata(dir.join("certs/a.test.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!dir.join("certs/a.test.key.tmp").exists());
        assert_ne!(
            s.account_path("https://a/dir"),
            s.account_path("https://b/dir")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
