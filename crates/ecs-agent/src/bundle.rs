//! ECS's bundle as `nimbus up` builds it: the API with the image store, console logs and memory
//! capacity as fields, and the host agent.

use crate::agent::{Agent, BuildImageJob, CreateImageJob, InstanceJob, OssImages};
use crate::metadata::MetadataServers;
use nimbus_api::{Auditor, Background, BoxFut, HostAgent, JobHandler, Shutdown};
use nimbus_core::secret::KeyProvider;
use nimbus_ecs::{Ecs, EcsBundle};
use nimbus_host::net::NetDriver;
use nimbus_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the ECS host agent is built from.
pub struct AgentConfig {
    pub store: Store,
    /// Images are OSS objects in the operator's bucket.
    pub oss: Arc<nimbus_oss::Oss>,
    /// Seals instance-role STS sessions (the metadata service).
    pub keys: Arc<dyn KeyProvider>,
    /// Files the metadata service's credential issues in ActionTrail.
    pub auditor: Arc<dyn Auditor>,
    /// The region id.
    pub region: String,
    /// The operator (region root) account, owner of the system images.
    pub root_account: String,
    /// The VPC data plane of this host.
    pub net: NetDriver,
    /// `DIR/vm`: image cache, instance directories, the accelerator probe's files.
    pub vm_dir: PathBuf,
    /// The three failure domains of system disks.
    pub disk_dirs: [PathBuf; 3],
    /// `--accel`: `auto` (probe), `kvm` or `tcg`.
    pub accel: String,
    /// `--instance-memory-mib`: the guest memory this host offers.
    pub memory_capacity_mib: u64,
}

/// ECS's bundle with its host agent, and the agent (which the VPC bundle's reconcile job
/// refreshes ports through, as [`nimbus_vpc::VpcPorts`]).
pub fn bundle(cfg: AgentConfig) -> (EcsBundle, Arc<Agent>) {
    tracing::info!(mib = cfg.memory_capacity_mib, "guest memory offered to instances");
    let api = Ecs {
        images: Some(Arc::new(OssImages(cfg.oss.clone()))),
        console: Some(Box::new({
            let vm_dir = cfg.vm_dir.clone();
            move |id| Agent::console(&vm_dir, id)
        })),
        memory_capacity_mib: Some(cfg.memory_capacity_mib),
    };
    let metadata = Arc::new(MetadataServers::new(cfg.store.clone(), &cfg.region, cfg.keys, cfg.auditor));
    let cgroups = match nimbus_host::cgroup::Cgroups::detect(&format!("nimbus-{}", cfg.net.prefix())) {
        Ok(c) => {
            tracing::info!(layout = c.describe(), "instance limits (vCPUs, memory) enforced through cgroups");
            Some(c)
        }
        Err(why) => {
            tracing::warn!(reason = why, "no usable cgroups: instances are bounded only by QEMU's -smp and -m");
            None
        }
    };
    let agent = Arc::new(Agent {
        store: cfg.store,
        net: cfg.net,
        oss: cfg.oss,
        region: cfg.region,
        root_account: cfg.root_account,
        dir: cfg.vm_dir,
        disk_dirs: cfg.disk_dirs,
        accel: Arc::new(tokio::sync::OnceCell::new()),
        metadata,
        cgroups,
    });
    let host = EcsHostAgent { agent: agent.clone(), accel_setting: cfg.accel };
    (EcsBundle { api: Arc::new(api), agent: Some(Arc::new(host)) }, agent)
}

/// The agent as the region runs it: its jobs, the system image at start, the accelerator probe
/// and the instance supervisor in the background, the metadata listeners stopped at shutdown.
pub struct EcsHostAgent {
    pub agent: Arc<Agent>,
    accel_setting: String,
}

impl HostAgent for EcsHostAgent {
    fn name(&self) -> &'static str {
        "ecs"
    }

    fn job_handlers(&self) -> Vec<Arc<dyn JobHandler>> {
        vec![
            Arc::new(InstanceJob(self.agent.clone())),
            Arc::new(BuildImageJob(self.agent.clone())),
            Arc::new(CreateImageJob(self.agent.clone())),
        ]
    }

    fn converge(&self) -> BoxFut<'_, Result<(), String>> {
        Box::pin(async move {
            self.agent.ensure_system_image().await.map_err(|e| format!("could not queue the system image build: {e}"))
        })
    }

    fn background(&self, shutdown: Shutdown) -> Vec<Background> {
        let (setting, dir, cell) = (self.accel_setting.clone(), self.agent.dir.clone(), self.agent.accel.clone());
        let mut stop = shutdown.clone();
        let probe = Box::pin(async move {
            tokio::select! {
                a = probe_accelerator(setting, dir) => { let _ = cell.set(a); }
                _ = stop.changed() => {}
            }
        });
        vec![probe, Box::pin(self.agent.clone().supervise(shutdown))]
    }

    fn stop(&self) {
        self.agent.metadata.stop();
    }
}

/// Chooses the VM accelerator (see `--accel`) and logs the choice with its reason. Runs beside
/// start-up: the probe boots a VM, which takes seconds under TCG.
async fn probe_accelerator(setting: String, dir: PathBuf) -> Option<nimbus_host::vm::Accel> {
    use nimbus_host::vm::{Accel, Toolchain, probe};
    let tools = match Toolchain::find() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(reason = %e, "virtual machines unavailable on this host");
            return None;
        }
    };
    match setting.as_str() {
        "kvm" => {
            tracing::info!(accelerator = "kvm", "VM accelerator forced by --accel");
            return Some(Accel::Kvm);
        }
        "tcg" => {
            tracing::info!(accelerator = "tcg", "VM accelerator forced by --accel");
            return Some(Accel::Tcg);
        }
        _ => {}
    }
    match tokio::task::spawn_blocking(move || probe(&tools, &dir, Duration::from_secs(30))).await {
        Ok(Ok(p)) => {
            match &p.kvm_unusable {
                None => tracing::info!(
                    accelerator = "kvm",
                    boot_ms = p.boot.as_millis() as u64,
                    "VM accelerator chosen by probe"
                ),
                Some(why) => {
                    tracing::info!(accelerator = "tcg", boot_ms = p.boot.as_millis() as u64, kvm_unusable = %why, "VM accelerator chosen by probe: KVM cannot boot the probe VM, using TCG")
                }
            }
            Some(p.accel)
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "no accelerator could boot the probe VM: virtual machines unavailable");
            None
        }
        Err(_) => None,
    }
}
