//! Per-instance resource limits with Linux cgroups, v1 or v2, whichever this host can enforce.
//!
//! Hosts differ: a pure cgroup v2 host (most current distributions) has one hierarchy with the
//! `memory` and `cpu` controllers; a hybrid host (like the CI machines) mounts v2 without
//! controllers and enforces limits through v1's `memory` and `cpu` hierarchies. [`Cgroups::detect`]
//! picks what works, from `/proc/self/mountinfo` and `/proc/self/cgroup`, and says why when
//! nothing does (then instances run bounded only by `-smp`/`-m`, and the agent logs it).
//!
//! Each instance gets a group `<base>/<group>/<name>` per hierarchy, where `<base>` is this
//! process's own group, so the instances stay inside whatever the host put Nimbus in. A process
//! joins its groups before it `exec`s QEMU (see [`Cgroups::wrap`]), so every byte QEMU ever
//! allocates is charged to the instance. Written by hand: the crates that exist (`cgroups-rs`)
//! are v1-or-v2 libraries bigger than these few files, and the wrapping shell keeps us free of
//! `unsafe` `pre_exec` hooks.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// CFS period for CPU quotas (100 ms, the kernel's default).
const PERIOD_US: u64 = 100_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Layout {
    /// v1: the directories of this process's groups in the `memory` and `cpu` hierarchies.
    V1 { memory: PathBuf, cpu: PathBuf },
    /// v2: the directory under which instance groups are made (its `memory` and `cpu`
    /// controllers are enabled for children).
    V2 { base: PathBuf },
}

/// What an instance may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub memory_bytes: u64,
    /// CPU time per period, in CPUs (1 = one full core).
    pub cpus: u32,
}

#[derive(Clone, Debug)]
pub struct Cgroups {
    layout: Layout,
    /// The parent group of all instances of this agent (e.g. `nimbus-<prefix>`).
    group: String,
}

/// A mounted cgroup hierarchy: (filesystem type, mount point, super options).
fn mounts() -> Vec<(String, PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            // <id> <parent> <maj:min> <root> <mount point> <opts> [optional…] - <fstype> <source> <super opts>
            let (left, right) = l.split_once(" - ")?;
            let point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let superopts = r.nth(1).unwrap_or_default();
            fstype.starts_with("cgroup").then(|| (fstype.to_string(), PathBuf::from(point), superopts.to_string()))
        })
        .collect()
}

/// This process's group path in the v1 hierarchy holding `controller`, or in v2 (`""`).
fn own_path(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let hit = if controller.is_empty() { ctrls.is_empty() } else { ctrls.split(',').any(|c| c == controller) };
        hit.then(|| path.trim_start_matches('/').to_string())
    })
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("writing {value:?} to {}: {e}", path.display())))
}

