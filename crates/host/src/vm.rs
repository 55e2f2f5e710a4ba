//! Virtual machines as QEMU processes, supervised over QMP.
//!
//! The accelerator is chosen by a real probe: a tiny VM (the host's kernel and a busybox
//! initramfs that prints a marker) must reach its init within a deadline under KVM; if it does
//! not (no `/dev/kvm`, or a KVM that cannot run a stock kernel, as on nested/PVM hosts), TCG is
//! used and the reason is kept for the logs. Machines are `microvm` (fast boot, virtio-mmio).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("{0}")]
    Missing(String),
    #[error("starting QEMU: {0}")]
    Spawn(std::io::Error),
    #[error("QMP: {0}")]
    Qmp(String),
    #[error("the VM did not reach its init within {0:?}: {1}")]
    Boot(Duration, String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VmError + '_ {
    move |source| VmError::Io { path: path.display().to_string(), source }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// What the probe found.
#[derive(Clone, Debug)]
pub struct Probe {
    pub accel: Accel,
    /// Why KVM is not used (absent when it is).
    pub kvm_unusable: Option<String>,
    /// Time from QEMU start to the probe VM's init, under the chosen accelerator.
    pub boot: Duration,
}

/// Where the host's QEMU, kernel and busybox are.
#[derive(Clone, Debug)]
pub struct Toolchain {
    pub qemu: PathBuf,
    pub kernel: PathBuf,
    pub busybox: PathBuf,
}

/// The command that installs every host package Nimbus needs (from a checkout of the repository).
pub const INSTALL_HINT: &str = "run scripts/install-deps";

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}

impl Toolchain {
    /// Finds `qemu-system-x86_64` (on `PATH`, or where `NIMBUS_QEMU` says), the newest
    /// `/boot/vmlinuz-*` and a static busybox, or says which is missing and which Debian package
    /// provides it.
    pub fn find() -> Result<Toolchain, VmError> {
        let qemu = match std::env::var_os("NIMBUS_QEMU").filter(|v| !v.is_empty()) {
            Some(p) => {
                let p = PathBuf::from(p);
                if !p.is_file() {
                    return Err(VmError::Missing(format!(
                        "qemu-system-x86_64 not found at {} (NIMBUS_QEMU; Debian package qemu-system-x86)",
                        p.display()
                    )));
                }
                p
            }
            None => which("qemu-system-x86_64").ok_or_else(|| {
                VmError::Missing("qemu-system-x86_64 not found (Debian package qemu-system-x86)".into())
            })?,
        };
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| VmError::Missing("busybox not found (Debian package busybox-static)".into()))?;
        // An initramfs has no C library: a dynamically linked busybox would not start.
        let bytes = std::fs::read(&busybox).map_err(io(&busybox))?;
        if bytes.windows(12).any(|w| w == b"/lib64/ld-li") {
            return Err(VmError::Missing(format!(
                "{} is dynamically linked; install the Debian package busybox-static",
                busybox.display()
            )));
        }
        let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
            .collect();
        kernels.sort();
        let kernel = kernels
            .pop()
            .ok_or_else(|| VmError::Missing("no kernel in /boot (Debian package linux-image-cloud-amd64)".into()))?;
        Ok(Toolchain { qemu, kernel, busybox })
    }

    /// [`Toolchain::find`], then the other host tools that instances and the first-start image
    /// build need (`qemu-img`, `mke2fs`, dropbear); the first one missing is the error.
    pub fn check_host() -> Result<Toolchain, VmError> {
        let tools = Toolchain::find()?;
        for (tool, package) in [("qemu-img", "qemu-utils"), ("mke2fs", "e2fsprogs")] {
            if which(tool).is_none() && !Path::new("/usr/sbin").join(tool).is_file() {
                return Err(VmError::Missing(format!("{tool} not found (Debian package {package})")));
            }
        }
        if !Path::new("/usr/sbin/dropbear").is_file() {
            return Err(VmError::Missing("/usr/sbin/dropbear not found (Debian package dropbear-bin)".into()));
        }
        Ok(tools)
    }
}

