//! `nimbus up` settings. Precedence: command-line flag, then environment variable, then the TOML
//! file named by `--config`, then the embedded default. Every default works on a fresh machine.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "./nimbus-data";
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:8443";
pub const DEFAULT_API_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_OSS_ADDR: &str = "127.0.0.1:9443";
pub const DEFAULT_OSS_HTTP_ADDR: &str = "127.0.0.1:9080";

/// Where the state lives; shared by `up` and the operator commands that open the store directly.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct StoreArgs {
    /// TOML configuration file (keys as the long flags, with `_`: `data_dir`, `api_addr`, …).
    /// Flags and environment variables override it.
    #[arg(long, env = "NIMBUS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the region's state, keys and certificates. Created on first start.
    /// [default: ./nimbus-data]
    #[arg(long, env = "NIMBUS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// State store: `sqlite:///path/state.db` (embedded) or `postgres://user@host:port/db` (for a
    /// multi-node control plane). [default: sqlite in the data directory]
    #[arg(long, env = "NIMBUS_STORE_URL", value_name = "URL")]
    pub store_url: Option<String>,
    /// Where the region root key comes from: `file` (DIR/root.key, 0600), `passphrase`
    /// (DIR/root.key.sealed, unsealed with a passphrase at every start; without it the region stays
    /// sealed) or `pkcs11` (a non-extractable key in a PKCS#11 token). Chosen at first start.
    /// [default: file]
    #[arg(long, env = "NIMBUS_ROOT_KEY_PROVIDER", value_name = "file|passphrase|pkcs11")]
    pub root_key_provider: Option<String>,
    /// PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so), for --root-key-provider pkcs11.
    #[arg(long, env = "NIMBUS_PKCS11_MODULE", value_name = "FILE")]
    pub pkcs11_module: Option<PathBuf>,
    /// Label of the PKCS#11 token holding the root key. [default: nimbus]
    #[arg(long, env = "NIMBUS_PKCS11_TOKEN", value_name = "LABEL")]
    pub pkcs11_token: Option<String>,
    /// File holding the token's user PIN (else $NIMBUS_PKCS11_PIN).
    #[arg(long, env = "NIMBUS_PKCS11_PIN_FILE", value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// File holding the root-key passphrase (else $NIMBUS_ROOT_PASSPHRASE, else a prompt on a terminal).
    #[arg(long, env = "NIMBUS_ROOT_PASSPHRASE_FILE", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(clap::Args, Debug, Default, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Region id. Its zones are <region>a, <region>b and <region>c. [default: local-1]
    #[arg(long, env = "NIMBUS_REGION", value_name = "ID")]
    pub region: Option<String>,
    /// HTTPS listener of the OpenAPI front door (HOST:PORT; port 0 picks a free one).
    /// [default: 127.0.0.1:8443]
    #[arg(long, env = "NIMBUS_API_ADDR", value_name = "HOST:PORT")]
    pub api_addr: Option<SocketAddr>,
    /// Plain-HTTP listener of the OpenAPI front door; must be a loopback address.
    /// [default: 127.0.0.1:8080]
    #[arg(long, env = "NIMBUS_API_HTTP_ADDR", value_name = "HOST:PORT")]
    pub api_http_addr: Option<SocketAddr>,
    /// HTTPS listener of OSS (OSS and S3 REST APIs; buckets by path or as
    /// `<bucket>.oss.<region>.nimbus.internal`). [default: 127.0.0.1:9443]
    #[arg(long, env = "NIMBUS_OSS_ADDR", value_name = "HOST:PORT")]
    pub oss_addr: Option<SocketAddr>,
    /// Plain-HTTP listener of OSS; must be a loopback address. [default: 127.0.0.1:9080]
    #[arg(long, env = "NIMBUS_OSS_HTTP_ADDR", value_name = "HOST:PORT")]
    pub oss_http_addr: Option<SocketAddr>,
    /// A directory holding one OSS replica; give it three times, ideally on three disks.
    /// [default: DATA_DIR/oss/replica-0, -1, -2 (one disk: a warning is logged)]
    #[arg(long = "oss-replica-dir", env = "NIMBUS_OSS_REPLICA_DIRS", value_name = "DIR", value_delimiter = ',')]
    pub oss_replica_dirs: Vec<PathBuf>,
    /// Largest single PUT, part or append, in bytes (OSS's and S3's own limit: 5 GiB). Bodies above
    /// 4 MiB are streamed to the replicas as they arrive, so memory does not grow with this.
    /// Larger objects use multipart upload. [default: 5368709120]
    #[arg(long, env = "NIMBUS_OSS_MAX_OBJECT_BYTES", value_name = "BYTES")]
    pub oss_max_object_bytes: Option<u64>,
    /// Seconds between lifecycle (expiration) passes over all buckets. [default: 600]
    #[arg(long, env = "NIMBUS_OSS_LIFECYCLE_SECS", value_name = "SECS")]
    pub oss_lifecycle_secs: Option<u64>,
    /// Seconds between background scrubs that verify every replica block and repair rot and loss.
    /// [default: 86400]
    #[arg(long, env = "NIMBUS_OSS_SCRUB_SECS", value_name = "SECS")]
    pub oss_scrub_secs: Option<u64>,
    /// Accelerator for virtual machines: `auto` boots a probe VM under KVM and uses KVM only if it
    /// reaches its init in time (nested or paravirtual /dev/kvm often cannot run a stock kernel),
    /// else TCG; the choice and the reason are logged at start. `kvm` or `tcg` skip the probe.
    /// [default: auto]
    #[arg(long, env = "NIMBUS_ACCEL", value_name = "auto|kvm|tcg")]
    pub accel: Option<String>,
    /// Prefix of the host network objects this region makes (VPC namespaces are
    /// `<prefix>-vpc-<id>`), so regions sharing a host keep apart: a region removes namespaces with
    /// its prefix that none of its VPCs owns. [default: `n` + the start of this node's id]
    #[arg(long, env = "NIMBUS_NET_PREFIX", value_name = "NAME")]
    pub net_prefix: Option<String>,
    /// The public pool EIPs are allocated from; its first address is the host end of the public
    /// bridge. Regions sharing a host need pools that do not overlap. [default: 100.64.0.0/16]
    #[arg(long, env = "NIMBUS_EIP_POOL", value_name = "CIDR")]
    pub eip_pool: Option<String>,
    /// Guest memory this host offers to instances, in MiB; RunInstances beyond it answers
    /// `OperationDenied.NoStock`. Every instance, Stopped ones too, holds its type's memory.
    /// [default: three quarters of this machine's memory]
    #[arg(long, env = "NIMBUS_INSTANCE_MEMORY_MIB", value_name = "MIB")]
    pub instance_memory_mib: Option<u64>,
    /// Sustained signed requests per second allowed per AccessKey before `Throttling.User`;
    /// 0 turns throttling off. [default: 500]
    #[arg(long, env = "NIMBUS_THROTTLE_RPS", value_name = "N")]
    pub throttle_rps: Option<u32>,
    /// Requests per AccessKey allowed in a burst above the sustained rate. [default: 1000]
    #[arg(long, env = "NIMBUS_THROTTLE_BURST", value_name = "N")]
    pub throttle_burst: Option<u32>,
    /// Largest RPC request body accepted, in bytes. [default: 1048576]
    #[arg(long, env = "NIMBUS_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Longest one request may take, upload included, in seconds. [default: 30]
    #[arg(long, env = "NIMBUS_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Shortest STS session AssumeRole grants, in seconds (Alibaba: 900). Lower it only for labs
    /// and tests that need sessions to expire quickly. [default: 900]
    #[arg(long, env = "NIMBUS_STS_MIN_DURATION_SECS", value_name = "SECS")]
    pub sts_min_duration_secs: Option<i64>,
    /// Seconds between signed ActionTrail digests (one is also written at shutdown); fractions
    /// allowed. [default: 60]
    #[arg(long, env = "NIMBUS_TRAIL_DIGEST_SECS", value_name = "SECS")]
    pub trail_digest_secs: Option<f64>,
    /// Test regions only: a file holding how many milliseconds the region's clock runs ahead of
    /// the machine's, re-read every 50 ms, so tests move time forward (token, link and cache
    /// expiry) instead of sleeping. Never set it on a real region.
    #[arg(long, env = "NIMBUS_TEST_CLOCK_FILE", value_name = "FILE", hide = true)]
    pub test_clock_file: Option<PathBuf>,
    /// Where audit events go: `trail` (ActionTrail: hash-chained, signed, queryable) or `log`
    /// (structured log lines only, not tamper-evident: for measuring the trail's cost, not for use).
    /// [default: trail]
    #[arg(long, env = "NIMBUS_AUDIT_SINK", value_name = "trail|log")]
    pub audit_sink: Option<String>,
    /// Log filter (tracing syntax, e.g. `info,nimbus::audit=warn`). [default: info]
    #[arg(long, env = "NIMBUS_LOG", value_name = "FILTER")]
    pub log: Option<String>,
}

