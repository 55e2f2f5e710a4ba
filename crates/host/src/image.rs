//! Builds Nimbus's public system image from the host's Debian packages: the host kernel, a small
//! initramfs that finds the system disk, and an ext4 system disk holding busybox, Dropbear (the SSH
//! server, with the shared libraries it links) and a boot script that configures the network and
//! reads the instance's identity, SSH key and user-data from the metadata service — what
//! cloud-init does on a full distribution.
//!
//! The disk is built with `mke2fs -d` (populates a file system from a directory without mounting
//! anything) and stored as compressed qcow2, so an image of a 256 MiB disk is a few MiB in OSS.

use crate::vm::VmError;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The marker the guest's boot script prints once SSH is up (`NIMBUS-READY <instance id>`).
pub const READY_MARKER: &str = "NIMBUS-READY";

/// Size of the system disk the image describes.
pub const DISK_MIB: u64 = 256;

/// The three files of an image.
#[derive(Clone, Debug)]
pub struct ImageFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// qcow2, compressed.
    pub disk: PathBuf,
}

/// The guest kernel modules, in load order: virtio-mmio transport, block (system disk) and net.
pub fn guest_modules(kernel: &Path) -> Result<Vec<(String, Vec<u8>)>, VmError> {
    crate::vm::kernel_modules(
        kernel,
        &[
            "drivers/virtio/virtio_ring.ko",
            "drivers/virtio/virtio.ko",
            "drivers/virtio/virtio_mmio.ko",
            "drivers/block/virtio_blk.ko",
            "net/core/failover.ko",
            "drivers/net/net_failover.ko",
            "drivers/net/virtio_net.ko",
            // The ACPI power button and its input events: a graceful StopInstance presses it.
            "drivers/input/evdev.ko",
            "drivers/acpi/button.ko",
        ],
    )
}

fn io_err(path: &Path, source: std::io::Error) -> VmError {
    VmError::Io { path: path.display().to_string(), source }
}