/// Appends one `newc` cpio entry.
pub(crate) fn cpio_entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8], ino: u32) {
    let header = format!(
        "070701{ino:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        0,
        0,
        name.len() + 1,
        0
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The marker the probe VM's init prints.
pub const PROBE_MARKER: &str = "NIMBUS-PROBE-INIT";

/// A minimal initramfs (uncompressed `newc` cpio, which the kernel accepts as is): busybox and an
/// `/init` script. Written here rather than by `cpio(1)` so building one needs no extra tool.
pub fn initramfs(busybox: &Path, init_script: &str) -> Result<Vec<u8>, VmError> {
    initramfs_with(busybox, init_script, &[])
}

/// Like [`initramfs`], with extra regular files (`name` inside the archive, contents), e.g.
/// kernel modules under `lib/modules/`.
pub fn initramfs_with(busybox: &Path, init_script: &str, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, VmError> {
    let bb = std::fs::read(busybox).map_err(io(busybox))?;
    let mut out = Vec::with_capacity(bb.len() + 4096);
    let mut ino = 1;
    for dir in ["bin", "dev", "proc", "sys", "tmp", "etc", "run", "lib", "lib/modules"] {
        cpio_entry(&mut out, dir, 0o040755, &[], ino);
        ino += 1;
    }
    cpio_entry(&mut out, "bin/busybox", 0o100755, &bb, ino);
    cpio_entry(&mut out, "bin/sh", 0o120777, b"busybox", ino + 1);
    cpio_entry(&mut out, "init", 0o100755, init_script.as_bytes(), ino + 2);
    ino += 3;
    for (name, data) in files {
        cpio_entry(&mut out, name, 0o100644, data, ino);
        ino += 1;
    }
    cpio_entry(&mut out, "TRAILER!!!", 0, &[], 0);
    Ok(out)
}

/// The kernel modules a guest needs for virtio-mmio networking, in load order, read from the
/// host's `/lib/modules/<kernel version>` (Debian's cloud kernel builds them as modules).
pub fn virtio_net_modules(kernel: &Path) -> Result<Vec<(String, Vec<u8>)>, VmError> {
    kernel_modules(
        kernel,
        &[
            "drivers/virtio/virtio_ring.ko",
            "drivers/virtio/virtio.ko",
            "drivers/virtio/virtio_mmio.ko",
            "net/core/failover.ko",
            "drivers/net/net_failover.ko",
            "drivers/net/virtio_net.ko",
        ],
    )
}

/// The modules at `paths` (under `/lib/modules/<version of kernel>/kernel`), in that order, as
/// initramfs entries `lib/modules/<file>`; one built into the kernel (absent) is left out.
pub fn kernel_modules(kernel: &Path, paths: &[&str]) -> Result<Vec<(String, Vec<u8>)>, VmError> {
    let version = kernel
        .file_name()
        .and_then(|n| n.to_string_lossy().strip_prefix("vmlinuz-").map(str::to_string))
        .ok_or_else(|| VmError::Missing(format!("cannot tell the version of kernel {}", kernel.display())))?;
    let base = PathBuf::from("/lib/modules").join(&version).join("kernel");
    let mut out = vec![];
    for m in paths {
        let p = base.join(m);
        if !p.exists() {
            continue; // built into this kernel
        }
        let name = format!("lib/modules/{}", p.file_name().unwrap_or_default().to_string_lossy());
        out.push((name, std::fs::read(&p).map_err(io(&p))?));
    }
    Ok(out)
}

/// Shell lines for a guest's init: load `modules` in their order.
pub fn insmod_lines(modules: &[(String, Vec<u8>)]) -> String {
    modules.iter().map(|(name, _)| format!("/bin/busybox insmod /{name}\n")).collect()
}

/// How to start one VM.
#[derive(Clone, Debug)]
pub struct VmSpec {
    pub name: String,
    pub accel: Accel,
    pub vcpus: u32,
    pub memory_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    /// Working directory of the VM: QMP socket, serial log, pid file.
    pub dir: PathBuf,
    /// Network namespace QEMU runs in (where its tap devices are).
    pub netns: Option<String>,
    /// Network cards: (tap device in `netns`, MAC address).
    pub nics: Vec<(String, String)>,
    /// The system disk's replicas (qcow2 files): none, one, or three kept in step by QEMU's
    /// `quorum` driver (writes go to all, reads are voted on, so a bad replica is outvoted).
    pub disk: Vec<PathBuf>,
}

impl VmSpec {
    /// The QEMU command line (without the program) for this spec.
    fn args(&self, detached: bool) -> Vec<String> {
        let mut a: Vec<String> = vec![];
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|x| x.to_string()));
        for (i, (tap, mac)) in self.nics.iter().enumerate() {
            // vhost=off: no vhost-net on these hosts.
            push(&["-netdev", &format!("tap,id=n{i},ifname={tap},script=no,downscript=no,vhost=off")]);
            push(&["-device", &format!("virtio-net-device,netdev=n{i},mac={mac}")]);
        }
        match self.disk.len() {
            0 => {}
            1 => {
                push(&[
                    "-blockdev",
                    &format!("driver=qcow2,node-name=sys,file.driver=file,file.filename={}", self.disk[0].display()),
                ]);
                push(&["-device", "virtio-blk-device,drive=sys"]);
            }
            n => {
                let mut quorum =
                    format!("driver=quorum,node-name=sys,vote-threshold={},rewrite-corrupted=on", n / 2 + 1);
                for (i, d) in self.disk.iter().enumerate() {
                    push(&[
                        "-blockdev",
                        &format!("driver=qcow2,node-name=r{i},file.driver=file,file.filename={}", d.display()),
                    ]);
                    quorum += &format!(",children.{i}=r{i}");
                }
                push(&["-blockdev", &quorum]);
                push(&["-device", "virtio-blk-device,drive=sys"]);
            }
        }
        let serial = self.dir.join("serial.log");
        let qmp = self.dir.join("qmp.sock");
        // TCG's translation cache defaults to 1 GiB; 128 MiB is plenty for these guests and keeps
        // QEMU inside the memory its cgroup allows (guest RAM + 256 MiB, see `cgroup`).
        let accel =
            if self.accel == Accel::Tcg { "tcg,tb-size=128".to_string() } else { self.accel.as_str().to_string() };
        push(&["-name", &self.name, "-M", "microvm", "-accel", &accel]);
        push(&["-cpu", if self.accel == Accel::Kvm { "host" } else { "max" }]);
        push(&["-smp", &self.vcpus.to_string(), "-m", &self.memory_mib.to_string()]);
        push(&["-nodefaults", "-no-user-config", "-nographic"]);
        if !detached {
            push(&["-no-reboot"]);
        } else {
            // A guest that powers itself off leaves QEMU up in state `shutdown`, so the agent can
            // tell that (the instance becomes Stopped) from a QEMU that died (it is restarted).
            push(&["-no-shutdown"]);
        }
        push(&["-serial", &format!("file:{}", serial.display())]);
        push(&["-qmp", &format!("unix:{},server=on,wait=off", qmp.display())]);
        push(&["-kernel", &self.kernel.display().to_string(), "-initrd", &self.initrd.display().to_string()]);
        push(&["-append", &self.cmdline]);
        a
    }

    fn command(&self, qemu: &Path, detached: bool) -> Command {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(qemu);
                c
            }
            None => Command::new(qemu),
        };
        cmd.args(self.args(detached));
        cmd
    }
}

