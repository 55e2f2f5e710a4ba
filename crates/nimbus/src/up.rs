//! `nimbus up`: brings a region up on this machine and keeps it up until Ctrl-C or SIGTERM.

use crate::backup::BackupJob;
use crate::bootstrap::{self, RootOutcome};
use crate::config::Settings;
use crate::pki::Pki;
use crate::worker;
use anyhow::{Context, Result};
use nimbus_api::{ApiBundle, Auditor, Background, Bundle, JobHandler, LogAuditor, Registry, Shutdown};
use nimbus_core::region::Region;
use nimbus_core::secret::KeyProvider;
use nimbus_gateway::server::Listener;
use nimbus_gateway::{Gateway, GatewayConfig, Hooks, ObjectGateway, ObjectGatewayConfig, ThrottleConfig};
use nimbus_iam::{ConsoleSignIn, Ram, RamAuthorizer, StoreCredentials, Sts, StsConfig};
use nimbus_store::Store;
use nimbus_trail::{Trail, TrailConfig, TrailKey};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Time given to open connections to finish on shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// What every bundle is built from.
pub struct Deps {
    pub keys: Arc<dyn KeyProvider>,
    pub credentials: Arc<StoreCredentials>,
    pub sts: StsConfig,
}

/// What only a running region has (`nimbus up`); without it (`nimbus admin actions`) bundles
/// are built for their API alone, with no host agent, jobs or background work.
pub struct Running<'a> {
    pub settings: &'a Settings,
    pub store: Store,
    pub region: Arc<Region>,
    pub oss: Arc<nimbus_oss::Oss>,
    pub auditor: Arc<dyn Auditor>,
    /// This region's VPC data plane.
    pub net: nimbus_host::net::NetDriver,
    /// The operator (region root) account.
    pub root_account: String,
}

/// Every service of the region, as bundles. Adding a service is adding one bundle here. The
/// order is the registry's (what `nimbus admin actions` lists) and the start-up convergence's.
pub fn bundles(d: &Deps, running: Option<Running<'_>>) -> Vec<Box<dyn Bundle>> {
    let iam = ApiBundle {
        name: "iam",
        services: vec![
            Arc::new(Ram::new(d.keys.clone(), d.credentials.clone())),
            Arc::new(Sts::new(d.keys.clone(), d.sts)),
        ],
    };
    let trail = ApiBundle { name: "trail", services: vec![Arc::new(nimbus_trail::service::ActionTrail)] };
    let kms = ApiBundle { name: "kms", services: vec![Arc::new(nimbus_kms::Kms::new(d.keys.clone()))] };
    let Some(r) = running else {
        return vec![
            Box::new(nimbus_ecs::EcsBundle::api_only()),
            Box::new(iam),
            Box::new(trail),
            Box::new(kms),
            Box::new(nimbus_vpc::VpcBundle::api_only()),
        ];
    };
    let s = r.settings;
    let (ecs, agent) = nimbus_ecs_agent::bundle(nimbus_ecs_agent::AgentConfig {
        store: r.store.clone(),
        oss: r.oss.clone(),
        keys: d.keys.clone(),
        auditor: r.auditor,
        region: r.region.id.clone(),
        root_account: r.root_account,
        net: r.net.clone(),
        vm_dir: s.data_dir.join("vm"),
        disk_dirs: s.disk_dirs(),
        accel: s.accel.clone(),
        memory_capacity_mib: s.instance_memory_mib,
    });
    let vpc = nimbus_vpc::VpcBundle::new(r.store.clone(), r.net, s.eip_pool, Some(agent));
    let oss = nimbus_oss::OssBundle {
        oss: r.oss,
        lifecycle_every: Duration::from_secs(s.oss_lifecycle_secs),
        scrub_every: Duration::from_secs(s.oss_scrub_secs),
    };
    let platform = Platform { store: r.store, keys: d.keys.clone(), data_dir: s.data_dir.clone() };
    vec![Box::new(ecs), Box::new(iam), Box::new(trail), Box::new(kms), Box::new(vpc), Box::new(oss), Box::new(platform)]
}