fn run(cmd: &mut Command) -> Result<String, VmError> {
    let out = cmd.output().map_err(|e| VmError::Missing(format!("{cmd:?}: {e}")))?;
    if !out.status.success() {
        return Err(VmError::Missing(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The initramfs: loads the virtio modules, mounts the system disk and switches to it.
fn boot_initrd(busybox: &Path, modules: &[(String, Vec<u8>)]) -> Result<Vec<u8>, VmError> {
    let insmod = crate::vm::insmod_lines(modules);
    let script = format!(
        "#!/bin/busybox sh\n\
         /bin/busybox mount -t proc proc /proc\n\
         /bin/busybox mount -t devtmpfs dev /dev\n\
         {insmod}\
         /bin/busybox mkdir -p /newroot\n\
         n=0; while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do /bin/busybox sleep 0.1; n=$((n+1)); done\n\
         if ! /bin/busybox mount -t ext4 /dev/vda /newroot; then\n\
           /bin/busybox echo NIMBUS-BOOT-FAILED: no system disk; /bin/busybox poweroff -f\n\
         fi\n\
         /bin/busybox mount --move /dev /newroot/dev\n\
         /bin/busybox umount /proc\n\
         exec /bin/busybox switch_root /newroot /sbin/init\n"
    );
    crate::vm::initramfs_with(busybox, &script, modules)
}

/// `/usr/lib/nimbus/instance-setup`, sourced by both images' boot scripts once the network is
/// up: identity, hostname, SSH key and user-data from the metadata service, what cloud-init does
/// on Alibaba's images. Leaves `$ID` set and the instance id in `/run/nimbus-id`.
const INSTANCE_SETUP: &str = r#"get() { nimbus-metadata "$1"; }
ID=""
n=0
# A hardened-mode token first (6 h), so boot works when the instance requires one.
while [ -z "$ID" ] && [ $n -lt 30 ]; do
  NIMBUS_METADATA_TOKEN=$(nimbus-metadata --token 21600 2>/dev/null); export NIMBUS_METADATA_TOKEN
  ID=$(get meta-data/instance-id 2>/dev/null); [ -z "$ID" ] && sleep 1; n=$((n+1))
done
if [ -z "$ID" ]; then echo "NIMBUS: the metadata service does not answer:"; get meta-data/instance-id; ip addr; ip route; fi
hostname "$(get meta-data/hostname 2>/dev/null || echo localhost)"
mkdir -p /root/.ssh /var/lib/nimbus
# The key is replaced only by a good answer: a metadata hiccup must not lock the owner out.
n=0
while ! get meta-data/public-keys/0/openssh-key > /run/nimbus-key 2>/dev/null && [ $n -lt 5 ]; do sleep 1; n=$((n+1)); done
if [ -s /run/nimbus-key ]; then cp /run/nimbus-key /root/.ssh/authorized_keys; else echo "NIMBUS: no SSH key from the metadata service: $(nimbus-metadata meta-data/public-keys/0/openssh-key 2>&1 | head -n 1)"; fi
chmod 700 /root/.ssh; chmod 600 /root/.ssh/authorized_keys 2>/dev/null
# User-data runs once per instance (an image made from this instance carries the marker).
n=0
while ! get user-data > /run/nimbus-user-data 2>/dev/null && [ $n -lt 5 ]; do sleep 1; n=$((n+1)); done
if [ -s /run/nimbus-user-data ] && [ "$(cat /var/lib/nimbus/user-data-ran 2>/dev/null)" != "$ID" ]; then
  if head -c 2 /run/nimbus-user-data | grep -q '#!'; then chmod +x /run/nimbus-user-data; /run/nimbus-user-data > /var/log/user-data.log 2>&1; fi
  echo "$ID" > /var/lib/nimbus/user-data-ran
fi
echo "$ID" > /run/nimbus-id
"#;

/// `/etc/init.d/rcS` on the system disk: network from the kernel command line (`nimbus.ip=`,
/// `nimbus.gw=`), then identity, SSH key and user-data from the metadata service.
const RCS: &str = r#"#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs run /run
# Was the last power-off clean (a graceful stop or `poweroff`)? rcK leaves this marker.
[ -f /var/lib/nimbus/clean-shutdown ] && mv /var/lib/nimbus/clean-shutdown /run/nimbus-last-shutdown
# The ACPI power button (a graceful StopInstance) runs /etc/acpi/PWRF/00000080: poweroff.
acpid -c /etc/acpi -l /var/log/acpid.log
arg() { sed -n "s/.*nimbus\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
ip link set lo up
ip link set eth0 up
ip addr add "$(arg ip)" dev eth0
ip route add default via "$(arg gw)"
mkdir -p /etc/dropbear
. /usr/lib/nimbus/instance-setup
sync
echo "NIMBUS-READY $ID"
"#;

/// `/usr/bin/nimbus-metadata PATH`: prints `http://169.254.169.254/latest/PATH`, fails on
/// anything but 200. HTTP by `nc -e` because busybox's wget looks the "http" service up through
/// glibc's NSS, which a static busybox cannot load beside the image's dynamic glibc (it crashes);
/// and `-e` keeps the request side open until the answer is in (piping into nc closes the socket
/// at the end of the request, sometimes before the answer arrives). `NIMBUS_METADATA_HOST` picks
/// the other address the service answers on (Alibaba's 100.100.100.200); `--token [TTL]` asks
/// for a hardened-mode token, which `NIMBUS_METADATA_TOKEN` then sends with every read.
const METADATA_CLIENT: &str = r#"#!/bin/sh
host=${NIMBUS_METADATA_HOST:-169.254.169.254}
method=GET; path="latest/$1"; extra=""
if [ "$1" = "--token" ]; then method=PUT; path=latest/api/token; extra="X-aliyun-ecs-metadata-token-ttl-seconds: ${2:-21600}\r\n"; fi
[ -n "$NIMBUS_METADATA_TOKEN" ] && extra="${extra}X-aliyun-ecs-metadata-token: $NIMBUS_METADATA_TOKEN\r\n"
reply=$(mktemp)
nc -w 3 "$host" 80 -e /bin/sh -c "printf '$method /$path HTTP/1.0\r\nHost: $host\r\n$extra\r\n'; cat >&2" 2> "$reply"
if head -n 1 "$reply" | grep -q ' 200 '; then sed '1,/^\r*$/d' "$reply"; rm -f "$reply"; exit 0; fi
head -n 1 "$reply" >&2; rm -f "$reply"; exit 1
"#;

const INITTAB: &str = "::sysinit:/etc/init.d/rcS\n\
::respawn:/usr/sbin/dropbear -F -E -R -s -p 22\n\
::shutdown:/etc/init.d/rcK\n";

/// `/etc/init.d/rcK`, run by init on poweroff/reboot: leaves the clean-shutdown marker and makes
/// the file system read-only so nothing is left for the journal to replay.
const RCK: &str = "#!/bin/sh\n\
echo NIMBUS-SHUTDOWN > /dev/console\n\
date > /var/lib/nimbus/clean-shutdown\n\
sync\n\
mount -o remount,ro /\n";

const POWER_BUTTON: &str = "#!/bin/sh\n/sbin/poweroff\n";

/// Builds the image into `out` (kernel, initrd, disk.qcow2). `progress(percent, step)` is told
/// as each step starts.
pub fn build_busybox_image(
    tools: &crate::vm::Toolchain,
    out: &Path,
    progress: &mut dyn FnMut(u8, &str),
) -> Result<ImageFiles, VmError> {
    let dropbear = PathBuf::from("/usr/sbin/dropbear");
    if !dropbear.is_file() {
        return Err(VmError::Missing("/usr/sbin/dropbear not found (Debian package dropbear-bin)".into()));
    }
    let _ = std::fs::remove_dir_all(out);
    let root = out.join("rootfs");
    std::fs::create_dir_all(&root).map_err(|e| io_err(&root, e))?;
    progress(5, "collecting busybox and its applets");
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "etc/acpi/PWRF",
        "etc/dropbear",
        "dev",
        "proc",
        "sys",
        "run",
        "tmp",
    ] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| io_err(&root.join(d), e))?;
    }
    for d in ["root", "var/log", "var/lib/nimbus", "lib/modules"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| io_err(&root.join(d), e))?;
    }
    copy(&tools.busybox, &root.join("bin/busybox"))?;
    let applets = run(Command::new(&tools.busybox).arg("--list-full"))?;
    for a in applets.lines().map(str::trim).filter(|a| !a.is_empty() && *a != "bin/busybox") {
        let link = root.join(a);
        if link.exists() {
            continue;
        }
        let depth = a.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        std::os::unix::fs::symlink(&target, &link).map_err(|e| io_err(&link, e))?;
    }
    progress(20, "collecting dropbear and the libraries it links");
    copy(&dropbear, &root.join("usr/sbin/dropbear"))?;
    for lib in shared_libraries(&dropbear)? {
        let rel = lib.strip_prefix("/").unwrap_or(&lib);
        let dest = root.join(rel);
        if let Some(p) = dest.parent() {
            std::fs::create_dir_all(p).map_err(|e| io_err(p, e))?;
        }
        copy(&lib, &dest)?;
    }
    // Merged /usr: the loader is looked up as /lib64/ld-linux-x86-64.so.2.
    progress(35, "writing the boot configuration");
    let files: &[(&str, &str, u32)] = &[
        ("etc/init.d/rcS", RCS, 0o755),
        ("usr/lib/nimbus/instance-setup", INSTANCE_SETUP, 0o644),
        ("etc/inittab", INITTAB, 0o644),
        ("etc/init.d/rcK", RCK, 0o755),
        ("etc/acpi/PWRF/00000080", POWER_BUTTON, 0o755),
        ("usr/bin/nimbus-metadata", METADATA_CLIENT, 0o755),
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644),
        ("etc/group", "root:x:0:\n", 0o644),
        ("etc/shadow", "root:*:19000:0:99999:7:::\n", 0o600),
        ("etc/shells", "/bin/sh\n", 0o644),
        ("etc/hostname", "localhost\n", 0o644),
        (
            "etc/os-release",
            "NAME=\"Nimbus busybox\"\nID=nimbus-busybox\nPRETTY_NAME=\"Nimbus busybox (Debian packages)\"\n",
            0o644,
        ),
    ];
    write_files(&root, files)?;
    set_mode(&root.join("root"), 0o700)?;
    pack(tools, out, &root, DISK_MIB, [50, 70, 85], progress)
}