/// The TOML file: the same settings, snake_case.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    store_url: Option<String>,
    region: Option<String>,
    api_addr: Option<SocketAddr>,
    api_http_addr: Option<SocketAddr>,
    oss_addr: Option<SocketAddr>,
    oss_http_addr: Option<SocketAddr>,
    oss_replica_dirs: Option<Vec<PathBuf>>,
    oss_max_object_bytes: Option<u64>,
    oss_lifecycle_secs: Option<u64>,
    oss_scrub_secs: Option<u64>,
    net_prefix: Option<String>,
    eip_pool: Option<String>,
    instance_memory_mib: Option<u64>,
    accel: Option<String>,
    throttle_rps: Option<u32>,
    throttle_burst: Option<u32>,
    max_body_bytes: Option<usize>,
    request_timeout_secs: Option<u64>,
    sts_min_duration_secs: Option<i64>,
    trail_digest_secs: Option<f64>,
    audit_sink: Option<String>,
    log: Option<String>,
}

fn read_file(path: Option<&Path>) -> Result<FileConfig> {
    let Some(p) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", p.display()))
}

/// Settings after precedence is applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The store and key-provider flags as given (the key provider is opened from them).
    pub store: StoreArgs,
    pub data_dir: PathBuf,
    pub store_url: String,
    pub region: String,
    pub api_addr: SocketAddr,
    pub api_http_addr: SocketAddr,
    pub oss_addr: SocketAddr,
    pub oss_http_addr: SocketAddr,
    pub oss_replica_dirs: Vec<PathBuf>,
    pub oss_max_object_bytes: u64,
    pub oss_lifecycle_secs: u64,
    pub oss_scrub_secs: u64,
    /// `None`: derived from the node id when the region starts.
    pub net_prefix: Option<String>,
    pub eip_pool: Option<ipnet::Ipv4Net>,
    pub instance_memory_mib: u64,
    pub accel: String,
    pub throttle_rps: u32,
    pub throttle_burst: u32,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    pub sts_min_duration_secs: i64,
    pub trail_digest_secs: f64,
    pub test_clock_file: Option<PathBuf>,
    pub audit_sink: String,
    pub log: String,
}