/// The region's own work: store backups, and noticing a root key rotated by `nimbus admin
/// rotate-root-key` so new values use the new generation.
struct Platform {
    store: Store,
    keys: Arc<dyn KeyProvider>,
    data_dir: std::path::PathBuf,
}

impl Bundle for Platform {
    fn name(&self) -> &'static str {
        "region"
    }
    fn job_handlers(&self) -> Vec<Arc<dyn JobHandler>> {
        vec![Arc::new(BackupJob { store: self.store.clone(), data_dir: self.data_dir.clone() })]
    }
    fn background(&self, mut stop: Shutdown) -> Vec<Background> {
        let keys = self.keys.clone();
        vec![Box::pin(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {
                        if keys.root_key().refresh() {
                            tracing::info!(generation = keys.root_key().current_generation(), "root key rotated: now wrapping with the new generation");
                        }
                    }
                }
            }
        })]
    }
}

/// The registry of the region's API services (what `nimbus admin actions` lists).
pub fn registry(keys: &Arc<dyn KeyProvider>, credentials: &Arc<StoreCredentials>, sts: StsConfig) -> Registry {
    let deps = Deps { keys: keys.clone(), credentials: credentials.clone(), sts };
    nimbus_api::registry_of(&bundles(&deps, None))
}

pub async fn run(s: Settings) -> Result<()> {
    crate::install_crypto_provider();
    let dir = &s.data_dir;
    restrict_dir(dir)?;
    if let Some(f) = &s.test_clock_file {
        crate::test_clock::watch(f.clone());
    }
    let keys: Arc<dyn KeyProvider> = crate::keys::open(dir, &s.store)?;
    tracing::info!(provider = keys.describe(), "region root key loaded");
    let store = Store::open(&s.store_url)
        .await
        .with_context(|| format!("opening the state store {}", redact_url(&s.store_url)))?;
    let root = bootstrap::ensure_root(&store, keys.as_ref(), dir).await?;
    let node = bootstrap::node_id(dir)?;
    let region = Arc::new(Region::with_id(&s.region));

    let pki = Pki::load_or_create(dir, &region.id, keys.as_ref())?;
    let (names, ips) = tls_names(&region, &[s.api_addr]);
    let tls = pki.server_config(&names, &ips)?;

    let https = Listener::bind(s.api_addr, Some(tls.clone()))
        .await
        .with_context(|| format!("binding --api-addr {}", s.api_addr))?;
    let (oss_names, oss_ips) = tls_names(&region, &[s.oss_addr]);
    let oss_tls = pki.server_config(&oss_names, &oss_ips)?;
    let oss_https = Listener::bind(s.oss_addr, Some(oss_tls))
        .await
        .with_context(|| format!("binding --oss-addr {}", s.oss_addr))?;
    let oss_http = Listener::bind(s.oss_http_addr, None)
        .await
        .with_context(|| format!("binding --oss-http-addr {}", s.oss_http_addr))?;
    let oss_https_addr = oss_https.local_addr()?;
    let oss_http_addr = oss_http.local_addr()?;
    let http = Listener::bind(s.api_http_addr, None)
        .await
        .with_context(|| format!("binding --api-http-addr {}", s.api_http_addr))?;
    let https_addr = https.local_addr()?;
    let http_addr = http.local_addr()?;

    // The trail stops after the listeners have drained, so no finishing request loses its event.
    let (trail_stop_tx, trail_stop_rx) = watch::channel(false);
    let (auditor, trail_task): (Arc<dyn Auditor>, Option<tokio::task::JoinHandle<()>>) = if s.audit_sink == "trail" {
        let key = TrailKey::load_or_create(dir, keys.as_ref()).context("loading the trail signing key")?;
        let cfg = TrailConfig {
            digest_interval: Duration::from_secs_f64(s.trail_digest_secs),
            delivery_dir: Some(dir.join("trails")),
        };
        let (trail, task) =
            Trail::start(store.clone(), key, cfg, trail_stop_rx).await.context("starting ActionTrail")?;
        (trail, Some(task))
    } else {
        tracing::warn!("--audit-sink log: audit events go to the log only, without the tamper-evident trail");
        (Arc::new(LogAuditor), None)
    };
    let credentials = Arc::new(StoreCredentials::new(store.clone(), keys.clone()));
    let sts = StsConfig { min_duration_secs: s.sts_min_duration_secs };
    let authorizer: Arc<dyn nimbus_api::Authorizer> = Arc::new(RamAuthorizer::new(store.clone()));
    let engine =
        Arc::new(nimbus_oss::Engine::open(s.oss_replica_dirs.clone()).context("opening the OSS replica directories")?);
    let oss = Arc::new(nimbus_oss::Oss::new(
        store.clone(),
        engine,
        Arc::new(nimbus_kms::Envelope {
            store: store.clone(),
            keys: keys.clone(),
            auditor: auditor.clone(),
            region: region.clone(),
        }),
        keys.clone(),
        authorizer.clone(),
        region.clone(),
        s.oss_max_object_bytes,
    ));
    let root_account = match &root {
        RootOutcome::Created(c) | RootOutcome::Reused(c) => c.account_id.clone(),
        RootOutcome::FileMissing => store
            .list_accounts()
            .await?
            .into_iter()
            .find(|a| a.name == bootstrap::ROOT_ACCOUNT_NAME)
            .map(|a| a.id)
            .unwrap_or_default(),
    };
    // Unique per data directory unless set: this region only ever removes namespaces it named.
    let net_prefix = s.net_prefix.clone().unwrap_or_else(|| {
        let tail: String = node.trim_start_matches("node-").chars().take(8).collect();
        format!("n{tail}")
    });
    let deps = Deps { keys: keys.clone(), credentials: credentials.clone(), sts };
    let bundles = bundles(
        &deps,
        Some(Running {
            settings: &s,
            store: store.clone(),
            region: region.clone(),
            oss,
            auditor: auditor.clone(),
            net: nimbus_host::net::NetDriver::new(&net_prefix),
            root_account,
        }),
    );
    let agents: Vec<Arc<dyn nimbus_api::HostAgent>> = bundles.iter().filter_map(|b| b.host_agent()).collect();
    let object_service = bundles.iter().find_map(|b| b.object_service()).context("no bundle serves objects (OSS)")?;
    let object_gateway = Arc::new(ObjectGateway::new(
        ObjectGatewayConfig {
            region: region.clone(),
            domain: region.endpoint_host("oss"),
            // Bodies read whole: documents, batch lists and small objects (uploads above 4 MiB
            // with a declared length are streamed instead); room for aws-chunked framing.
            max_body_bytes: usize::try_from(s.oss_max_object_bytes.min(64 << 20))
                .unwrap_or(usize::MAX)
                .saturating_add(1 << 20),
            request_timeout: Duration::from_secs(s.request_timeout_secs.max(300)),
            timestamp_window: Duration::from_secs(15 * 60),
            throttle: ThrottleConfig { per_key_rps: s.throttle_rps, burst: s.throttle_burst },
        },
        object_service,
        credentials.clone(),
        authorizer.clone(),
        auditor.clone(),
    ));
    let gateway = Arc::new(Gateway::new(
        GatewayConfig {
            region: region.clone(),
            max_body_bytes: s.max_body_bytes,
            request_timeout: Duration::from_secs(s.request_timeout_secs),
            timestamp_window: Duration::from_secs(15 * 60),
            throttle: ThrottleConfig { per_key_rps: s.throttle_rps, burst: s.throttle_burst },
        },
        Arc::new(nimbus_api::registry_of(&bundles)),
        Hooks {
            credentials: credentials.clone(),
            authorizer,
            auditor,
            sign_in: Some(Arc::new(ConsoleSignIn::new(store.clone(), keys.clone()))),
            sealer: Some(keys.clone()),
        },
        store.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let servers = [
        tokio::spawn(https.serve(gateway.clone(), stop_rx.clone(), DRAIN)),
        tokio::spawn(http.serve(gateway.clone(), stop_rx.clone(), DRAIN)),
        tokio::spawn(oss_https.serve(object_gateway.clone(), stop_rx.clone(), DRAIN)),
        tokio::spawn(oss_http.serve(object_gateway.clone(), stop_rx.clone(), DRAIN)),
    ];
    // Start-up convergence: every bundle's, in order, then every host agent's.
    for b in &bundles {
        if let Err(e) = b.converge().await {
            tracing::error!(bundle = b.name(), error = e, "start-up convergence failed");
        }
    }
    for a in &agents {
        if let Err(e) = a.converge().await {
            tracing::error!(agent = a.name(), error = e, "host agent start-up convergence failed");
        }
    }
    let mut background: Vec<tokio::task::JoinHandle<()>> = vec![];
    let mut handlers: Vec<Arc<dyn JobHandler>> = vec![];
    for b in &bundles {
        background.extend(b.background(stop_rx.clone()).into_iter().map(tokio::spawn));
        handlers.extend(b.job_handlers());
    }
    for a in &agents {
        background.extend(a.background(stop_rx.clone()).into_iter().map(tokio::spawn));
        handlers.extend(a.job_handlers());
    }
    let worker = tokio::spawn(worker::run(store.clone(), node.clone(), handlers, stop_rx.clone()));

    write_endpoints(dir, &region, [https_addr, http_addr, oss_https_addr, oss_http_addr])?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Nimbus region {} is up", region.id)?;
    writeln!(out, "  OpenAPI   https://{https_addr}")?;
    writeln!(out, "  OpenAPI   http://{http_addr}   (plain HTTP, loopback only)")?;
    writeln!(out, "  Sign-in   https://{https_addr}{}", nimbus_gateway::SIGN_IN_PATH)?;
    writeln!(
        out,
        "  OSS       https://{oss_https_addr}   (OSS and S3; virtual hosts *.{})",
        region.endpoint_host("oss")
    )?;
    writeln!(out, "  OSS       http://{oss_http_addr}   (plain HTTP, loopback only)")?;
    writeln!(out, "  CA        {}", dir.join("ca.pem").display())?;
    writeln!(out, "  Store     {:?} ({})", store.backend(), redact_url(&s.store_url))?;
    writeln!(out, "  Node      {node}")?;
    match &root {
        RootOutcome::Created(c) => {
            writeln!(out, "  Root AccessKey written to {} (shown once):", dir.join("root-credentials").display())?;
            writeln!(out, "    AccountId       {}", c.account_id)?;
            writeln!(out, "    AccessKeyId     {}", c.access_key_id)?;
            writeln!(out, "    AccessKeySecret {}", c.access_key_secret)?;
        }
        RootOutcome::Reused(c) => {
            writeln!(
                out,
                "  Root AccessKey {} (secret in {})",
                c.access_key_id,
                dir.join("root-credentials").display()
            )?;
        }
        RootOutcome::FileMissing => {
            writeln!(
                out,
                "  Root AccessKey: {} is missing; its secret was shown only at first start. Restore the file from your backup.",
                dir.join("root-credentials").display()
            )?;
            tracing::warn!("root-credentials is missing from the data directory");
        }
    }
    // What RunInstances needs from this host, said once where the operator looks.
    if let Err(e) = nimbus_host::vm::Toolchain::check_host() {
        writeln!(out, "  VMs       unavailable: {e} — {}", nimbus_host::vm::INSTALL_HINT)?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    tracing::info!(region = region.id, %https_addr, %http_addr, "region is up");

    wait_for_signal().await;
    tracing::info!("shutting down: no new connections; draining requests and jobs");
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    let _ = worker.await;
    for t in background {
        let _ = t.await;
    }
    for a in &agents {
        a.stop();
    }
    let _ = trail_stop_tx.send(true);
    if let Some(t) = trail_task {
        let _ = t.await;
    }
    store.close().await;
    println!("Nimbus region {} stopped", region.id);
    Ok(())
}

/// DNS names and addresses the server certificate covers.
fn tls_names(region: &Region, addrs: &[SocketAddr]) -> (Vec<String>, Vec<IpAddr>) {
    let base = format!("{}.{}", region.id, region.domain);
    let names = vec!["localhost".to_string(), base.clone(), format!("*.{base}"), format!("*.oss.{base}")];
    let mut ips: Vec<IpAddr> = vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)];
    for a in addrs {
        if !a.ip().is_unspecified() && !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    (names, ips)
}

/// `DIR/endpoints.json`: where this region listens, for `nimbus configure --from-data-dir` and tests.
fn write_endpoints(dir: &std::path::Path, region: &Region, addrs: [SocketAddr; 4]) -> Result<()> {
    let [https, http, oss_https, oss_http] = addrs;
    let v = serde_json::json!({
        "Region": region.id,
        "OpenApiHttps": format!("https://{https}"),
        "OpenApiHttp": format!("http://{http}"),
        "OssHttps": format!("https://{oss_https}"),
        "OssHttp": format!("http://{oss_http}"),
        "CaFile": dir.join("ca.pem").display().to_string(),
    });
    std::fs::write(dir.join("endpoints.json"), serde_json::to_string_pretty(&v)?)?;
    Ok(())
}

/// The data directory holds keys: only its owner may enter it.
fn restrict_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to its owner", dir.display()))
}

/// A store URL without its password, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:******{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    /// `nimbus admin actions` lists services in bundle order; the API-only bundles carry no
    /// jobs, background work or host agent.
    #[tokio::test]
    async fn api_only_bundles_keep_the_registry_order() {
        use std::sync::Arc;
        let dir = tempfile::tempdir().expect("tmp");
        let keys: Arc<dyn nimbus_core::secret::KeyProvider> =
            Arc::new(nimbus_core::secret::FileKeyProvider::load_or_create(&dir.path().join("k")).expect("key"));
        let store =
            nimbus_store::Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
        let credentials = Arc::new(nimbus_iam::StoreCredentials::new(store, keys.clone()));
        let deps = super::Deps { keys, credentials, sts: nimbus_iam::StsConfig::default() };
        let bundles = super::bundles(&deps, None);
        let products: Vec<&str> = nimbus_api::registry_of(&bundles).services().iter().map(|s| s.product()).collect();
        assert_eq!(products, ["Ecs", "Ram", "Sts", "Actiontrail", "Kms", "Vpc"]);
        // The CLI's product table (help, `nimbus <product> <Action>`) names exactly these.
        let reg = nimbus_api::registry_of(&bundles);
        let served: Vec<(String, &str)> =
            reg.services().iter().map(|s| (s.code().to_ascii_lowercase(), s.version())).collect();
        let cli: Vec<(String, &str)> = crate::client::PRODUCTS.iter().map(|(p, v)| (p.to_string(), *v)).collect();
        assert_eq!(cli, served);
        for b in &bundles {
            assert!(
                b.job_handlers().is_empty() && b.host_agent().is_none() && b.object_service().is_none(),
                "{}",
                b.name()
            );
        }
    }

    #[test]
    fn hides_store_passwords() {
        assert_eq!(
            redact_url("postgres://nimbus:s3cret@127.0.0.1:5432/db"),
            "postgres://nimbus:******@127.0.0.1:5432/db"
        );
        assert_eq!(redact_url("postgres://nimbus@127.0.0.1/db"), "postgres://nimbus@127.0.0.1/db");
        assert_eq!(redact_url("sqlite:///x/state.db"), "sqlite:///x/state.db");
    }
}