/// Writes `(path under root, text, mode)` files, making their directories.
fn write_files(root: &Path, files: &[(&str, &str, u32)]) -> Result<(), VmError> {
    for (name, text, mode) in files {
        let p = root.join(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
        }
        std::fs::write(&p, text).map_err(|e| io_err(&p, e))?;
        set_mode(&p, *mode)?;
    }
    Ok(())
}

/// The last steps of every image: `root` becomes an ext4 disk of `disk_mib` (`mke2fs -d`, no
/// mounting), compressed to qcow2; the initramfs and the host kernel join it. `at` are the
/// progress percentages of the three steps.
fn pack(
    tools: &crate::vm::Toolchain,
    out: &Path,
    root: &Path,
    disk_mib: u64,
    at: [u8; 3],
    progress: &mut dyn FnMut(u8, &str),
) -> Result<ImageFiles, VmError> {
    progress(at[0], "making the ext4 system disk");
    let raw = out.join("disk.raw");
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "nimbus-root", "-E", "root_owner=0:0", "-d"])
        .arg(root)
        .arg(&raw)
        .arg(format!("{disk_mib}M")))?;
    let _ = std::fs::remove_dir_all(root);
    progress(at[1], "compressing the disk to qcow2");
    let disk = out.join("disk.qcow2");
    run(Command::new("qemu-img").args(["convert", "-c", "-f", "raw", "-O", "qcow2"]).arg(&raw).arg(&disk))?;
    let _ = std::fs::remove_file(&raw);
    progress(at[2], "building the initramfs");
    let modules = guest_modules(&tools.kernel)?;
    let initrd = out.join("initrd");
    std::fs::write(&initrd, boot_initrd(&tools.busybox, &modules)?).map_err(|e| io_err(&initrd, e))?;
    let kernel = out.join("kernel");
    copy(&tools.kernel, &kernel)?;
    progress(100, "done");
    Ok(ImageFiles { kernel, initrd, disk })
}