/// Starts QEMU as a daemon that outlives this process (an instance keeps running across a
/// control-plane restart); returns its pid, also written to `dir/qemu.pid`. `-no-reboot` is not
/// used: a guest reboot resets the machine in place, as on real hardware.
pub fn start_detached(qemu: &Path, spec: &VmSpec) -> Result<u32, VmError> {
    start_detached_in(qemu, spec, &[])
}

/// [`start_detached`] with QEMU started inside the cgroups behind `cgroup_procs` (see
/// [`crate::cgroup::Cgroups::create`]); none runs it where this process is.
pub fn start_detached_in(qemu: &Path, spec: &VmSpec, cgroup_procs: &[PathBuf]) -> Result<u32, VmError> {
    std::fs::create_dir_all(&spec.dir).map_err(io(&spec.dir))?;
    let pidfile = spec.dir.join("qemu.pid");
    let _ = std::fs::remove_file(&pidfile);
    let _ = std::fs::remove_file(spec.dir.join("qmp.sock"));
    let mut cmd = spec.command(qemu, true);
    cmd.arg("-daemonize").arg("-pidfile").arg(&pidfile);
    if !cgroup_procs.is_empty() {
        cmd = crate::cgroup::Cgroups::wrap(&cmd, cgroup_procs);
    }
    let out = cmd.stdin(Stdio::null()).output().map_err(VmError::Spawn)?;
    if !out.status.success() {
        return Err(VmError::Boot(
            Duration::ZERO,
            format!("QEMU did not start: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    read_pid(&pidfile).ok_or_else(|| VmError::Qmp(format!("QEMU started but wrote no pid to {}", pidfile.display())))
}

/// The pid in a pid file, if that process is alive.
pub fn read_pid(pidfile: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// One QMP command against the socket of a VM this process did not start.
pub fn qmp_at(socket: &Path, command: &str, arguments: Value) -> Result<Value, VmError> {
    qmp_call(socket, command, arguments)
}

/// Resident memory of a process (KiB), from /proc.
pub fn rss_kib_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A running QEMU process and its QMP socket.
pub struct Vm {
    pub spec: VmSpec,
    child: Child,
}

impl Vm {
    pub fn serial_log(&self) -> PathBuf {
        self.spec.dir.join("serial.log")
    }

    pub fn qmp_path(&self) -> PathBuf {
        self.spec.dir.join("qmp.sock")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts QEMU. The kernel console goes to `serial.log`; QMP listens on `qmp.sock`.
    pub fn start(qemu: &Path, spec: VmSpec) -> Result<Vm, VmError> {
        std::fs::create_dir_all(&spec.dir).map_err(io(&spec.dir))?;
        let _ = std::fs::remove_file(spec.dir.join("qmp.sock"));
        let mut cmd = spec.command(qemu, false);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let child = cmd.spawn().map_err(VmError::Spawn)?;
        Ok(Vm { spec, child })
    }

    /// Waits until the serial console shows `marker`; fails on timeout or if QEMU exits.
    pub fn wait_for_console(&mut self, marker: &str, deadline: Duration) -> Result<Duration, VmError> {
        let start = Instant::now();
        loop {
            if std::fs::read_to_string(self.serial_log()).is_ok_and(|s| s.contains(marker)) {
                return Ok(start.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(VmError::Boot(deadline, format!("QEMU exited ({status}): {}", err.trim())));
            }
            if start.elapsed() > deadline {
                return Err(VmError::Boot(deadline, "no init marker on the console".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One QMP command on a fresh connection (greeting, capabilities, command).
    pub fn qmp(&self, command: &str, arguments: Value) -> Result<Value, VmError> {
        qmp_call(&self.qmp_path(), command, arguments)
    }

    /// Resident memory of the QEMU process (KiB), from /proc.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib_of(self.child.id())
    }

    /// Stops QEMU at once (`quit`), then reaps it.
    pub fn kill(mut self) {
        let _ = self.qmp("quit", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Boots the probe VM under `accel`; returns the time to its init.
fn boot_probe(
    tools: &Toolchain,
    initrd: &Path,
    dir: &Path,
    accel: Accel,
    deadline: Duration,
) -> Result<Duration, VmError> {
    let spec = VmSpec {
        name: format!("nimbus-probe-{}", accel.as_str()),
        accel,
        vcpus: 1,
        memory_mib: 128,
        kernel: tools.kernel.clone(),
        initrd: initrd.to_path_buf(),
        // tsc_early_khz: without it a TCG guest hangs calibrating its clock one boot in four.
        cmdline: "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000".into(),
        dir: dir.join(accel.as_str()),
        netns: None,
        nics: vec![],
        disk: vec![],
    };
    let _ = std::fs::remove_dir_all(&spec.dir);
    let mut vm = Vm::start(&tools.qemu, spec)?;
    let r = vm.wait_for_console(PROBE_MARKER, deadline);
    vm.kill();
    r
}

/// Chooses the accelerator by booting the probe VM: KVM if it reaches init within `deadline`,
/// otherwise TCG (which must then boot too). `dir` holds the probe's files.
pub fn probe(tools: &Toolchain, dir: &Path, deadline: Duration) -> Result<Probe, VmError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let initrd = dir.join("probe-initrd.cpio");
    let script = format!("#!/bin/busybox sh\n/bin/busybox echo {PROBE_MARKER}\n/bin/busybox reboot -f\n");
    std::fs::write(&initrd, initramfs(&tools.busybox, &script)?).map_err(io(&initrd))?;
    let kvm_unusable = if !Path::new("/dev/kvm").exists() {
        Some("/dev/kvm does not exist".to_string())
    } else {
        match boot_probe(tools, &initrd, dir, Accel::Kvm, deadline) {
            Ok(boot) => return Ok(Probe { accel: Accel::Kvm, kvm_unusable: None, boot }),
            Err(e) => Some(e.to_string()),
        }
    };
    let boot = boot_probe(tools, &initrd, dir, Accel::Tcg, deadline)?;
    Ok(Probe { accel: Accel::Tcg, kvm_unusable, boot })
}

/// One QMP command on a fresh connection (greeting, capabilities, command).
fn qmp_call(socket: &Path, command: &str, arguments: Value) -> Result<Value, VmError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match UnixStream::connect(socket) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(VmError::Qmp(format!("connect: {e}"))),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| VmError::Qmp(e.to_string()))?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| VmError::Qmp(e.to_string()))?);
    let mut writer = stream;
    let mut line = String::new();
    let mut read_reply = |reader: &mut BufReader<UnixStream>| -> Result<Value, VmError> {
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| VmError::Qmp(e.to_string()))? == 0 {
                return Err(VmError::Qmp("connection closed".into()));
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| VmError::Qmp(e.to_string()))?;
            // Skip the greeting and asynchronous events.
            if v.get("return").is_some() || v.get("error").is_some() {
                return Ok(v);
            }
        }
    };
    for (cmd, args) in [("qmp_capabilities", json!({})), (command, arguments)] {
        writeln!(writer, "{}", json!({"execute": cmd, "arguments": args})).map_err(|e| VmError::Qmp(e.to_string()))?;
        let reply = read_reply(&mut reader)?;
        if let Some(e) = reply.get("error") {
            return Err(VmError::Qmp(format!("{cmd}: {e}")));
        }
        if cmd == command {
            return Ok(reply["return"].clone());
        }
    }
    unreachable!("the loop returns on the second command")
}
