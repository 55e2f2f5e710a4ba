//! A real VM: the accelerator probe, then a VM that boots to its init under the chosen
//! accelerator, answers QMP and is stopped. Skipped with the reason when QEMU, a kernel or
//! busybox is missing, except under CI, where the test command installs them.

use nimbus_host::net::NetDriver;
use nimbus_host::vm::{
    Accel, Toolchain, Vm, VmSpec, initramfs, initramfs_with, insmod_lines, probe, virtio_net_modules,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// The host's VM toolchain, or `None` (the test skips, saying why) — never under CI, where the
/// test command installs it.
fn toolchain() -> Option<Toolchain> {
    match Toolchain::find() {
        Ok(t) => Some(t),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: {e}");
            None
        }
        Err(e) => panic!("CI must have the VM toolchain: {e}"),
    }
}

/// Where a test VM sits: its VPC and vSwitch, its address and MAC.
struct Port<'a> {
    vpc: &'a str,
    vswitch: &'a str,
    ip: &'a str,
    mac: &'a str,
    /// Bind the port to its address (anti-spoofing).
    bind: bool,
    /// Default route, if any.
    gateway: Option<&'a str>,
}

/// Boots a busybox VM on `port` (TCG) that configures eth0, prints `NET-UP`, then runs `then`.
fn boot(tools: &Toolchain, net: &NetDriver, dir: &Path, name: &str, port: &Port, then: &str) -> Vm {
    let modules = virtio_net_modules(&tools.kernel).expect("modules");
    let tap = format!("tap-{name}");
    net.attach_tap(port.vpc, port.vswitch, &tap).expect("tap");
    if port.bind {
        net.bind_port(port.vpc, &tap, port.mac, port.ip.parse().expect("ip")).expect("anti-spoofing");
    }
    let route = port.gateway.map(|g| format!("/bin/busybox ip route add default via {g}\n")).unwrap_or_default();
    let script = format!(
        "#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n/bin/busybox mount -t sysfs sys /sys\n{}\
         /bin/busybox ip link set lo up\n/bin/busybox ip link set eth0 up\n/bin/busybox ip addr add {}/24 dev eth0\n\
         {route}/bin/busybox echo NET-UP\n{then}\nwhile true; do /bin/busybox sleep 1; done\n",
        insmod_lines(&modules),
        port.ip
    );
    let initrd = dir.join(format!("{name}.cpio"));
    std::fs::write(&initrd, initramfs_with(&tools.busybox, &script, &modules).expect("initramfs")).expect("write");
    Vm::start(
        &tools.qemu,
        VmSpec {
            name: name.into(),
            accel: Accel::Tcg,
            vcpus: 1,
            memory_mib: 160,
            kernel: tools.kernel.clone(),
            initrd,
            cmdline: "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000".into(),
            dir: dir.join(name),
            netns: Some(net.namespace(port.vpc)),
            nics: vec![(tap, port.mac.into())],
            disk: vec![],
        },
    )
    .expect("start")
}

#[test]
fn the_probe_picks_an_accelerator_and_a_vm_boots_under_it() {
    let Some(tools) = toolchain() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let p = probe(&tools, dir.path(), Duration::from_secs(30)).expect("some accelerator boots the probe VM");
    eprintln!("accelerator {} (kvm: {:?}); probe boot {:?}", p.accel.as_str(), p.kvm_unusable, p.boot);
    if p.accel == Accel::Tcg {
        assert!(p.kvm_unusable.is_some(), "TCG is chosen only with a reason");
    }
    let initrd = dir.path().join("vm.cpio");
    let script = "#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\n/bin/busybox echo \"cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)\"\n/bin/busybox echo VM-UP\nwhile true; do /bin/busybox sleep 1; done\n";
    std::fs::write(&initrd, initramfs(&tools.busybox, script).expect("initramfs")).expect("write");
    let mut vm = Vm::start(
        &tools.qemu,
        VmSpec {
            name: "nimbus-test".into(),
            accel: p.accel,
            vcpus: 2,
            memory_mib: 192,
            kernel: tools.kernel.clone(),
            initrd,
            cmdline: "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000".into(),
            dir: dir.path().join("vm"),
            netns: None,
            nics: vec![],
            disk: vec![],
        },
    )
    .expect("start");
    let boot = vm.wait_for_console("VM-UP", Duration::from_secs(60)).expect("boots to init");
    let console = std::fs::read_to_string(vm.serial_log()).expect("serial log");
    assert!(console.contains("cpus=2"), "the guest sees the vCPUs it was given: {console}");
    let status = vm.qmp("query-status", serde_json::json!({})).expect("qmp");
    assert_eq!(status["status"], "running");
    eprintln!("VM booted to init in {boot:?}; QEMU RSS {:?} KiB", vm.rss_kib());
    vm.kill();
}