fn copy(from: &Path, to: &Path) -> Result<(), VmError> {
    std::fs::copy(from, to).map(|_| ()).map_err(|e| io_err(from, e))
}

fn set_mode(p: &Path, mode: u32) -> Result<(), VmError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(|e| io_err(p, e))
}

/// The shared libraries `binary` loads (with the dynamic loader), as `ldd` resolves them.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, VmError> {
    let text = run(Command::new("ldd").arg(binary))?;
    let mut libs = vec![];
    for line in text.lines() {
        // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, rhs)) => rhs.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(p));
        }
    }
    Ok(libs)
}

/// Size of the Debian image's system disk.
pub const DEBIAN_DISK_MIB: u64 = 2048;

/// Packages on top of debootstrap's `minbase`: an init, the SSH server, and what nimbus-init uses.
const DEBIAN_PACKAGES: &str = "systemd-sysv,openssh-server,iproute2,curl,ca-certificates,netbase,acpid";

/// `/usr/local/sbin/nimbus-init` on the Debian image: network, fresh host keys, then
/// [`INSTANCE_SETUP`] as in the busybox image's rcS.
const DEBIAN_INIT: &str = r#"#!/bin/sh
arg() { sed -n "s/.*nimbus\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
ip link set lo up
ip link set eth0 up
ip addr replace "$(arg ip)" dev eth0
ip route replace default via "$(arg gw)"
# Host keys are made on the instance's first boot: the image carries none, so no two instances
# share them.
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A
. /usr/lib/nimbus/instance-setup
"#;

const DEBIAN_METADATA_CLIENT: &str = r#"#!/bin/sh
host=${NIMBUS_METADATA_HOST:-169.254.169.254}
if [ "$1" = "--token" ]; then
  exec curl -sf --max-time 5 -X PUT -H "X-aliyun-ecs-metadata-token-ttl-seconds: ${2:-21600}" "http://$host/latest/api/token"
fi
if [ -n "$NIMBUS_METADATA_TOKEN" ]; then
  exec curl -sf --max-time 5 -H "X-aliyun-ecs-metadata-token: $NIMBUS_METADATA_TOKEN" "http://$host/latest/$1"
fi
exec curl -sf --max-time 5 "http://$host/latest/$1"
"#;

const DEBIAN_INIT_UNIT: &str = "[Unit]\n\
Description=Nimbus instance setup from the metadata service (network, host keys, SSH key, user-data)\n\
Before=ssh.service\n\
After=local-fs.target\n\
\n\
[Service]\n\
Type=oneshot\n\
RemainAfterExit=yes\n\
ExecStart=/usr/local/sbin/nimbus-init\n\
StandardOutput=journal+console\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n";

const DEBIAN_READY_UNIT: &str = "[Unit]\n\
Description=Tell the host the instance is up\n\
After=nimbus-init.service ssh.service\n\
\n\
[Service]\n\
Type=oneshot\n\
ExecStart=/bin/sh -c 'echo \"NIMBUS-READY $(cat /run/nimbus-id)\" > /dev/console'\n\
\n\
[Install]\n\
WantedBy=multi-user.target\n";

/// The suite and mirror this host's apt uses (`/etc/os-release`, `/etc/apt/sources.list[.d]`), so
/// the image is built from the same Debian the host trusts.
pub fn host_debian_source() -> (String, String) {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let suite = release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|s| s.trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bookworm".into());
    let mut mirror = None;
    let deb822 = std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    for l in deb822.lines() {
        if let Some(u) = l.strip_prefix("URIs:").map(str::trim)
            && !u.contains("security")
        {
            mirror = Some(u.to_string());
            break;
        }
    }
    if mirror.is_none() {
        let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
        mirror = list.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some("deb")).then(|| f.find(|w| w.starts_with("http")).map(str::to_string)).flatten()
        });
    }
    (suite, mirror.unwrap_or_else(|| "http://deb.debian.org/debian".into()))
}

