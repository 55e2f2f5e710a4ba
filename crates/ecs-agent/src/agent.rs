//! The ECS host agent: builds the system image, runs instances as QEMU processes in their VPC's
//! namespace, keeps each VPC's ports (anti-spoofing, security groups, EIP NAT) and its metadata
//! service in step with the store, and watches that instances meant to run do run.
//!
//! Every change arrives as a job (`ecs.instance`, `ecs.build_image`, `vpc.reconcile`) and every
//! job converges from whatever the host looks like, so a `kill -9` at any point is repaired by
//! running the job again. QEMU runs detached (`-daemonize`): instances keep running while the
//! control plane restarts, and are adopted again through their pid files and QMP sockets.

use bytes::Bytes;
use nimbus_api::{ApiError, BoxFut, JobControl, JobError, JobHandler};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_ecs::image::{self, ImageObjects, PARTS, SYSTEM_IMAGE_ID};
use nimbus_ecs::instance;
use nimbus_host::cgroup::{Limits, instance_memory_bytes};
use nimbus_host::net::{NetDriver, PortPolicy, SgRule};
use nimbus_host::vm::{Accel, INSTALL_HINT, Toolchain, VmSpec, qmp_at, read_pid, start_detached_in};
use nimbus_store::{Job, NewJob, Resource, Store, StoreError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

pub const BUILD_IMAGE_JOB: &str = "ecs.build_image";

/// How long a graceful StopInstance waits for the guest to power itself off (within the job
/// lease of 30 s) before powering it off.
const GRACEFUL_STOP: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SystemImageKind {
    Busybox,
    Debian,
}

/// A public image the region builds itself from Debian's packages, owned by the operator account.
pub struct SystemImage {
    pub id: &'static str,
    pub name: &'static str,
    pub os_name: &'static str,
    pub description: &'static str,
    pub kind: SystemImageKind,
    /// Built at first start (small, quick, needs no network). Others are built when an operator
    /// asks (`nimbus admin image build <id>`): Debian's needs a mirror and minutes.
    pub at_start: bool,
}

pub const DEBIAN_IMAGE_ID: &str = "debian_12_x64_nimbus";

pub const SYSTEM_IMAGES: &[SystemImage] = &[
    SystemImage {
        id: SYSTEM_IMAGE_ID,
        name: "Nimbus busybox (Debian packages) with Dropbear SSH",
        os_name: "Nimbus busybox x64",
        description: "Debian kernel, busybox, Dropbear, virtio drivers; network, SSH key and user-data from the metadata service",
        kind: SystemImageKind::Busybox,
        at_start: true,
    },
    SystemImage {
        id: DEBIAN_IMAGE_ID,
        name: "Debian 12 (bookworm) x64, by debootstrap",
        os_name: "Debian 12 x64",
        description: "debootstrap minbase with systemd and OpenSSH; nimbus-init takes network, SSH key and user-data from the metadata service",
        kind: SystemImageKind::Debian,
        at_start: false,
    },
];

/// Image objects in OSS, reached in-process.
pub struct OssImages(pub Arc<nimbus_oss::Oss>);

impl ImageObjects for OssImages {
    fn get<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFut<'a, Result<Bytes, ApiError>> {
        Box::pin(self.0.get_internal(bucket, key))
    }
    fn put<'a>(&'a self, bucket: &'a str, key: &'a str, body: Bytes) -> BoxFut<'a, Result<(), ApiError>> {
        Box::pin(async move { self.0.put_internal(bucket, key, body).await.map(|_| ()) })
    }
}

/// The bucket of the region's images, owned by the region's root (operator) account.
pub fn image_bucket(region: &str) -> String {
    format!("nimbus-images-{}", region.to_ascii_lowercase())
}

pub struct Agent {
    pub store: Store,
    pub net: NetDriver,
    pub oss: Arc<nimbus_oss::Oss>,
    pub region: String,
    pub root_account: String,
    /// `DIR/vm`: image cache, instance directories (QMP socket, console log, pid file).
    pub dir: PathBuf,
    /// The three failure domains of system disks.
    pub disk_dirs: [PathBuf; 3],
    /// Set once the accelerator probe has run (`None` inside: VMs unavailable on this host).
    pub accel: Arc<OnceCell<Option<Accel>>>,
    pub metadata: Arc<crate::metadata::MetadataServers>,
    /// Where instance limits are enforced (`None`: this host has no usable cgroups; instances are
    /// then bounded by `-smp`/`-m` only, as logged at start-up).
    pub cgroups: Option<nimbus_host::cgroup::Cgroups>,
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

fn tap_of(id: &str) -> String {
    format!("tap{}", &id[id.len().saturating_sub(11)..])
}

impl Agent {
    fn instance_dir(&self, id: &str) -> PathBuf {
        self.dir.join("instances").join(id)
    }