/// Two VMs on one vSwitch of a VPC reach each other and their gateway; a VM in another VPC with
/// the very same address plan reaches neither (nothing connects two VPC namespaces).
#[test]
fn vms_on_a_vswitch_talk_and_another_vpc_cannot_reach_them() {
    let Some(tools) = toolchain() else { return };
    let net = NetDriver::new(&format!("vt{}", std::process::id() % 100_000));
    let (vpc_a, vpc_b) = ("vpc-testaaaaaaaaaaaaa1", "vpc-testbbbbbbbbbbbbb2");
    let (sw_a, sw_b) = ("vsw-testaaaaaaaaaaaaa1", "vsw-testbbbbbbbbbbbbb2");
    let block: ipnet::Ipv4Net = "198.18.10.0/24".parse().expect("cidr");
    for (vpc, sw) in [(vpc_a, sw_a), (vpc_b, sw_b)] {
        net.ensure_vpc(vpc).expect("vpc");
        net.ensure_vswitch(vpc, sw, block).expect("vswitch");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = |vpc, vswitch, ip, mac| Port { vpc, vswitch, ip, mac, bind: false, gateway: Some("198.18.10.1") };
    let pinger = |target: &str| {
        format!(
            "for i in 1 2 3 4 5 6 7 8 9 10; do if /bin/busybox ping -c 1 -W 1 {target} >/dev/null 2>&1; then \
             /bin/busybox echo PING-OK-{target}; break; fi; done; /bin/busybox echo PING-DONE"
        )
    };
    let mut server =
        boot(&tools, &net, dir.path(), "server", &port(vpc_a, sw_a, "198.18.10.10", "52:54:00:00:10:10"), "");
    server.wait_for_console("NET-UP", Duration::from_secs(90)).expect("server up");
    let both = format!("{}\n{}", pinger("198.18.10.1"), pinger("198.18.10.10"));
    let mut neighbour =
        boot(&tools, &net, dir.path(), "neighbour", &port(vpc_a, sw_a, "198.18.10.11", "52:54:00:00:10:11"), &both);
    let mut stranger = boot(
        &tools,
        &net,
        dir.path(),
        "stranger",
        &port(vpc_b, sw_b, "198.18.10.12", "52:54:00:00:10:12"),
        &pinger("198.18.10.10"),
    );
    for vm in [&mut neighbour, &mut stranger] {
        vm.wait_for_console("PING-DONE", Duration::from_secs(120)).expect("pings finish");
    }
    let n = std::fs::read_to_string(neighbour.serial_log()).expect("log");
    let s = std::fs::read_to_string(stranger.serial_log()).expect("log");
    for vm in [server, neighbour, stranger] {
        vm.kill();
    }
    for vpc in [vpc_a, vpc_b] {
        net.remove_vpc(vpc).expect("cleanup");
    }
    assert!(n.contains("PING-OK-198.18.10.1"), "a VM reaches its gateway:\n{n}");
    assert!(n.contains("PING-OK-198.18.10.10"), "VMs on one vSwitch reach each other:\n{n}");
    assert!(!s.contains("PING-OK"), "a VM in another VPC reaches nothing of this one:\n{s}");
}

/// A VM bound to its address cannot send from another: its legitimate pings arrive, the same
/// pings from a spoofed source are dropped at its port (the target counts only the first).
#[test]
fn a_spoofed_source_address_never_arrives() {
    let Some(tools) = toolchain() else { return };
    let net = NetDriver::new(&format!("vs{}", std::process::id() % 100_000));
    let (vpc, sw) = ("vpc-spoofaaaaaaaaaaaaa", "vsw-spoofaaaaaaaaaaaaa");
    net.ensure_vpc(vpc).expect("vpc");
    net.ensure_vswitch(vpc, sw, "198.18.20.0/24".parse().expect("cidr")).expect("vswitch");
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |name: &str, ip: &str, mac: &str, then: &str| {
        boot(&tools, &net, dir.path(), name, &Port { vpc, vswitch: sw, ip, mac, bind: true, gateway: None }, then)
    };
    // The target prints its ICMP counters every second.
    let counters = "while true; do /bin/busybox echo \"SNMP $(/bin/busybox grep '^Icmp:' /proc/net/snmp | /bin/busybox tail -1)\"; /bin/busybox sleep 1; done";
    let mut target = start("target", "198.18.20.10", "52:54:00:00:20:10", counters);
    target.wait_for_console("NET-UP", Duration::from_secs(90)).expect("target up");
    let spoof = "/bin/busybox ping -c 3 -W 2 198.18.20.10 >/dev/null 2>&1 && /bin/busybox echo LEGIT-OK\n\
                 /bin/busybox ip addr add 198.18.20.99/24 dev eth0\n\
                 /bin/busybox ping -c 3 -W 1 -I 198.18.20.99 198.18.20.10 >/dev/null 2>&1\n/bin/busybox echo SPOOF-DONE";
    let mut spoofer = start("spoofer", "198.18.20.11", "52:54:00:00:20:11", spoof);
    spoofer.wait_for_console("SPOOF-DONE", Duration::from_secs(120)).expect("spoofer ran");
    // Two fresh counter lines from the target after the spoofer is done (not a fixed sleep: under
    // TCG on a busy host a second of guest time can take much longer).
    let counter_lines = || {
        std::fs::read_to_string(target.serial_log())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("SNMP Icmp:"))
            .count()
    };
    let (seen, deadline) = (counter_lines(), Instant::now() + Duration::from_secs(60));
    while counter_lines() < seen + 2 {
        assert!(Instant::now() < deadline, "the target printed no counters for 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(target.serial_log()).expect("log");
    let spoofer_log = std::fs::read_to_string(spoofer.serial_log()).expect("log");
    for vm in [target, spoofer] {
        vm.kill();
    }
    net.remove_vpc(vpc).expect("cleanup");
    assert!(spoofer_log.contains("LEGIT-OK"), "legitimate traffic flows:\n{spoofer_log}");
    // `Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos …`
    let in_echos: u64 = log
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("SNMP Icmp:"))
        .and_then(|v| v.split_whitespace().nth(8))
        .and_then(|n| n.parse().ok())
        .expect("counters on the target's console");
    assert_eq!(in_echos, 3, "only the 3 legitimate echo requests arrived, none of the 3 spoofed ones:\n{log}");
}

/// Security groups on real traffic: a rule lets the client ping the server and the replies come
/// back although nothing allows them into the client (stateful); the server cannot start a
/// conversation with the client; revoking the rule cuts the client off.
#[test]
fn security_groups_are_stateful_and_revoking_a_rule_cuts_traffic() {
    use nimbus_host::net::{PortPolicy, SgRule};
    let Some(tools) = toolchain() else { return };
    let net = NetDriver::new(&format!("sg{}", std::process::id() % 100_000));
    let (vpc, sw) = ("vpc-sgtestaaaaaaaaaaaa", "vsw-sgtestaaaaaaaaaaaa");
    net.ensure_vpc(vpc).expect("vpc");
    net.ensure_vswitch(vpc, sw, "198.18.40.0/24".parse().expect("cidr")).expect("vswitch");
    let (server_ip, client_ip) = ("198.18.40.10", "198.18.40.11");
    let allow_client = |allowed: bool| {
        let rules = if allowed {
            vec![SgRule {
                ingress: true,
                protocol: "icmp".into(),
                ports: None,
                peer: format!("{client_ip}/32").parse().expect("cidr"),
                accept: true,
                priority: 1,
            }]
        } else {
            vec![]
        };
        net.apply_security(
            vpc,
            &[
                PortPolicy { ip: server_ip.parse().expect("ip"), rules },
                PortPolicy { ip: client_ip.parse().expect("ip"), rules: vec![] },
            ],
        )
        .expect("apply");
    };
    allow_client(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let looped = |tag: &str, target: &str| {
        format!(
            "i=0; while true; do i=$((i+1)); if /bin/busybox ping -c 1 -W 1 {target} >/dev/null 2>&1; then \
             /bin/busybox echo \"{tag}-OK $i\"; else /bin/busybox echo \"{tag}-FAIL $i\"; fi; /bin/busybox sleep 1; done"
        )
    };
    let start = |name: &str, ip: &str, mac: &str, then: &str| {
        boot(&tools, &net, dir.path(), name, &Port { vpc, vswitch: sw, ip, mac, bind: true, gateway: None }, then)
    };
    let mut server = start("server", server_ip, "52:54:00:00:40:10", &looped("S", client_ip));
    let mut client = start("client", client_ip, "52:54:00:00:40:11", &looped("C", server_ip));
    for vm in [&mut server, &mut client] {
        vm.wait_for_console("NET-UP", Duration::from_secs(90)).expect("up");
    }
    let lines = |vm: &Vm, tag: &str| -> Vec<bool> {
        std::fs::read_to_string(vm.serial_log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix(&format!("{tag}-")))
            .map(|l| l.starts_with("OK"))
            .collect()
    };
    let wait = |vm: &Vm, tag: &str, want: bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let l = lines(vm, tag);
            if l.len() >= 2 && l[l.len() - 2..].iter().all(|&ok| ok == want) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{tag} never settled on {want}: {l:?}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait(&client, "C", true);
    assert!(lines(&server, "S").iter().all(|ok| !ok), "the server cannot open a conversation with the client");
    allow_client(false);
    let before = lines(&client, "C").len();
    wait(&client, "C", false);
    assert!(lines(&client, "C").len() > before, "new pings ran after the revoke");
    for vm in [server, client] {
        vm.kill();
    }
    net.remove_vpc(vpc).expect("cleanup");
}
