//! The built `latchkey` binary, run as an operator would: each instance in a temporary
//! working directory, configured only through `LATCHKEY_*` variables. Included with
//! `#[path = "common/process.rs"] mod process;` by the tests that need it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What one command printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        self.ok();
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// A usage error from the argument parser: exit 2, names `needle`, no panic.
    #[track_caller]
    pub fn usage_error(&self, needle: &str) {
        assert_eq!(
            self.code, 2,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.lines().next().unwrap_or("").contains(needle),
            "{needle:?} in {:?}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "{:?}", self.stderr);
    }

    /// A failure: exit `code`, exactly one stderr line containing `needle` (any case), no
    /// panic.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one stderr line: {:?}", self.stderr);
        assert!(
            lines[0].to_lowercase().contains(&needle.to_lowercase()),
            "{needle:?} in {:?}",
            lines[0]
        );
        for bad in ["panicked", "backtrace", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(!self.stderr.contains(bad), "{bad} in {:?}", self.stderr);
        }
    }
}

/// A working directory and a database for the binary.
pub struct Latchkey {
    pub dir: tempfile::TempDir,
    pub db_url: String,
}

impl Latchkey {
    /// A fresh SQLite file in a fresh directory.
    pub fn sqlite() -> Latchkey {
        let dir = tempfile::tempdir().unwrap();
        let db_url = format!("sqlite://{}/latchkey.db", dir.path().display());
        Latchkey { dir, db_url }
    }

    /// A fresh directory over an existing database.
    pub fn on(db_url: &str) -> Latchkey {
        Latchkey {
            dir: tempfile::tempdir().unwrap(),
            db_url: db_url.to_owned(),
        }
    }

    /// The binary with a clean `LATCHKEY_*` environment, our database and backtraces on
    /// (so that a panic would show).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        for (k, _) in std::env::vars() {
            if k.starts_with("LATCHKEY_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("LATCHKEY_DATABASE_URL", &self.db_url)
            .env("RUST_BACKTRACE", "1");
        cmd
    }

    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Out {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[], None)
    }

    /// `args` with `stdin` as standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.run_with(args, &[], Some(stdin.as_bytes()))
    }

    /// `latchkey serve` on a free loopback port, with `env` added.
    pub fn serve(&self, env: &[(&str, &str)]) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = self.command(&["serve"]);
        cmd.env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ISSUER", &base);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = Vec::new();
                let _ = r.read_to_end(&mut s);
                String::from_utf8_lossy(&s).into_owned()
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        Served {
            child: Some(child),
            base,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }
}

/// A running `latchkey serve`; killed if dropped without [`Served::stop`].
pub struct Served {
    child: Option<Child>,
    pub base: String,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// How a served instance ended.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Waits (at most 20 s: a debug build generates an RSA key first) for `/healthz`.
    pub async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Ok(res) = http.get(self.url("/healthz")).send().await
                && res.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let stopped = self.finish(status);
                panic!("latchkey serve exited early: {stopped:?}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "latchkey serve did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn finish(&mut self, status: ExitStatus) -> Stopped {
        Stopped {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }

    /// SIGTERM, then waits (at most 15 s) for the exit.
    pub fn stop(mut self) -> Stopped {
        let pid = self.child.as_ref().unwrap().id();
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(killed.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return self.finish(status);
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "latchkey serve did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