/// Builds a Debian image with debootstrap into `out`: minbase plus systemd and OpenSSH, the host
/// kernel and the same initramfs as the busybox image. Downloaded packages are kept in
/// `cache/debootstrap`, so a rebuild needs no network. No SSH host keys and no machine-id are
/// baked in: each instance makes its own at first boot.
pub fn build_debian_image(
    tools: &crate::vm::Toolchain,
    out: &Path,
    cache: &Path,
    progress: &mut dyn FnMut(u8, &str),
) -> Result<ImageFiles, VmError> {
    use std::io::BufRead;
    let debootstrap = ["/usr/sbin/debootstrap", "/sbin/debootstrap", "/usr/bin/debootstrap"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| VmError::Missing("debootstrap not found (Debian package debootstrap)".into()))?;
    let (suite, mirror) = host_debian_source();
    let _ = std::fs::remove_dir_all(out);
    let root = out.join("rootfs");
    let pkg_cache = cache.join("debootstrap");
    for d in [&root, &pkg_cache] {
        std::fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    }
    progress(2, &format!("debootstrap {suite} from {mirror}"));
    let mut child = Command::new(&debootstrap)
        .args(["--variant=minbase", &format!("--include={DEBIAN_PACKAGES}")])
        .arg(format!("--cache-dir={}", pkg_cache.display()))
        .arg(&suite)
        .arg(&root)
        .arg(&mirror)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| VmError::Missing(format!("debootstrap: {e}")))?;
    let mut tail: Vec<String> = vec![];
    if let Some(stdout) = child.stdout.take() {
        // debootstrap says one "I: <verb> <package>" line per step; about 650 for this selection.
        let mut n: u32 = 0;
        let mut last = 0u8;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            n += 1;
            let pct = (2 + n * 58 / 650).min(60) as u8;
            if pct != last {
                last = pct;
                progress(pct, &format!("debootstrap: {}", line.trim_start_matches("I: ").trim()));
            }
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
    }
    let done = child.wait_with_output().map_err(|e| VmError::Missing(format!("debootstrap: {e}")))?;
    if !done.status.success() {
        return Err(VmError::Missing(format!(
            "debootstrap failed ({}): {}\n{}",
            done.status,
            String::from_utf8_lossy(&done.stderr).trim(),
            tail.join("\n")
        )));
    }
    progress(62, "configuring the guest: nimbus-init, SSH, console");
    let files: &[(&str, &str, u32)] = &[
        ("usr/local/sbin/nimbus-init", DEBIAN_INIT, 0o755),
        ("usr/lib/nimbus/instance-setup", INSTANCE_SETUP, 0o644),
        ("usr/bin/nimbus-metadata", DEBIAN_METADATA_CLIENT, 0o755),
        ("etc/systemd/system/nimbus-init.service", DEBIAN_INIT_UNIT, 0o644),
        ("etc/systemd/system/nimbus-ready.service", DEBIAN_READY_UNIT, 0o644),
        ("etc/fstab", "LABEL=nimbus-root / ext4 defaults,errors=remount-ro 0 1\n", 0o644),
        // A graceful StopInstance presses the ACPI power button (no logind without udev here).
        ("etc/acpi/events/nimbus-power", "event=button/power.*\naction=/sbin/poweroff\n", 0o644),
        ("etc/hostname", "localhost\n", 0o644),
        // systemd makes a new one at first boot.
        ("etc/machine-id", "", 0o444),
    ];
    write_files(&root, files)?;
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).map_err(|e| io_err(&wants, e))?;
    for unit in ["nimbus-init.service", "nimbus-ready.service"] {
        let link = wants.join(unit);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("/etc/systemd/system/{unit}"), &link).map_err(|e| io_err(&link, e))?;
    }
    // What must differ per instance, or is only a download cache.
    let _ = std::fs::remove_file(root.join("var/lib/dbus/machine-id"));
    for dir in ["etc/ssh", "var/cache/apt", "var/lib/apt/lists"] {
        if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let drop = if dir == "etc/ssh" { name.starts_with("ssh_host_") } else { e.path().is_file() };
                if drop {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
    pack(tools, out, &root, DEBIAN_DISK_MIB, [70, 78, 95], progress)
}
