//! A real `redis-server` (and `redis-cli`) for the fleet tests: started on
//! a free loopback port, without persistence, optionally with a password or
//! over TLS only; killed on drop, restartable on the same port.

use super::*;

/// A port nothing listens on now (the kernel's pick, released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` on loopback, without persistence, killed on drop.
pub(crate) struct Redis {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

impl Redis {
    pub(crate) fn start(name: &str) -> Option<Redis> {
        Self::start_with(name, &[])
    }

    pub(crate) fn start_with(name: &str, extra: &[&str]) -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "skipped: redis-server is not installed (scripts/install-test-deps.sh installs it)"
            );
            return None;
        }
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: scratch(name),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        r.spawn();
        Some(r)
    }

    /// Over TLS only, with a self-signed certificate for 127.0.0.1 (its PEM path).
    pub(crate) fn start_tls(name: &str) -> Option<(Redis, PathBuf)> {
        let dir = scratch(name);
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let (c, k) = (dir.join("redis.pem"), dir.join("redis.key"));
        std::fs::write(&c, ck.cert.pem()).unwrap();
        std::fs::write(&k, ck.key_pair.serialize_pem()).unwrap();
        let (c2, k2) = (c.display().to_string(), k.display().to_string());
        let r = Self::start_with(
            name,
            &[
                "--tls-cert-file",
                &c2,
                "--tls-key-file",
                &k2,
                "--tls-auth-clients",
                "no",
            ],
        )?;
        Some((r, c))
    }

    fn spawn(&mut self) {
        let port = self.port.to_string();
        let tls = self.extra.iter().any(|a| a == "--tls-cert-file");
        let ports: [&str; 4] = if tls {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--tls-port", "0"]
        };
        let child = Command::new("redis-server")
            .args(ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let pass = self
            .extra
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra.get(i + 1));
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(i) = self.extra.iter().position(|a| a == "--tls-cert-file") {
            cmd.args(["--tls", "--cacert", &self.extra[i + 1]]);
        }
        if let Some(p) = pass {
            cmd.args(["--no-auth-warning", "-a", p]);
        }
        let out = cmd.args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port (empty: no persistence).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