impl Cgroups {
    /// The layout this host enforces limits through, or why there is none.
    pub fn detect(group: &str) -> Result<Cgroups, String> {
        let mounts = mounts();
        let mut why = vec![];
        // v2 first, where it has the controllers we need.
        if let Some((_, point, _)) = mounts.iter().find(|(t, _, _)| t == "cgroup2") {
            let controllers = std::fs::read_to_string(point.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            if has("memory") && has("cpu") {
                let own = point.join(own_path("").unwrap_or_default());
                return Ok(Cgroups { layout: Layout::V2 { base: own }, group: group.to_string() });
            }
            why.push(format!(
                "cgroup v2 at {} has no memory/cpu controllers ({:?})",
                point.display(),
                controllers.trim()
            ));
        } else {
            why.push("no cgroup v2 mount".to_string());
        }
        let v1 = |c: &str| {
            let (_, point, _) = mounts.iter().find(|(t, _, o)| t == "cgroup" && o.split(',').any(|x| x == c))?;
            Some(point.join(own_path(c)?))
        };
        match (v1("memory"), v1("cpu")) {
            (Some(memory), Some(cpu)) => Ok(Cgroups { layout: Layout::V1 { memory, cpu }, group: group.to_string() }),
            _ => {
                why.push("no cgroup v1 memory and cpu hierarchies".to_string());
                Err(why.join("; "))
            }
        }
    }

    /// A layout given explicitly (tests; hosts whose groups live elsewhere).
    pub fn with_layout(layout: Layout, group: &str) -> Cgroups {
        Cgroups { layout, group: group.to_string() }
    }

    /// `v1 (memory, cpu)` or `v2`, for logs and `--help`.
    pub fn describe(&self) -> String {
        match &self.layout {
            Layout::V1 { memory, cpu } => {
                format!("cgroup v1 (memory at {}, cpu at {})", memory.display(), cpu.display())
            }
            Layout::V2 { base } => format!("cgroup v2 at {}", base.display()),
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The directories of instance `name`'s groups.
    pub fn dirs(&self, name: &str) -> Vec<PathBuf> {
        match &self.layout {
            Layout::V1 { memory, cpu } => vec![memory.join(&self.group).join(name), cpu.join(&self.group).join(name)],
            Layout::V2 { base } => vec![base.join(&self.group).join(name)],
        }
    }

    /// Makes instance `name`'s groups with `limits` (idempotent: limits are rewritten); returns
    /// the `cgroup.procs` files a process writes itself into to join them.
    pub fn create(&self, name: &str, limits: Limits) -> io::Result<Vec<PathBuf>> {
        let quota = u64::from(limits.cpus.max(1)) * PERIOD_US;
        match &self.layout {
            Layout::V1 { memory, cpu } => {
                let (m, c) = (memory.join(&self.group).join(name), cpu.join(&self.group).join(name));
                std::fs::create_dir_all(&m)?;
                std::fs::create_dir_all(&c)?;
                write(&m.join("memory.limit_in_bytes"), &limits.memory_bytes.to_string())?;
                write(&c.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&c.join("cpu.cfs_quota_us"), &quota.to_string())?;
                write(&c.join("cpu.shares"), &(1024 * u64::from(limits.cpus.max(1))).to_string())?;
                Ok(vec![m.join("cgroup.procs"), c.join("cgroup.procs")])
            }
            Layout::V2 { base } => {
                let parent = base.join(&self.group);
                std::fs::create_dir_all(&parent)?;
                // Controllers must be enabled on every level between the base and the instance.
                for dir in [base.as_path(), parent.as_path()] {
                    write(&dir.join("cgroup.subtree_control"), "+memory +cpu")?;
                }
                let g = parent.join(name);
                std::fs::create_dir_all(&g)?;
                write(&g.join("memory.max"), &limits.memory_bytes.to_string())?;
                let _ = write(&g.join("memory.swap.max"), "0"); // absent without swap accounting
                write(&g.join("cpu.max"), &format!("{quota} {PERIOD_US}"))?;
                write(&g.join("cpu.weight"), &(100 * u64::from(limits.cpus.max(1))).min(10_000).to_string())?;
                Ok(vec![g.join("cgroup.procs")])
            }
        }
    }

    /// What the kernel enforces for `name` now: (memory limit in bytes, CPU quota µs per period).
    pub fn limits_of(&self, name: &str) -> Option<(u64, u64)> {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
        let dirs = self.dirs(name);
        match &self.layout {
            Layout::V1 { .. } => Some((
                read(dirs[0].join("memory.limit_in_bytes"))?.parse().ok()?,
                read(dirs[1].join("cpu.cfs_quota_us"))?.parse().ok()?,
            )),
            Layout::V2 { .. } => Some((
                read(dirs[0].join("memory.max"))?.parse().ok()?,
                read(dirs[0].join("cpu.max"))?.split_whitespace().next()?.parse().ok()?,
            )),
        }
    }

    /// Times the group's processes were held back by their CPU quota (`nr_throttled`).
    pub fn throttled(&self, name: &str) -> Option<u64> {
        let dir = self.dirs(name).pop()?; // the cpu group (v1) or the only group (v2)
        let stat = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
        stat.lines().find_map(|l| l.strip_prefix("nr_throttled ")).and_then(|v| v.trim().parse().ok())
    }

    /// Whether the kernel killed a process of the group for exceeding its memory limit.
    pub fn oom_killed(&self, name: &str) -> bool {
        let dir = &self.dirs(name)[0];
        let file = match &self.layout {
            Layout::V1 { .. } => "memory.oom_control",
            Layout::V2 { .. } => "memory.events",
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    }

    /// Removes instance `name`'s groups (they must have no processes left).
    pub fn remove(&self, name: &str) {
        for d in self.dirs(name) {
            let _ = std::fs::remove_dir(&d);
            // The agent's parent group goes too once it holds no instance (rmdir refuses otherwise).
            if let Some(parent) = d.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }

    /// `cmd`, made to join the groups behind `procs` before it runs: a shell writes its own pid
    /// into each `cgroup.procs` and then `exec`s the command, so the command and every process
    /// it forks (QEMU daemonizes) start inside the groups.
    pub fn wrap(cmd: &Command, procs: &[PathBuf]) -> Command {
        const JOIN: &str = r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 97; shift; done; shift; exec "$@""#;
        let mut w = Command::new("/bin/sh");
        w.arg("-c")
            .arg(JOIN)
            .arg("nimbus-cgroup-join")
            .args(procs)
            .arg("--")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            w.current_dir(d);
        }
        w
    }
}

/// The memory an instance's QEMU may use: the guest's RAM plus room for QEMU itself (device
/// models, block caches for three replicas, and TCG's translation cache, bounded by
/// `tb-size` in [`crate::vm`]).
pub fn instance_memory_bytes(guest_mib: u32) -> u64 {
    (u64::from(guest_mib) + 256) * 1024 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The v2 files an instance's limits become, written into a plain directory standing in for
    /// the cgroup2 mount (this CI host's v2 has no controllers; the v1 path is tested for real in
    /// tests/cgroup.rs).
    #[test]
    fn v2_limits_are_written_as_cgroup2_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let c = Cgroups::with_layout(Layout::V2 { base: root.path().to_path_buf() }, "nimbus-x");
        let procs = c.create("i-1", Limits { memory_bytes: 512 << 20, cpus: 2 }).expect("create");
        let g = root.path().join("nimbus-x/i-1");
        assert_eq!(procs, vec![g.join("cgroup.procs")]);
        let read = |p: &Path| std::fs::read_to_string(p).expect("read");
        assert_eq!(read(&g.join("memory.max")), (512u64 << 20).to_string());
        assert_eq!(read(&g.join("cpu.max")), "200000 100000");
        assert_eq!(read(&g.join("cpu.weight")), "200");
        assert_eq!(read(&root.path().join("cgroup.subtree_control")), "+memory +cpu");
        assert_eq!(read(&root.path().join("nimbus-x/cgroup.subtree_control")), "+memory +cpu");
        assert_eq!(c.limits_of("i-1"), Some((512 << 20, 200_000)));
    }

    #[test]
    fn wrap_keeps_the_command_and_puts_the_joins_first() {
        let mut c = Command::new("qemu");
        c.args(["-m", "256"]).env("A", "1");
        let w = Cgroups::wrap(&c, &[PathBuf::from("/g/a/cgroup.procs"), PathBuf::from("/g/b/cgroup.procs")]);
        let args: Vec<_> = w.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            &args[2..],
            ["nimbus-cgroup-join", "/g/a/cgroup.procs", "/g/b/cgroup.procs", "--", "qemu", "-m", "256"]
        );
        assert_eq!(w.get_envs().count(), 1);
    }
}
