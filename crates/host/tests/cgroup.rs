//! Per-instance limits through the host's cgroups (v1 here, v2 elsewhere): a process started by
//! `Cgroups::wrap` runs inside its groups from its first instruction, is killed by the kernel
//! when it goes over its memory, and is held back by its CPU quota.

use nimbus_host::cgroup::{Cgroups, Limits};
use std::process::Command;

fn groups(tag: &str) -> Option<Cgroups> {
    match Cgroups::detect(&format!("nimbus-test-{}-{tag}", std::process::id())) {
        Ok(c) => Some(c),
        Err(why) => {
            // Says why instead of passing silently; CI machines have v1 memory and cpu.
            eprintln!("SKIPPED: this host has no usable cgroups: {why}");
            None
        }
    }
}

fn run_in(c: &Cgroups, name: &str, limits: Limits, script: &str) -> std::process::Output {
    let procs = c.create(name, limits).expect("create the groups");
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script]);
    Cgroups::wrap(&cmd, &procs).output().expect("run")
}

#[test]
fn a_wrapped_process_starts_inside_its_groups_with_the_limits_written() {
    let Some(c) = groups("join") else { return };
    let limits = Limits { memory_bytes: 96 << 20, cpus: 1 };
    let out = run_in(&c, "i-join", limits, "cat /proc/self/cgroup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let inside = text.lines().filter(|l| l.ends_with("/i-join")).count();
    assert!(inside >= 1, "not inside the instance's groups:\n{text}");
    assert_eq!(c.limits_of("i-join"), Some((96 << 20, 100_000)));
    c.remove("i-join");
}

#[test]
fn going_over_the_memory_limit_is_killed_and_staying_under_is_not() {
    let Some(c) = groups("mem") else { return };
    let limits = Limits { memory_bytes: 64 << 20, cpus: 1 };
    // Python touches every byte of the string it builds, so the pages are really charged.
    let small = run_in(&c, "i-small", limits, "python3 -c \"x = b'x' * (16 << 20); print(len(x))\"");
    assert!(small.status.success(), "16 MiB under a 64 MiB limit failed: {small:?}");
    assert!(!c.oom_killed("i-small"));
    let big = run_in(&c, "i-big", limits, "exec python3 -c \"x = b'x' * (256 << 20); print(len(x))\"");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(big.status.signal(), Some(9), "256 MiB under a 64 MiB limit was not killed: {big:?}");
    assert!(c.oom_killed("i-big"), "the kernel did not record an OOM kill");
    c.remove("i-small");
    c.remove("i-big");
}

#[test]
fn two_busy_processes_under_a_one_cpu_quota_are_throttled() {
    let Some(c) = groups("cpu") else { return };
    let limits = Limits { memory_bytes: 64 << 20, cpus: 1 };
    let busy = "timeout 1 sh -c 'while :; do :; done'";
    let out = run_in(&c, "i-cpu", limits, &format!("{busy} & {busy} & wait"));
    assert!(out.status.code().is_some(), "{out:?}");
    let throttled = c.throttled("i-cpu").expect("cpu.stat");
    assert!(throttled > 0, "two busy loops under a 1-CPU quota were never throttled");
    c.remove("i-cpu");
}
