//! A real VM: the accelerator probe, then a VM that boots to its init under the chosen
//! accelerator, answers QMP and is stopped. Skipped with the reason when QEMU, a kernel or
//! busybox is missing, except under CI, where the test command installs them.

use nimbus_host::vm::{Accel, Toolchain, Vm, VmSpec, initramfs, probe};
use std::time::Duration;

#[test]
fn the_probe_picks_an_accelerator_and_a_vm_boots_under_it() {
    let tools = match Toolchain::find() {
        Ok(t) => t,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: {e}");
            return;
        }
        Err(e) => panic!("CI must have the VM toolchain: {e}"),
    };
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
