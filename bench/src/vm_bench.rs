//! VM benchmark: prints the accelerator the probe chose (and why), the time from starting QEMU
//! to the guest's init (median of 5) and QEMU's memory overhead (RSS minus guest RAM). Asserts
//! nothing. Instances (RunInstances → SSH) are not built yet; this is the boot floor under them.

use anyhow::{Context, Result};
use nimbus_host::vm::{Toolchain, Vm, VmSpec, initramfs, probe};
use std::time::Duration;

fn main() -> Result<()> {
    let tools = Toolchain::find().context("the VM toolchain")?;
    let dir = tempfile::tempdir()?;
    let p = probe(&tools, dir.path(), Duration::from_secs(30))?;
    println!(
        "accelerator: {}{}",
        p.accel.as_str(),
        p.kvm_unusable
            .as_ref()
            .map(|w| format!(" (KVM unusable: {})", w.lines().next().unwrap_or(w)))
            .unwrap_or_default()
    );
    let initrd = dir.path().join("bench.cpio");
    let script = "#!/bin/busybox sh\n/bin/busybox echo BENCH-UP\nwhile true; do /bin/busybox sleep 1; done\n";
    std::fs::write(&initrd, initramfs(&tools.busybox, script)?)?;
    let guest_mib = 256u64;
    let (mut boots, mut overheads) = (vec![], vec![]);
    for i in 0..5 {
        let mut vm = Vm::start(
            &tools.qemu,
            VmSpec {
                name: format!("bench-{i}"),
                accel: p.accel,
                vcpus: 1,
                memory_mib: guest_mib as u32,
                kernel: tools.kernel.clone(),
                initrd: initrd.clone(),
                cmdline: "console=ttyS0 panic=-1 quiet tsc_early_khz=2000000".into(),
                dir: dir.path().join(format!("vm-{i}")),
                netns: None,
                nics: vec![],
                disk: vec![],
            },
        )?;
        boots.push(vm.wait_for_console("BENCH-UP", Duration::from_secs(120))?.as_secs_f64());
        std::thread::sleep(Duration::from_millis(500));
        if let Some(rss) = vm.rss_kib() {
            overheads.push(rss as f64 / 1024.0 - guest_mib as f64);
        }
        vm.kill();
    }
    boots.sort_by(f64::total_cmp);
    overheads.sort_by(f64::total_cmp);
    println!("microvm, 1 vCPU, {guest_mib} MiB, kernel {}:", tools.kernel.display());
    println!("  QEMU start -> guest init   median {:.2} s  (min {:.2}, max {:.2})", boots[2], boots[0], boots[4]);
    let o = overheads.get(overheads.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "  QEMU RSS                   median {:.0} MiB for a {guest_mib} MiB guest (RSS - guest RAM = {o:.0} MiB; \
         negative while the guest has not touched all its RAM)",
        o + guest_mib as f64
    );
    Ok(())
}