    fn replicas(&self, id: &str) -> Vec<PathBuf> {
        self.disk_dirs.iter().map(|d| d.join(format!("{id}.qcow2"))).collect()
    }

    /// The console log of an instance (GetInstanceConsoleOutput), last 64 KiB.
    pub fn console(dir: &std::path::Path, id: &str) -> String {
        let bytes = std::fs::read(dir.join("instances").join(id).join("serial.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(64 << 10)..]).into_owned()
    }

    async fn tools(&self) -> Result<(Toolchain, Accel), JobError> {
        let accel = match self.accel.get() {
            None => return Err(JobError::Retry("the accelerator probe is still running".into())),
            Some(None) => {
                return Err(JobError::Permanent(match Toolchain::check_host() {
                    Err(e) => format!("virtual machines are unavailable on this host: {e}: {INSTALL_HINT}"),
                    Ok(_) => {
                        "virtual machines are unavailable on this host (see the log of the accelerator probe)".into()
                    }
                }));
            }
            Some(Some(a)) => *a,
        };
        let tools = Toolchain::find().map_err(|e| JobError::Permanent(e.to_string()))?;
        Ok((tools, accel))
    }

    /// Builds a system image and stores it in OSS with its digests (job `ecs.build_image`,
    /// payload `{"ImageId", "Rebuild"}`; no ImageId means the busybox image). Progress goes to the
    /// job (with the step as `checkpoint.Step`, what `nimbus admin image build` draws) and to
    /// DescribeImages `Progress`.
    async fn build_system_image(&self, payload: &Value, ctl: &JobControl) -> Result<Value, JobError> {
        let id = payload["ImageId"].as_str().unwrap_or(SYSTEM_IMAGE_ID);
        let Some(sys) = SYSTEM_IMAGES.iter().find(|i| i.id == id) else {
            return Err(JobError::Permanent(format!("{id} is not one of this region's system images")));
        };
        let rebuild = payload["Rebuild"].as_bool().unwrap_or(false);
        if self.record_system_image(sys).await.map_err(retry)? && !rebuild {
            return Ok(json!({"ImageId": id, "AlreadyAvailable": true}));
        }
        self.set_image_status(id, "Creating", 0).await?;
        let tools = Toolchain::check_host().map_err(|e| {
            JobError::Permanent(format!("{e}: {INSTALL_HINT}, then restart nimbus up to build the image again"))
        })?;
        let out = self.dir.join("build").join(id);
        let cache = self.dir.join("cache");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u8, String)>();
        let build = {
            let (out, kind) = (out.clone(), sys.kind);
            tokio::task::spawn_blocking(move || {
                let mut report = |pct: u8, step: &str| {
                    let _ = tx.send((pct, step.to_string()));
                };
                match kind {
                    SystemImageKind::Busybox => nimbus_host::image::build_busybox_image(&tools, &out, &mut report),
                    SystemImageKind::Debian => {
                        nimbus_host::image::build_debian_image(&tools, &out, &cache, &mut report)
                    }
                }
            })
        };
        while let Some((pct, step)) = rx.recv().await {
            tracing::info!(image = id, progress = pct, step, "building a system image");
            let scaled = i64::from(pct) * 8 / 10;
            ctl.heartbeat(scaled, &json!({"Step": step})).await?;
            self.set_image_status(id, "Creating", scaled).await?;
        }
        let files = build.await.map_err(retry)?.map_err(|e| JobError::Permanent(e.to_string()))?;
        let bucket = image_bucket(&self.region);
        self.oss.ensure_internal_bucket(&bucket, &self.root_account).await.map_err(|e| retry(e.message))?;
        let mut objects = serde_json::Map::new();
        for (n, (part, path)) in PARTS.iter().zip([&files.kernel, &files.initrd, &files.disk]).enumerate() {
            let step = format!("storing the {part} in OSS with its SHA-256");
            ctl.heartbeat(80 + 6 * n as i64, &json!({"Step": step})).await?;
            let body = Bytes::from(tokio::fs::read(path).await.map_err(retry)?);
            let key = format!("images/{id}/{part}");
            objects
                .insert(part.to_string(), json!({"Key": key, "Sha256": image::sha256_hex(&body), "Size": body.len()}));
            self.oss.put_internal(&bucket, &key, body).await.map_err(|e| retry(e.message))?;
        }
        let _ = std::fs::remove_dir_all(&out);
        let mut r = self.store.get_resource(&self.root_account, id).await.map_err(retry)?;
        r.spec["Bucket"] = json!(bucket);
        r.spec["Objects"] = Value::Object(objects);
        r.status = json!({"Status": "Available", "Progress": 100});
        self.store.update_resource(&r).await.map_err(retry)?;
        tracing::info!(image = id, "system image available");
        Ok(json!({"ImageId": id}))
    }

    /// Makes the image's record exist (Creating until built); true if it is already Available.
    async fn record_system_image(&self, sys: &SystemImage) -> Result<bool, StoreError> {
        match self.store.get_resource(&self.root_account, sys.id).await {
            Ok(r) => Ok(r.status["Status"] == "Available"),
            Err(StoreError::NotFound) => {
                let spec = json!({
                    "ImageName": sys.name, "ImageOwnerAlias": "system", "Description": sys.description,
                    "OSName": sys.os_name, "CreationTime": iso8601(now_millis()), "SharedWith": [],
                });
                let mut r = Resource::new(sys.id, &self.root_account, image::KIND, &self.region, spec);
                r.status = json!({"Status": "Creating", "Progress": 0});
                match self.store.create_resource(&r).await {
                    Ok(_) | Err(StoreError::AlreadyExists) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// CreateImage (job `ecs.create_image`): the instance's disk flattened into a new compressed
    /// qcow2 (a running guest is paused meanwhile, which flushes QEMU's caches to the replicas);
    /// kernel and initrd from the instance's own (verified) image.
    async fn create_image(&self, account: &str, payload: &Value) -> Result<Value, JobError> {
        let image_id = payload["ImageId"].as_str().unwrap_or_default();
        let iid = payload["InstanceId"].as_str().unwrap_or_default();
        let mut img = match self.store.get_resource(account, image_id).await {
            Ok(i) => i,
            Err(StoreError::NotFound) => return Ok(json!({"ImageId": image_id, "Deleted": true})),
            Err(e) => return Err(retry(e)),
        };
        if img.status["Status"] == "Available" {
            return Ok(json!({"ImageId": image_id}));
        }
        let src = self
            .store
            .get_resource(
                img.spec["SourceImageOwner"].as_str().unwrap_or_default(),
                img.spec["SourceImageId"].as_str().unwrap_or_default(),
            )
            .await
            .map_err(|e| JobError::Permanent(format!("the instance's image: {e}")))?;
        let parts = image::fetch_verified(&OssImages(self.oss.clone()), &src)
            .await
            .map_err(|e| JobError::Permanent(e.message))?;
        let dir = self.instance_dir(iid);
        let replica = self.replicas(iid).remove(0);
        if !replica.exists() {
            return Err(JobError::Permanent(format!("instance {iid} has no system disk on this host")));
        }
        let out = self.dir.join("build").join(format!("{image_id}.qcow2"));
        let running = read_pid(&dir.join("qemu.pid")).is_some();
        let sock = dir.join("qmp.sock");
        let disk = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            if running {
                qmp_at(&sock, "stop", json!({})).map_err(|e| e.to_string())?;
            }
            if let Some(p) = out.parent() {
                let _ = std::fs::create_dir_all(p);
            }
            let r = std::process::Command::new("qemu-img")
                .args(["convert", "-U", "-c", "-O", "qcow2"])
                .arg(&replica)
                .arg(&out)
                .output();
            if running {
                let _ = qmp_at(&sock, "cont", json!({}));
            }
            let r = r.map_err(|e| e.to_string())?;
            if !r.status.success() {
                return Err(String::from_utf8_lossy(&r.stderr).into_owned());
            }
            let bytes = std::fs::read(&out).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(&out);
            Ok(bytes)
        })
        .await
        .map_err(retry)?
        .map_err(JobError::Retry)?;
        let bucket = image_bucket(&self.region);
        self.oss.ensure_internal_bucket(&bucket, &self.root_account).await.map_err(|e| retry(e.message))?;
        let mut objects = serde_json::Map::new();
        for (part, body) in PARTS.iter().zip([parts[0].clone(), parts[1].clone(), Bytes::from(disk)]) {
            let key = format!("images/{image_id}/{part}");
            objects
                .insert(part.to_string(), json!({"Key": key, "Sha256": image::sha256_hex(&body), "Size": body.len()}));
            self.oss.put_internal(&bucket, &key, body).await.map_err(|e| retry(e.message))?;
        }
        img.spec["Bucket"] = json!(bucket);
        img.spec["Objects"] = Value::Object(objects);
        img.status = json!({"Status": "Available", "Progress": 100});
        self.store.update_resource(&img).await.map_err(retry)?;
        tracing::info!(image = image_id, instance = iid, "custom image available");
        Ok(json!({"ImageId": image_id}))
    }

    async fn set_image_status(&self, id: &str, status: &str, progress: i64) -> Result<(), JobError> {
        if let Ok(mut r) = self.store.get_resource(&self.root_account, id).await {
            r.status = json!({"Status": status, "Progress": progress});
            let _ = self.store.update_resource(&r).await;
        }
        Ok(())
    }

    /// An image whose build failed for good: `CreateFailed`, with the reason DescribeImages
    /// shows (`StatusReason`) and RunInstances answers with. The next start builds it again.
    async fn set_image_failed(&self, account: &str, id: &str, reason: &str) {
        if let Ok(mut r) = self.store.get_resource(account, id).await {
            r.status = json!({"Status": image::CREATE_FAILED, "Progress": 0, "Reason": reason});
            if let Err(e) = self.store.update_resource(&r).await {
                tracing::error!(image = id, error = %e, "could not record that the image build failed");
            }
        }
        tracing::error!(image = id, reason, "image build failed: the image is CreateFailed");
    }

    /// Queues the build of the images made at start (the busybox one) unless Available; one that
    /// failed before (`CreateFailed`, e.g. QEMU was missing) is built again.
    pub async fn ensure_system_image(&self) -> anyhow::Result<()> {
        for sys in SYSTEM_IMAGES.iter().filter(|i| i.at_start) {
            if self.record_system_image(sys).await? {
                continue;
            }
            let pending = self.store.list_jobs(200).await?.into_iter().any(|j| {
                j.kind == BUILD_IMAGE_JOB
                    && j.payload["ImageId"].as_str().unwrap_or(SYSTEM_IMAGE_ID) == sys.id
                    && matches!(j.state, nimbus_store::JobState::Queued | nimbus_store::JobState::Running)
            });
            if !pending {
                if self.store.get_resource(&self.root_account, sys.id).await?.status["Status"] == image::CREATE_FAILED {
                    tracing::info!(image = sys.id, "building again the system image whose build failed before");
                    self.set_image_status(sys.id, "Creating", 0).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
                }
                self.store
                    .enqueue_job(&NewJob {
                        kind: BUILD_IMAGE_JOB.into(),
                        account_id: self.root_account.clone(),
                        payload: json!({"ImageId": sys.id}),
                        max_attempts: 5,
                    })
                    .await?;
            }
        }
        Ok(())
    }

    /// Converges one instance (job `ecs.instance`).
    async fn converge(&self, account: &str, payload: &Value) -> Result<Value, JobError> {
        let id =
            payload["InstanceId"].as_str().ok_or_else(|| JobError::Permanent("payload has no InstanceId".into()))?;
        let inst = match self.store.get_resource(account, id).await {
            Ok(r) if r.kind == instance::KIND => r,
            Ok(_) | Err(StoreError::NotFound) => {
                let vpc = payload["VpcId"].as_str().unwrap_or_default();
                self.teardown(id, vpc).await?;
                if !vpc.is_empty() {
                    self.refresh_vpc(account, vpc).await?;
                }
                return Ok(json!({"InstanceId": id, "Deleted": true}));
            }
            Err(e) => return Err(retry(e)),
        };
        let vpc = inst.spec["VpcId"].as_str().unwrap_or_default().to_string();
        nimbus_vpc::reconcile::reconcile(&self.store, &self.net, account, &vpc).await.map_err(JobError::Retry)?;
        let dir = self.instance_dir(id);
        let running = read_pid(&dir.join("qemu.pid"));
        if inst.spec["Desired"] == "Stopped" {
            if let Some(pid) = running {
                let graceful = !inst.spec["ForceStop"].as_bool().unwrap_or(false);
                self.power_off(id, pid, graceful).await;
            }
            self.refresh_vpc(account, &vpc).await?;
            self.set_status(account, id, |s| s["Status"] = json!("Stopped")).await?;
            return Ok(json!({"InstanceId": id, "Status": "Stopped"}));
        }
        let reboot = inst.spec["RebootSeq"].as_i64().unwrap_or(0);
        let mut booted = running.is_none();
        match running {
            Some(pid) if inst.status["RebootSeq"].as_i64().unwrap_or(0) < reboot => {
                if inst.spec["RebootForce"].as_bool().unwrap_or(false) {
                    qmp_at(&dir.join("qmp.sock"), "system_reset", json!({})).map_err(retry)?;
                } else {
                    // A graceful reboot: the guest shuts down cleanly, then boots again.
                    self.power_off(id, pid, true).await;
                    self.boot(&inst).await?;
                    booted = true;
                }
                tracing::info!(instance = id, "instance rebooted");
            }
            Some(_) => {}
            None => {
                if inst.status["Status"] != "Pending" {
                    self.set_status(account, id, |s| s["Status"] = json!("Starting")).await?;
                }
                self.boot(&inst).await?;
            }
        }
        self.refresh_vpc(account, &vpc).await?;
        let started = if booted { Some(iso8601(now_millis())) } else { None };
        self.set_status(account, id, |s| {
            s["Status"] = json!("Running");
            s["RebootSeq"] = json!(reboot);
            s.as_object_mut().map(|o| o.remove("Error"));
            if let Some(t) = &started {
                s["StartTime"] = json!(t);
            }
        })
        .await?;
        Ok(json!({"InstanceId": id, "Status": "Running"}))
    }

    /// Verifies the image, prepares the disk replicas and the port, and starts QEMU.
    async fn boot(&self, inst: &Resource) -> Result<(), JobError> {
        let (tools, accel) = self.tools().await?;
        let id = inst.id.as_str();
        let s = &inst.spec;
        let image_id = s["ImageId"].as_str().unwrap_or_default();
        let img = match self.store.get_resource(s["ImageOwner"].as_str().unwrap_or_default(), image_id).await {
            Ok(i) => i,
            Err(StoreError::NotFound) => return self.fail(inst, format!("image {image_id} no longer exists")).await,
            Err(e) => return Err(retry(e)),
        };
        let parts = match image::fetch_verified(&OssImages(self.oss.clone()), &img).await {
            Ok(p) => p,
            Err(e) => return self.fail(inst, e.message).await,
        };
        let cache = self.dir.join("images").join(image_id);
        let replicas = self.replicas(id);
        let (kernel, initrd) = (cache.join("kernel"), cache.join("initrd"));
        {
            let (cache, disk_dirs, replicas) = (cache.clone(), self.disk_dirs.clone(), replicas.clone());
            let image_id = image_id.to_string();
            tokio::task::spawn_blocking(move || -> Result<(), String> {
                write_if_changed(&cache.join("kernel"), &parts[0])?;
                write_if_changed(&cache.join("initrd"), &parts[1])?;
                for (d, r) in disk_dirs.iter().zip(&replicas) {
                    let base = d.join("images").join(format!("{image_id}.qcow2"));
                    write_if_changed(&base, &parts[2])?;
                    if !r.exists() {
                        // A copy-on-write overlay of the verified image in the same failure domain.
                        let tmp = r.with_extension("qcow2.tmp");
                        let out = std::process::Command::new("qemu-img")
                            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
                            .arg(&base)
                            .arg(&tmp)
                            .output()
                            .map_err(|e| e.to_string())?;
                        if !out.status.success() {
                            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                        }
                        std::fs::rename(&tmp, r).map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(retry)?
            .map_err(JobError::Retry)?;
        }
        let vpc = s["VpcId"].as_str().unwrap_or_default();
        let vsw = s["VSwitchId"].as_str().unwrap_or_default();
        let tap = tap_of(id);
        let mac = s["MacAddress"].as_str().unwrap_or_default().to_string();
        let ip: Ipv4Addr = s["PrivateIpAddress"].as_str().unwrap_or_default().parse().map_err(retry)?;
        let spec = VmSpec {
            name: id.to_string(),
            accel,
            vcpus: s["Cpu"].as_u64().unwrap_or(1) as u32,
            memory_mib: s["Memory"].as_u64().unwrap_or(256) as u32,
            kernel,
            initrd,
            // tsc_early_khz: without it a TCG guest hangs calibrating its clock one boot in four.
            cmdline: format!(
                "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000 nimbus.ip={ip}/{} nimbus.gw={}",
                s["PrefixLen"].as_u64().unwrap_or(24),
                s["Gateway"].as_str().unwrap_or_default()
            ),
            dir: self.instance_dir(id),
            netns: Some(self.net.namespace(vpc)),
            nics: vec![(tap.clone(), mac.clone())],
            disk: replicas,
        };
        let (net, vpc, vsw) = (self.net.clone(), vpc.to_string(), vsw.to_string());
        let cgroups = self.cgroups.clone();
        let pid = tokio::task::spawn_blocking(move || -> Result<u32, String> {
            net.attach_tap(&vpc, &vsw, &tap).map_err(|e| e.to_string())?;
            net.bind_port(&vpc, &tap, &mac, ip).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_file(spec.dir.join("serial.log"));
            // The instance type's vCPUs and memory, enforced by the kernel on the whole QEMU.
            let procs = match &cgroups {
                Some(c) => c
                    .create(
                        &spec.name,
                        Limits { memory_bytes: instance_memory_bytes(spec.memory_mib), cpus: spec.vcpus },
                    )
                    .map_err(|e| e.to_string())?,
                None => vec![],
            };
            start_detached_in(&tools.qemu, &spec, &procs).map_err(|e| e.to_string())
        })
        .await
        .map_err(retry)?
        .map_err(JobError::Retry)?;
        tracing::info!(instance = id, pid, accelerator = accel.as_str(), "instance started");
        Ok(())
    }

    /// Records why an instance cannot run (it stays Stopped) and ends the job.
    async fn fail(&self, inst: &Resource, why: String) -> Result<(), JobError> {
        tracing::error!(instance = inst.id, error = why, "instance cannot start");
        let w = why.clone();
        self.set_status(&inst.account_id, &inst.id, move |s| {
            s["Status"] = json!("Stopped");
            s["Error"] = json!(w);
        })
        .await?;
        if let Ok(mut i) = self.store.get_resource(&inst.account_id, &inst.id).await {
            i.spec["Desired"] = json!("Stopped");
            let _ = self.store.update_resource(&i).await;
        }
        Err(JobError::Permanent(why))
    }

    /// Stops a VM. Graceful: presses the ACPI power button and gives the guest
    /// [`GRACEFUL_STOP`] to shut down (QEMU exits when it powers off); a guest that does not
    /// (hung, or no power-button handler) is then powered off like `ForceStop`: QMP `quit`, after
    /// which QEMU has flushed its caches to the replicas; SIGKILL if even that does not answer.
    async fn power_off(&self, id: &str, pid: u32, graceful: bool) {
        let sock = self.instance_dir(id).join("qmp.sock");
        let gone = || !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if graceful && self.guest_state(id).await.as_deref() != Some("shutdown") {
            let s = sock.clone();
            let pressed = tokio::task::spawn_blocking(move || qmp_at(&s, "system_powerdown", json!({}))).await;
            if matches!(pressed, Ok(Ok(_))) {
                let t0 = std::time::Instant::now();
                while t0.elapsed() < GRACEFUL_STOP {
                    // QEMU runs with -no-shutdown: a guest that powered off leaves it in `shutdown`.
                    if gone() || self.guest_state(id).await.as_deref() == Some("shutdown") {
                        tracing::info!(instance = id, secs = t0.elapsed().as_secs_f32(), "guest shut down cleanly");
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                if t0.elapsed() >= GRACEFUL_STOP {
                    tracing::warn!(instance = id, "guest did not shut down in time: powering it off");
                }
            }
        }
        if gone() {
            return;
        }
        let _ = tokio::task::spawn_blocking(move || qmp_at(&sock, "quit", json!({}))).await;
        for _ in 0..50 {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }

    /// QEMU's run state of an instance (`running`, `paused`, `shutdown` once the guest powered
    /// itself off, …), or `None` if QMP does not answer.
    async fn guest_state(&self, id: &str) -> Option<String> {
        let sock = self.instance_dir(id).join("qmp.sock");
        let v = tokio::task::spawn_blocking(move || qmp_at(&sock, "query-status", json!({}))).await.ok()?.ok()?;
        v["status"].as_str().map(str::to_string)
    }

    /// A guest that powered itself off (`poweroff` inside) is Stopped, as on Alibaba Cloud: its
    /// desired state follows, and the job releases the QEMU left waiting in `shutdown`.
    async fn guest_powered_off(&self, i: &Resource) -> bool {
        if self.guest_state(&i.id).await.as_deref() != Some("shutdown") {
            return false;
        }
        tracing::info!(instance = i.id, "the guest powered itself off: the instance is Stopped");
        let Ok(mut r) = self.store.get_resource(&i.account_id, &i.id).await else { return false };
        r.spec["Desired"] = json!("Stopped");
        r.spec["ForceStop"] = json!(false);
        r.status["Status"] = json!("Stopping");
        self.store.update_resource(&r).await.is_ok()
    }

    async fn teardown(&self, id: &str, vpc: &str) -> Result<(), JobError> {
        let dir = self.instance_dir(id);
        if let Some(pid) = read_pid(&dir.join("qemu.pid")) {
            self.power_off(id, pid, false).await; // the instance is deleted: nothing to keep
        }
        if !vpc.is_empty() {
            let (net, vpc, tap) = (self.net.clone(), vpc.to_string(), tap_of(id));
            tokio::task::spawn_blocking(move || net.detach_tap(&vpc, &tap)).await.map_err(retry)?.map_err(retry)?;
        }
        for r in self.replicas(id) {
            let _ = std::fs::remove_file(r);
        }
        if let Some(c) = &self.cgroups {
            c.remove(id);
        }
        let _ = std::fs::remove_dir_all(dir);
        tracing::info!(instance = id, "instance removed from the host");
        Ok(())
    }

    async fn set_status(&self, account: &str, id: &str, f: impl Fn(&mut Value)) -> Result<(), JobError> {
        for _ in 0..5 {
            let mut r = match self.store.get_resource(account, id).await {
                Ok(r) => r,
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(retry(e)),
            };
            f(&mut r.status);
            match self.store.update_resource(&r).await {
                Ok(_) | Err(StoreError::NotFound) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(retry(e)),
            }
        }
        Err(JobError::Retry(format!("{id} kept changing")))
    }

    /// The VPC's ports: security groups compiled per port, EIP NAT, metadata service.
    pub async fn refresh_vpc(&self, account: &str, vpc: &str) -> Result<(), JobError> {
        let instances: Vec<Resource> = self
            .store
            .all_resources(account, instance::KIND)
            .await
            .map_err(retry)?
            .into_iter()
            .filter(|i| i.spec["VpcId"] == vpc)
            .collect();
        let groups: HashMap<String, Resource> = self
            .store
            .all_resources(account, nimbus_ecs::security_group::KIND)
            .await
            .map_err(retry)?
            .into_iter()
            .map(|g| (g.id.clone(), g))
            .collect();
        let members = |gid: &str| -> Vec<Ipv4Addr> {
            instances
                .iter()
                .filter(|i| i.spec["SecurityGroupIds"].as_array().is_some_and(|a| a.iter().any(|g| g == gid)))
                .filter_map(|i| i.spec["PrivateIpAddress"].as_str().and_then(|a| a.parse().ok()))
                .collect()
        };
        let mut ports = vec![];
        for i in &instances {
            let Some(ip) = i.spec["PrivateIpAddress"].as_str().and_then(|a| a.parse().ok()) else { continue };
            let mut rules = vec![];
            for gid in i.spec["SecurityGroupIds"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let Some(g) = groups.get(gid) else { continue };
                for p in g.spec["Permissions"].as_array().into_iter().flatten() {
                    rules.extend(sg_rules(p, &members));
                }
                // Members of one group reach each other (InnerAccessPolicy Accept), at the lowest priority.
                for m in members(gid) {
                    rules.push(SgRule {
                        ingress: true,
                        protocol: "all".into(),
                        ports: None,
                        peer: ipnet::Ipv4Net::from(m),
                        accept: true,
                        priority: 100,
                    });
                }
            }
            ports.push(PortPolicy { ip, rules });
        }
        let mut eips: Vec<(Ipv4Addr, Ipv4Addr)> = self
            .store
            .all_resources(account, "vpc.eip")
            .await
            .map_err(retry)?
            .iter()
            .filter(|e| e.spec["VpcId"] == vpc && instances.iter().any(|i| e.spec["InstanceId"] == i.id.as_str()))
            .filter_map(|e| {
                Some((e.spec["IpAddress"].as_str()?.parse().ok()?, e.spec["PrivateIpAddress"].as_str()?.parse().ok()?))
            })
            .collect();
        // Public IPs from AllocatePublicIpAddress are NAT'd the same way.
        eips.extend(instances.iter().filter_map(|i| {
            Some((
                i.spec["PublicIpAddress"].as_str()?.parse().ok()?,
                i.spec["PrivateIpAddress"].as_str()?.parse().ok()?,
            ))
        }));
        // Custom route entries whose next-hop instance still exists.
        let routes: Vec<(ipnet::Ipv4Net, Ipv4Addr)> = match self.store.get_resource(account, vpc).await {
            Ok(v) => v.spec["CustomRoutes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let via = instances.iter().find(|i| r["NextHopId"] == i.id.as_str())?;
                    Some((
                        r["DestinationCidrBlock"].as_str()?.parse().ok()?,
                        via.spec["PrivateIpAddress"].as_str()?.parse().ok()?,
                    ))
                })
                .collect(),
            Err(_) => vec![],
        };
        let (net, vpc_id) = (self.net.clone(), vpc.to_string());
        tokio::task::spawn_blocking(move || -> Result<(), nimbus_host::net::NetError> {
            net.ensure_metadata_address(&vpc_id)?;
            net.apply_security(&vpc_id, &ports)?;
            net.apply_routes(&vpc_id, &routes)?;
            net.apply_eips(&vpc_id, nimbus_vpc::eip::pool(), &eips)
        })
        .await
        .map_err(retry)?
        .map_err(retry)?;
        if !instances.is_empty() {
            self.metadata.ensure(vpc, &self.net.namespace(vpc)).await.map_err(retry)?;
        }
        Ok(())
    }

    /// At start and every few seconds: instances meant to run whose QEMU is gone get a job.
    pub async fn supervise(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut first = true;
        loop {
            if let Ok(all) = self.store.all_resources_all_accounts(instance::KIND).await {
                for i in all {
                    let alive = read_pid(&self.instance_dir(&i.id).join("qemu.pid")).is_some();
                    let wants = i.spec["Desired"] == "Running";
                    let crashed = wants && !alive && i.status["Status"] == "Running";
                    if crashed {
                        tracing::warn!(instance = i.id, "instance's QEMU is gone; starting it again");
                    }
                    let halted = wants && alive && i.status["Status"] == "Running" && self.guest_powered_off(&i).await;
                    if first || crashed || halted || (!wants && alive) {
                        let _ = self
                            .store
                            .enqueue_job(&NewJob {
                                kind: instance::JOB.into(),
                                account_id: i.account_id.clone(),
                                payload: json!({"InstanceId": i.id}),
                                max_attempts: 20,
                            })
                            .await;
                    }
                }
                first = false;
            }
            tokio::select! {
                _ = stop.changed() => break,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

impl nimbus_vpc::VpcPorts for Agent {
    fn refresh_vpc<'a>(&'a self, account: &'a str, vpc: &'a str) -> BoxFut<'a, Result<(), JobError>> {
        Box::pin(Agent::refresh_vpc(self, account, vpc))
    }
}

/// One stored permission as data-plane rules (a group peer expands to its members' addresses).
fn sg_rules(p: &Value, members: &dyn Fn(&str) -> Vec<Ipv4Addr>) -> Vec<SgRule> {
    let ingress = p["Direction"] == "ingress";
    let protocol = p["IpProtocol"].as_str().unwrap_or("ALL").to_ascii_lowercase();
    let ports = p["PortRange"].as_str().and_then(|r| {
        let (a, b) = r.split_once('/')?;
        Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?))
    });
    let accept = p["Policy"].as_str().unwrap_or("accept").eq_ignore_ascii_case("accept");
    let priority = p["Priority"].as_str().and_then(|x| x.parse().ok()).unwrap_or(1u8);
    let (cidr_f, group_f) = if ingress { ("SourceCidrIp", "SourceGroupId") } else { ("DestCidrIp", "DestGroupId") };
    let peers: Vec<ipnet::Ipv4Net> =
        match (p[cidr_f].as_str().filter(|c| !c.is_empty()), p[group_f].as_str().filter(|g| !g.is_empty())) {
            (Some(c), _) => c.parse().ok().into_iter().collect(),
            (None, Some(g)) => members(g).into_iter().map(ipnet::Ipv4Net::from).collect(),
            _ => vec![],
        };
    peers
        .into_iter()
        .map(|peer| SgRule { ingress, protocol: protocol.clone(), ports, peer, accept, priority })
        .collect()
}

/// Writes `data` to `path` unless it already holds exactly that (atomically: a running VM keeps
/// the old inode open).
fn write_if_changed(path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

pub struct InstanceJob(pub Arc<Agent>);

impl JobHandler for InstanceJob {
    fn kind(&self) -> &'static str {
        instance::JOB
    }
    fn run<'a>(&'a self, job: &'a Job, _ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>> {
        Box::pin(self.0.converge(&job.account_id, &job.payload))
    }
}

/// Why a job's outcome ends it for good (no attempt left), if it does.
fn final_failure(job: &Job, r: &Result<Value, JobError>) -> Option<String> {
    match r {
        Err(JobError::Permanent(why)) => Some(why.clone()),
        Err(JobError::Retry(why)) if job.attempts >= job.max_attempts => Some(why.clone()),
        _ => None,
    }
}

pub struct CreateImageJob(pub Arc<Agent>);

impl JobHandler for CreateImageJob {
    fn kind(&self) -> &'static str {
        image::CREATE_JOB
    }
    fn run<'a>(&'a self, job: &'a Job, _ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let r = self.0.create_image(&job.account_id, &job.payload).await;
            if let Some(why) = final_failure(job, &r) {
                let id = job.payload["ImageId"].as_str().unwrap_or_default();
                self.0.set_image_failed(&job.account_id, id, &why).await;
            }
            r
        })
    }
}

pub struct BuildImageJob(pub Arc<Agent>);

impl JobHandler for BuildImageJob {
    fn kind(&self) -> &'static str {
        BUILD_IMAGE_JOB
    }
    fn run<'a>(&'a self, job: &'a Job, ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let r = self.0.build_system_image(&job.payload, ctl).await;
            // The job's last word is the image's: a build that will not be tried again leaves
            // the image CreateFailed with its reason, not Creating forever.
            if let Some(why) = final_failure(job, &r) {
                let id = job.payload["ImageId"].as_str().unwrap_or(SYSTEM_IMAGE_ID);
                self.0.set_image_failed(&self.0.root_account, id, &why).await;
            }
            r
        })
    }
}
