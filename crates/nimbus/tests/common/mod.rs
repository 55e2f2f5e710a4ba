//! A region under test: the real `nimbus up` process on free loopback ports.
#![allow(dead_code)]

use nimbus::bootstrap::RootCredentials;
use nimbus::client::RpcClient;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ECS: &str = "2014-05-26";

pub struct Region {
    pub child: Child,
    pub dir: PathBuf,
    pub https: String,
    pub http: String,
    pub oss_https: String,
    pub oss_http: String,
    pub stdout: Vec<String>,
    pub stderr_path: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nimbus")
}

/// The test-clock file of the region on `dir`.
pub fn clock_file(dir: &Path) -> PathBuf {
    dir.with_extension("clock")
}

impl Region {
    /// Moves the region's clock `secs` further ahead of the machine's (token, link and cache
    /// expiry without sleeping), and waits the 50 ms the region takes to notice, with margin.
    pub fn advance_clock(&self, secs: f64) {
        let f = clock_file(&self.dir);
        let now: i64 = std::fs::read_to_string(&f).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        std::fs::write(&f, (now + (secs * 1000.0) as i64).to_string()).expect("clock file");
        std::thread::sleep(Duration::from_millis(200));
    }

    /// The region's clock offset, in seconds.
    pub fn clock_offset_secs(&self) -> i64 {
        std::fs::read_to_string(clock_file(&self.dir)).ok().and_then(|s| s.trim().parse::<i64>().ok()).unwrap_or(0)
            / 1000
    }

    /// Starts `nimbus up` on `dir` and waits for `ready`.
    pub fn start(dir: &Path, extra: &[&str]) -> Region {
        Self::start_with_env(dir, extra, &[])
    }

    /// Like [`Region::start`], with extra environment variables for the region process.
    pub fn start_with_env(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Region {
        let stderr_path = dir.with_extension(format!("stderr.{}", std::process::id()));
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&stderr_path).expect("stderr file");
        let mut child = Command::new(bin())
            .args(["up", "--data-dir"])
            .arg(dir)
            .args(["--api-addr", "127.0.0.1:0", "--api-http-addr", "127.0.0.1:0"])
            .args(["--oss-addr", "127.0.0.1:0", "--oss-http-addr", "127.0.0.1:0"])
            // No probe VM per test region (a test that wants the probe sets NIMBUS_ACCEL=auto).
            .env("NIMBUS_ACCEL", "tcg")
            // Tests move the region's clock instead of sleeping (see `Region::advance_clock`).
            .env("NIMBUS_TEST_CLOCK_FILE", clock_file(dir))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn nimbus up");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut https, mut http, mut stdout) = (String::new(), String::new(), vec![]);
        let (mut oss_https, mut oss_http) = (String::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "nimbus up did not print ready in time");
            let Some(Ok(line)) = lines.next() else {
                panic!(
                    "nimbus up exited before ready; stdout {stdout:?}; stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            };
            if let Some(rest) = line.trim().strip_prefix("OpenAPI") {
                let url = rest.split_whitespace().next().expect("url").to_string();
                if url.starts_with("https://") { https = url } else { http = url }
            }
            if let Some(rest) = line.trim().strip_prefix("OSS ") {
                let url = rest.split_whitespace().next().expect("url").to_string();
                if url.starts_with("https://") { oss_https = url } else { oss_http = url }
            }
            let done = line == "ready";
            stdout.push(line);
            if done {
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Region { child, dir: dir.to_path_buf(), https, http, oss_https, oss_http, stdout, stderr_path }
    }

    pub fn creds(&self) -> RootCredentials {
        serde_json::from_str(&std::fs::read_to_string(self.dir.join("root-credentials")).expect("root-credentials"))
            .expect("json")
    }

    pub fn ca(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.pem")).expect("ca.pem")
    }

    pub fn client_https(&self) -> RpcClient {
        let c = self.creds();
        RpcClient::new(&self.https, &c.access_key_id, &c.access_key_secret, Some(&self.ca())).expect("client")
    }

    pub fn client_http(&self) -> RpcClient {
        let c = self.creds();
        RpcClient::new(&self.http, &c.access_key_id, &c.access_key_secret, None).expect("client")
    }

    pub fn client_with(&self, ak: &str, secret: &str) -> RpcClient {
        RpcClient::new(&self.http, ak, secret, None).expect("client")
    }

    /// Waits (at most `secs`) until no system image is `Creating`: the region's first-start image
    /// build has stored its objects in OSS or failed, so the region writes nothing into OSS by
    /// itself from then on. Returns the system images' statuses.
    pub fn system_images_settled(&self, secs: u64) -> Vec<String> {
        let c = self.client_http();
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let statuses: Vec<String> = c
                .call(ECS, "DescribeImages", &[p("ImageOwnerAlias", "system"), p("RegionId", "local-1")])
                .map(|v| {
                    v.body["Images"]["Image"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|i| i["Status"].as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_else(|_| vec!["Creating".into()]);
            if !statuses.iter().any(|s| s == "Creating") {
                return statuses;
            }
            assert!(Instant::now() < deadline, "the system image is still Creating after {secs} s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe_free_kill(self.child.id(), "TERM");
        let status = wait_timeout(&mut self.child, Duration::from_secs(30)).expect("nimbus did not stop on SIGTERM");
        std::mem::forget(self);
        status
    }

    /// SIGKILL: the crash case.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_free_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

pub fn wait_timeout(child: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn p(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

pub fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
