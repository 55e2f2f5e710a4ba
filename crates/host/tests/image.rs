//! The system image, booted for real: built from the host's packages, its disk kept as three qcow2
//! overlay replicas under QEMU's quorum driver, in a VPC namespace whose metadata service is a
//! busybox httpd serving files. The guest must configure its network, take its SSH key and run
//! its user-data, and answer SSH with that key.

use nimbus_host::image::{READY_MARKER, build_busybox_image};
use nimbus_host::net::NetDriver;
use nimbus_host::vm::{Accel, Toolchain, VmSpec, qmp_at, read_pid, start_detached};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn toolchain() -> Option<Toolchain> {
    let missing = match Toolchain::find() {
        Ok(t) if Path::new("/usr/sbin/dropbear").is_file() => return Some(t),
        Ok(_) => "dropbear not found (Debian package dropbear-bin)".to_string(),
        Err(e) => e.to_string(),
    };
    if std::env::var_os("CI").is_some() {
        panic!("CI must have the VM toolchain: {missing}");
    }
    eprintln!("SKIPPED: {missing}");
    None
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_system_image_boots_from_quorum_replicas_and_answers_ssh_with_its_key() {
    let Some(tools) = toolchain() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let t0 = Instant::now();
    let mut steps = vec![];
    let img = build_busybox_image(&tools, &d.join("image"), &mut |pct, step| steps.push(format!("{pct}% {step}")))
        .expect("image builds");
    eprintln!("image built in {:?}: {steps:?}", t0.elapsed());
    assert_eq!(steps.last().map(String::as_str), Some("100% done"));
    let size = std::fs::metadata(&img.disk).expect("disk").len();
    assert!(size < 32 << 20, "compressed disk is small: {size}");

    // Three overlay replicas of the image disk.
    let mut replicas = vec![];
    for i in 0..3 {
        let r = d.join(format!("r{i}/sys.qcow2"));
        std::fs::create_dir_all(r.parent().expect("parent")).expect("mkdir");
        sh(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"]).arg(&img.disk).arg(&r));
        replicas.push(r);
    }

    // Network: a VPC namespace with a vSwitch, and a metadata "service" of static files.
    let net = NetDriver::new(&format!("it{}", std::process::id() % 100000));
    let vpc = "vpc-imagetest000001";
    let vsw = "vsw-imagetest000001";
    net.ensure_vpc(vpc).expect("vpc");
    net.ensure_vswitch(vpc, vsw, "198.18.40.0/24".parse().expect("cidr")).expect("vswitch");
    let ns = net.namespace(vpc);
    let md = d.join("md/latest");
    std::fs::create_dir_all(md.join("meta-data/public-keys/0")).expect("md dirs");
    let key = d.join("id_ed25519");
    sh(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key));
    std::fs::copy(d.join("id_ed25519.pub"), md.join("meta-data/public-keys/0/openssh-key")).expect("key");
    std::fs::write(md.join("meta-data/instance-id"), "i-imagetest").expect("id");
    std::fs::write(md.join("meta-data/hostname"), "imagetest").expect("hostname");
    std::fs::write(md.join("user-data"), "#!/bin/sh\necho from-user-data > /root/ud.txt\n").expect("ud");
    sh(Command::new("ip").args(["-n", &ns, "addr", "replace", "169.254.169.254/32", "dev", "lo"]));
    let httpd = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            &tools.busybox.display().to_string(),
            "httpd",
            "-f",
            "-p",
            "169.254.169.254:80",
            "-h",
        ])
        .arg(d.join("md"))
        .spawn()
        .expect("httpd");
    let tap = "tap-imagetest";
    net.attach_tap(vpc, vsw, tap).expect("tap");
    net.bind_port(vpc, tap, "52:54:00:40:00:0a", "198.18.40.10".parse().expect("ip")).expect("bind");

    let spec = VmSpec {
        name: "imagetest".into(),
        accel: Accel::Tcg,
        vcpus: 1,
        memory_mib: 192,
        kernel: img.kernel.clone(),
        initrd: img.initrd.clone(),
        cmdline: "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000 nimbus.ip=198.18.40.10/24 nimbus.gw=198.18.40.1"
            .into(),
        dir: d.join("vm"),
        netns: Some(ns.clone()),
        nics: vec![(tap.into(), "52:54:00:40:00:0a".into())],
        disk: replicas.clone(),
    };
    let t1 = Instant::now();
    let pid = start_detached(&tools.qemu, &spec).expect("QEMU starts");
    let serial = spec.dir.join("serial.log");
    let ready = loop {
        let log = std::fs::read_to_string(&serial).unwrap_or_default();
        if log.contains(READY_MARKER) {
            break true;
        }
        if t1.elapsed() > Duration::from_secs(120) || read_pid(&spec.dir.join("qemu.pid")).is_none() {
            eprintln!("console:\n{log}");
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let booted = t1.elapsed();
    let ssh = |cmd: &str| {
        Command::new("ip")
            .args(["netns", "exec", &ns, "ssh", "-i"])
            .arg(&key)
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=10", "root@198.18.40.10", cmd])
            .output()
            .expect("ssh runs")
    };
    let result = ready.then(|| {
        let mut out = ssh("hostname; cat /root/ud.txt");
        for _ in 0..20 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
            out = ssh("hostname; cat /root/ud.txt");
        }
        out
    });
    // A reset (RebootInstance) boots again from the same disk, and SSH comes back.
    let before = std::fs::read_to_string(&serial).unwrap_or_default().matches(READY_MARKER).count();
    let _ = qmp_at(&spec.dir.join("qmp.sock"), "system_reset", serde_json::json!({}));
    let t2 = Instant::now();
    while std::fs::read_to_string(&serial).unwrap_or_default().matches(READY_MARKER).count() == before
        && t2.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut after_reset = ssh("cat /root/ud.txt");
    for _ in 0..20 {
        if after_reset.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        after_reset = ssh("cat /root/ud.txt");
    }
    let status = qmp_at(&spec.dir.join("qmp.sock"), "query-status", serde_json::json!({}));
    let _ = qmp_at(&spec.dir.join("qmp.sock"), "quit", serde_json::json!({}));
    let mut httpd = httpd;
    let _ = httpd.kill();
    let _ = httpd.wait();
    let _ = net.remove_vpc(vpc);
    assert!(ready, "the guest reached {READY_MARKER} (pid {pid})");
    eprintln!("boot to ready (TCG): {booted:?}");
    eprintln!("console:\n{}", std::fs::read_to_string(&serial).unwrap_or_default());
    let out = result.expect("ssh ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ssh: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["imagetest", "from-user-data"]);
    assert_eq!(status.expect("QMP answers")["status"], "running");
    assert!(after_reset.status.success(), "SSH after a reset: {}", String::from_utf8_lossy(&after_reset.stderr));
    assert_eq!(String::from_utf8_lossy(&after_reset.stdout).trim(), "from-user-data");
    // All three replicas took the guest's writes.
    for r in &replicas {
        assert!(
            std::fs::metadata(r).expect("replica").len() > 200 << 10,
            "{} grew with the guest's writes",
            r.display()
        );
    }
}