fn parse_addr(s: &str) -> SocketAddr {
    s.parse().expect("built-in default address parses")
}

/// The data directory and store URL alone (for operator commands).
pub fn resolve_store(a: &StoreArgs) -> Result<(PathBuf, String)> {
    let f = read_file(a.config.as_deref())?;
    store_of(a, &f)
}

fn store_of(a: &StoreArgs, f: &FileConfig) -> Result<(PathBuf, String)> {
    let dir = a.data_dir.clone().or(f.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let url = a
        .store_url
        .clone()
        .or(f.store_url.clone())
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("state.db").display()));
    Ok((dir, url))
}

impl Settings {
    /// The three failure domains of instance system disks: `DIR/disks/r0..r2`. (Point them at
    /// separate disks by making those directories mount points.)
    pub fn disk_dirs(&self) -> [PathBuf; 3] {
        [0, 1, 2].map(|i| self.data_dir.join("disks").join(format!("r{i}")))
    }

    pub fn resolve(a: &UpArgs) -> Result<Settings> {
        let f = read_file(a.store.config.as_deref())?;
        let (data_dir, store_url) = store_of(&a.store, &f)?;
        let oss_replica_dirs = if a.oss_replica_dirs.is_empty() {
            f.oss_replica_dirs
                .clone()
                .unwrap_or_else(|| (0..3).map(|i| data_dir.join("oss").join(format!("replica-{i}"))).collect())
        } else {
            a.oss_replica_dirs.clone()
        };
        let s = Settings {
            store: a.store.clone(),
            data_dir,
            store_url,
            region: a.region.clone().or(f.region).unwrap_or_else(|| "local-1".into()),
            api_addr: a.api_addr.or(f.api_addr).unwrap_or_else(|| parse_addr(DEFAULT_API_ADDR)),
            api_http_addr: a.api_http_addr.or(f.api_http_addr).unwrap_or_else(|| parse_addr(DEFAULT_API_HTTP_ADDR)),
            oss_addr: a.oss_addr.or(f.oss_addr).unwrap_or_else(|| parse_addr(DEFAULT_OSS_ADDR)),
            oss_http_addr: a.oss_http_addr.or(f.oss_http_addr).unwrap_or_else(|| parse_addr(DEFAULT_OSS_HTTP_ADDR)),
            oss_replica_dirs,
            oss_max_object_bytes: a.oss_max_object_bytes.or(f.oss_max_object_bytes).unwrap_or(5 << 30),
            oss_lifecycle_secs: a.oss_lifecycle_secs.or(f.oss_lifecycle_secs).unwrap_or(600),
            oss_scrub_secs: a.oss_scrub_secs.or(f.oss_scrub_secs).unwrap_or(86_400),
            net_prefix: a.net_prefix.clone().or(f.net_prefix),
            eip_pool: match a.eip_pool.clone().or(f.eip_pool) {
                None => None,
                Some(p) => Some(
                    p.parse::<ipnet::Ipv4Net>()
                        .ok()
                        .filter(|n| n.prefix_len() <= 30)
                        // Instances reach the metadata service there, inside their VPC.
                        .filter(|n| !n.contains(&nimbus_host::net::ALIBABA_METADATA_ADDR))
                        .ok_or_else(|| anyhow::anyhow!(
                            "--eip-pool {p:?}: use an IPv4 CIDR block of /30 or larger, not holding 100.100.100.200 (the metadata address)"
                        ))?
                        .trunc(),
                ),
            },
            instance_memory_mib: a
                .instance_memory_mib
                .or(f.instance_memory_mib)
                .unwrap_or_else(|| host_memory_mib() * 3 / 4),
            accel: a.accel.clone().or(f.accel).unwrap_or_else(|| "auto".into()),
            throttle_rps: a.throttle_rps.or(f.throttle_rps).unwrap_or(500),
            throttle_burst: a.throttle_burst.or(f.throttle_burst).unwrap_or(1000),
            max_body_bytes: a.max_body_bytes.or(f.max_body_bytes).unwrap_or(1 << 20),
            request_timeout_secs: a.request_timeout_secs.or(f.request_timeout_secs).unwrap_or(30),
            sts_min_duration_secs: a.sts_min_duration_secs.or(f.sts_min_duration_secs).unwrap_or(900),
            trail_digest_secs: a.trail_digest_secs.or(f.trail_digest_secs).unwrap_or(60.0),
            test_clock_file: a.test_clock_file.clone(),
            audit_sink: a.audit_sink.clone().or(f.audit_sink).unwrap_or_else(|| "trail".into()),
            log: a.log.clone().or(f.log).unwrap_or_else(|| "info".into()),
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<()> {
        for (name, addr) in [("--api-http-addr", self.api_http_addr), ("--oss-http-addr", self.oss_http_addr)] {
            if !addr.ip().is_loopback() {
                bail!(
                    "{name} {addr} is not a loopback address: plain HTTP carries signed requests in the clear, so it is only served on 127.0.0.0/8 or ::1. Use --api-addr (HTTPS) for other interfaces."
                );
            }
        }
        let valid_region = !self.region.is_empty()
            && self.region.len() <= 32
            && self.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_region {
            bail!("--region {:?}: use lowercase letters, digits and '-' (at most 32), e.g. local-1", self.region);
        }
        if self.max_body_bytes < 1024 {
            bail!("--max-body-bytes {} is too small (at least 1024)", self.max_body_bytes);
        }
        if !(1..=3600).contains(&self.sts_min_duration_secs) {
            bail!("--sts-min-duration-secs must be 1 to 3600");
        }
        if self.audit_sink != "trail" && self.audit_sink != "log" {
            bail!("--audit-sink {:?}: use trail or log", self.audit_sink);
        }
        if self.oss_replica_dirs.len() != 3 {
            bail!("--oss-replica-dir must be given exactly three times (got {})", self.oss_replica_dirs.len());
        }
        if self.oss_max_object_bytes < 1 << 20 {
            bail!("--oss-max-object-bytes must be at least 1048576");
        }
        if self.oss_lifecycle_secs == 0 || self.oss_scrub_secs == 0 {
            bail!("--oss-lifecycle-secs and --oss-scrub-secs must be at least 1");
        }
        if !["auto", "kvm", "tcg"].contains(&self.accel.as_str()) {
            bail!("--accel {:?}: use auto, kvm or tcg", self.accel);
        }
        if let Some(p) = &self.net_prefix
            && (p.is_empty() || p.len() > 11 || !p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        {
            // 11: the public bridge `<prefix>-pub` must fit Linux's 15-byte interface names.
            bail!("--net-prefix {p:?}: use 1-11 lowercase letters or digits");
        }
        if !(0.1..=86_400.0).contains(&self.trail_digest_secs) {
            bail!("--trail-digest-secs must be from 0.1 to 86400");
        }
        if self.request_timeout_secs == 0 {
            bail!("--request-timeout-secs must be at least 1");
        }
        Ok(())
    }
}

/// This machine's memory in MiB (`MemTotal` of /proc/meminfo; 1 GiB if unreadable).
fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kib| kib / 1024)
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("n.toml");
        std::fs::write(&cfg, "region = \"file-1\"\nthrottle_rps = 7\napi_addr = \"127.0.0.1:1111\"\n").expect("write");
        let mut a = UpArgs::default();
        a.store.config = Some(cfg.clone());
        a.store.data_dir = Some(dir.path().join("d"));
        a.api_addr = Some("127.0.0.1:2222".parse().expect("addr"));
        let s = Settings::resolve(&a).expect("resolves");
        assert_eq!(s.region, "file-1");
        assert_eq!(s.throttle_rps, 7);
        assert_eq!(s.api_addr.port(), 2222, "flag wins over file");
        assert_eq!(s.api_http_addr.port(), 8080, "default when neither says");
        assert!(s.store_url.starts_with("sqlite:///") && s.store_url.ends_with("/d/state.db"));
    }

    #[test]
    fn refuses_plain_http_off_loopback_and_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut a = UpArgs::default();
        a.store.data_dir = Some(dir.path().to_path_buf());
        a.api_http_addr = Some("0.0.0.0:8080".parse().expect("addr"));
        let e = Settings::resolve(&a).expect_err("must refuse");
        assert!(e.to_string().contains("loopback"), "{e}");

        let cfg = dir.path().join("bad.toml");
        std::fs::write(&cfg, "regoin = \"x\"\n").expect("write");
        let mut b = UpArgs::default();
        b.store.config = Some(cfg);
        b.store.data_dir = Some(dir.path().to_path_buf());
        let e = Settings::resolve(&b).expect_err("typo must be reported");
        assert!(format!("{e:#}").contains("regoin"), "{e:#}");
    }
}
