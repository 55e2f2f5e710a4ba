//! The VPC data plane. Each VPC is a network namespace that acts as its router (forwarding on);
//! each vSwitch is a bridge inside it holding the vSwitch's gateway address (the CIDR's first
//! host). Nothing connects two VPC namespaces, so VPCs are isolated by construction.
//!
//! Driven through `ip` (iproute2) rather than netlink from Rust: the commands are the documented,
//! stable interface operators already read and debug with, and they are idempotent the way this
//! driver uses them (`replace`, checks before `add`).

use ipnet::Ipv4Net;
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("cannot run `ip`: {0} (is iproute2 installed, and are we root?)")]
    Spawn(std::io::Error),
}

/// The driver of one region: every name it makes starts with its prefix, so regions (and test
/// runs) sharing a host never touch each other's namespaces.
#[derive(Clone, Debug)]
pub struct NetDriver {
    prefix: String,
}

fn ip(args: &[&str]) -> Result<String, NetError> {
    let out = Command::new("ip").args(args).output().map_err(NetError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Command {
            command: format!("ip {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs an nftables script inside namespace `ns`; returns what `nft` printed.
fn nft(ns: &str, script: &str) -> Result<String, NetError> {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft", "-f", "-"]);
    run_nft(cmd, &format!("in {ns}"), script)
}

/// Feeds `script` to an `nft -f -` command; `place` names where it ran, for errors.
fn run_nft(mut cmd: Command, place: &str, script: &str) -> Result<String, NetError> {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(NetError::Spawn)?;
    child.stdin.take().map(|mut i| i.write_all(script.as_bytes())).transpose().map_err(NetError::Spawn)?;
    let out = child.wait_with_output().map_err(NetError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NetError::Command {
            command: format!("nft -f - ({place}): {}", script.lines().next().unwrap_or_default()),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The last `n` characters of a resource id (ids end in random lowercase alphanumerics).
fn tail(id: &str, n: usize) -> &str {
    &id[id.len().saturating_sub(n)..]
}

impl NetDriver {
    pub fn new(prefix: &str) -> Self {
        NetDriver { prefix: prefix.to_string() }
    }

    /// The prefix of every name this driver makes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The namespace of a VPC: `<prefix>-vpc-<id tail>`.
    pub fn namespace(&self, vpc_id: &str) -> String {
        format!("{}-vpc-{}", self.prefix, tail(vpc_id, 12))
    }

    /// The bridge of a vSwitch inside its VPC's namespace (interface names are at most 15 bytes).
    pub fn bridge(vswitch_id: &str) -> String {
        format!("br-{}", tail(vswitch_id, 12))
    }

    /// The namespaces this driver made.
    pub fn namespaces(&self) -> Result<Vec<String>, NetError> {
        let mine = format!("{}-vpc-", self.prefix);
        Ok(ip(&["netns", "list"])?
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&mine))
            .map(str::to_string)
            .collect())
    }

    /// Makes the VPC's namespace exist, with loopback up and forwarding on.
    pub fn ensure_vpc(&self, vpc_id: &str) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        if !self.namespaces()?.contains(&ns) {
            ip(&["netns", "add", &ns])?;
            tracing::info!(namespace = ns, "created VPC namespace");
        }
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        // The namespace is the VPC's router between its vSwitches.
        ip(&["netns", "exec", &ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        // Bridged IPv4 goes through the inet hooks, where conntrack makes security groups
        // stateful (conntrack does not work in the bridge family on these hosts).
        ip(&["netns", "exec", &ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"])?;
        Ok(())
    }

    /// Removes the VPC's namespace and everything in it; absent is fine.
    pub fn remove_vpc(&self, vpc_id: &str) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        if self.namespaces()?.contains(&ns) {
            ip(&["netns", "del", &ns])?;
            tracing::info!(namespace = ns, "removed VPC namespace");
        }
        Ok(())
    }

    /// Removes a namespace by name (one left behind by a VPC that no longer exists).
    pub fn remove_namespace(&self, ns: &str) -> Result<(), NetError> {
        if ns.starts_with(&format!("{}-vpc-", self.prefix)) {
            ip(&["netns", "del", ns])?;
        }
        Ok(())
    }

    /// Makes the vSwitch's bridge exist in its VPC's namespace with the gateway address.
    pub fn ensure_vswitch(&self, vpc_id: &str, vswitch_id: &str, cidr: Ipv4Net) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        let br = Self::bridge(vswitch_id);
        if ip(&["-n", &ns, "link", "show", &br]).is_err() {
            ip(&["-n", &ns, "link", "add", &br, "type", "bridge"])?;
        }
        let gw = format!("{}/{}", gateway(cidr), cidr.prefix_len());
        ip(&["-n", &ns, "addr", "replace", &gw, "dev", &br])?;
        ip(&["-n", &ns, "link", "set", &br, "up"])?;
        Ok(())
    }

    pub fn remove_vswitch(&self, vpc_id: &str, vswitch_id: &str) -> Result<(), NetError> {
        self.remove_bridge(vpc_id, &Self::bridge(vswitch_id))
    }

    /// Creates tap `tap` in the VPC's namespace, enslaved to the vSwitch's bridge and up; a VM
    /// started in the namespace then opens it as its network card.
    pub fn attach_tap(&self, vpc_id: &str, vswitch_id: &str, tap: &str) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        if ip(&["-n", &ns, "link", "show", tap]).is_err() {
            ip(&["-n", &ns, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        }
        ip(&["-n", &ns, "link", "set", tap, "master", &Self::bridge(vswitch_id)])?;
        ip(&["-n", &ns, "link", "set", tap, "up"])?;
        Ok(())
    }

    /// Binds a port to its instance: frames entering the VPC from `tap` must carry the instance's
    /// own MAC, and its IPv4 packets and ARP its own address; anything else is dropped at the port
    /// (an instance cannot spoof). One nftables chain per port in the namespace's `bridge nimbus`
    /// table, replaced whole on every call.
    pub fn bind_port(&self, vpc_id: &str, tap: &str, mac: &str, ip_addr: std::net::Ipv4Addr) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        let chain = format!("port_{}", tap.replace('-', "_"));
        let script = format!(
            "table bridge nimbus {{\n\
               chain prerouting {{ type filter hook prerouting priority -200; policy accept; }}\n\
               chain {chain} {{}}\n\
             }}\n\
             flush chain bridge nimbus {chain}\n\
             add rule bridge nimbus {chain} ether saddr != {mac} counter drop\n\
             add rule bridge nimbus {chain} ether type ip ip saddr != {ip_addr} counter drop\n\
             add rule bridge nimbus {chain} ether type arp arp saddr ip != {ip_addr} counter drop\n\
             add rule bridge nimbus {chain} ether type ip6 counter drop\n"
        );
        nft(&ns, &script)?;
        // The jump from the hook chain, once per port.
        let listing = nft(&ns, "list chain bridge nimbus prerouting\n")?;
        if !listing.contains(&format!("jump {chain}")) {
            nft(&ns, &format!("add rule bridge nimbus prerouting iifname \"{tap}\" jump {chain}\n"))?;
        }
        Ok(())
    }

    /// Removes a bridge of a VPC's namespace by name; absent is fine.
    pub fn remove_bridge(&self, vpc_id: &str, bridge: &str) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        if ip(&["-n", &ns, "link", "show", bridge]).is_ok() {
            ip(&["-n", &ns, "link", "del", bridge])?;
        }
        Ok(())
    }

    /// The bridges in a VPC's namespace with their IPv4 addresses (`name`, `a.b.c.d/len`).
    pub fn bridges(&self, vpc_id: &str) -> Result<Vec<(String, Vec<String>)>, NetError> {
        let ns = self.namespace(vpc_id);
        let out = ip(&["-n", &ns, "-j", "addr", "show", "type", "bridge"])?;
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let name = l["ifname"].as_str().unwrap_or_default().to_string();
                let addrs = l["addr_info"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| a["family"] == "inet")
                    .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or_default(), a["prefixlen"]))
                    .collect();
                (name, addrs)
            })
            .collect())
    }
}

/// One security group rule as the data plane applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SgRule {
    /// `true`: ingress (to the port); `false`: egress (from it).
    pub ingress: bool,
    /// `all`, `tcp`, `udp` or `icmp`.
    pub protocol: String,
    /// Destination ports for tcp/udp (inclusive).
    pub ports: Option<(u16, u16)>,
    /// The other side: a CIDR (a group-to-group rule is expanded to its members' addresses).
    pub peer: Ipv4Net,
    pub accept: bool,
    /// 1 (first) to 100; at equal priority a drop wins.
    pub priority: u8,
}

/// The rules that apply to one port (the union of its instance's groups).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPolicy {
    pub ip: std::net::Ipv4Addr,
    pub rules: Vec<SgRule>,
}

/// The nftables script for a VPC's security groups. Ports are matched by address, which is
/// sound because [`NetDriver::bind_port`] makes a port's source address unforgeable. Replies to
/// allowed traffic pass (conntrack); new ingress is dropped unless a rule accepts it; egress is
/// allowed unless a rule drops it. The table is replaced atomically (one nft transaction).
pub fn security_script(ports: &[PortPolicy]) -> String {
    let mut s = String::from("table inet nimbus_sg {}\ndelete table inet nimbus_sg\ntable inet nimbus_sg {\n");
    s += "  chain forward {\n    type filter hook forward priority 0; policy accept;\n    ct state established,related accept\n    ct state invalid drop\n";
    for (i, p) in ports.iter().enumerate() {
        s += &format!("    ip saddr {} jump out_{i}\n    ip daddr {} jump in_{i}\n", p.ip, p.ip);
    }
    s += "  }\n";
    for (i, p) in ports.iter().enumerate() {
        for ingress in [true, false] {
            let mut rules: Vec<&SgRule> = p.rules.iter().filter(|r| r.ingress == ingress).collect();
            rules.sort_by_key(|r| (r.priority, r.accept));
            s += &format!("  chain {}_{i} {{\n", if ingress { "in" } else { "out" });
            for r in rules {
                let peer = if ingress { format!("ip saddr {}", r.peer) } else { format!("ip daddr {}", r.peer) };
                let proto = match (r.protocol.as_str(), r.ports) {
                    ("tcp" | "udp", Some((a, b))) => format!(" meta l4proto {0} {0} dport {a}-{b}", r.protocol),
                    ("tcp" | "udp" | "icmp", _) => format!(" meta l4proto {}", r.protocol),
                    _ => String::new(),
                };
                // An egress accept only lets the packet on to the destination's ingress check.
                let verdict = match (r.accept, ingress) {
                    (false, _) => "drop",
                    (true, true) => "accept",
                    (true, false) => "return",
                };
                s += &format!("    {peer}{proto} {verdict}\n");
            }
            s += if ingress { "    drop\n  }\n" } else { "    return\n  }\n" };
        }
    }
    s += "}\n";
    s
}

impl NetDriver {
    /// Applies the security policy of every port of a VPC (replacing what was there).
    pub fn apply_security(&self, vpc_id: &str, ports: &[PortPolicy]) -> Result<(), NetError> {
        nft(&self.namespace(vpc_id), &security_script(ports)).map(|_| ())
    }
}

/// The metadata service's address inside every VPC namespace.
pub const METADATA_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);
/// Alibaba Cloud's own metadata address, served too, so tools made for ECS (the SDKs' ECS RAM role
/// credential providers, cloud-init's Aliyun source) work in a guest unchanged.
pub const ALIBABA_METADATA_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(100, 100, 100, 200);

impl NetDriver {
    /// The host's "public" bridge, where EIPs live.
    pub fn public_bridge(&self) -> String {
        format!("{}-pub", self.prefix)
    }

    /// Gives the VPC namespace the metadata address on its loopback (served by the region).
    pub fn ensure_metadata_address(&self, vpc_id: &str) -> Result<(), NetError> {
        for a in [METADATA_ADDR, ALIBABA_METADATA_ADDR] {
            ip(&["-n", &self.namespace(vpc_id), "addr", "replace", &format!("{a}/32"), "dev", "lo"])?;
        }
        Ok(())
    }

    /// Removes an instance's tap device; absent is fine.
    pub fn detach_tap(&self, vpc_id: &str, tap: &str) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        if ip(&["-n", &ns, "link", "show", tap]).is_ok() {
            ip(&["-n", &ns, "link", "del", tap])?;
        }
        // Its anti-spoofing chain stays (a jump on a name no device has matches nothing) and is
        // replaced whole if a port of that name is bound again.
        Ok(())
    }

    /// EIPs of a VPC as 1:1 NAT: each `(eip, private)` is DNAT'd in and SNAT'd out through a veth
    /// from the VPC namespace (`pub0`) to the host's public bridge, which holds the pool's first
    /// address. Only instances with an EIP may leave the VPC; the host drops anything the public
    /// bridge would forward onwards, so no instance packet reaches the machine's real interfaces.
    pub fn apply_eips(
        &self,
        vpc_id: &str,
        pool: Ipv4Net,
        eips: &[(std::net::Ipv4Addr, std::net::Ipv4Addr)],
    ) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        let pubbr = self.public_bridge();
        let gw = gateway(pool);
        if eips.is_empty() && ip(&["-n", &ns, "link", "show", "pub0"]).is_err() {
            return Ok(());
        }
        if ip(&["link", "show", &pubbr]).is_err() {
            ip(&["link", "add", &pubbr, "type", "bridge"])?;
        }
        ip(&["addr", "replace", &format!("{gw}/{}", pool.prefix_len()), "dev", &pubbr])?;
        ip(&["link", "set", &pubbr, "up"])?;
        let host_table = format!(
            "table inet {p}_pub {{}}\ndelete table inet {p}_pub\ntable inet {p}_pub {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    iifname \"{pubbr}\" counter drop\n    oifname \"{pubbr}\" counter drop\n  }}\n}}\n",
            p = self.prefix.replace('-', "_")
        );
        nft_host(&host_table)?;
        let host_veth = format!("vp{}", tail(vpc_id, 12));
        if ip(&["-n", &ns, "link", "show", "pub0"]).is_err() {
            let _ = ip(&["link", "del", &host_veth]);
            ip(&["link", "add", &host_veth, "type", "veth", "peer", "name", "pub0", "netns", &ns])?;
        }
        ip(&["link", "set", &host_veth, "master", &pubbr])?;
        ip(&["link", "set", &host_veth, "up"])?;
        ip(&["-n", &ns, "link", "set", "pub0", "up"])?;
        ip(&["-n", &ns, "addr", "flush", "dev", "pub0"])?;
        for (eip, _) in eips {
            ip(&["-n", &ns, "addr", "add", &format!("{eip}/32"), "dev", "pub0"])?;
        }
        ip(&["-n", &ns, "route", "replace", &format!("{gw}/32"), "dev", "pub0"])?;
        let mut nat = String::from("table ip nimbus_nat {}\ndelete table ip nimbus_nat\ntable ip nimbus_nat {\n");
        nat += "  chain pre {\n    type nat hook prerouting priority -100; policy accept;\n";
        for (eip, private) in eips {
            nat += &format!("    iifname \"pub0\" ip daddr {eip} dnat to {private}\n");
        }
        nat += "  }\n  chain post {\n    type nat hook postrouting priority 100; policy accept;\n";
        for (eip, private) in eips {
            nat += &format!("    oifname \"pub0\" ip saddr {private} snat to {eip}\n");
        }
        nat += "  }\n  chain edge {\n    type filter hook forward priority 10; policy accept;\n";
        for (_, private) in eips {
            nat += &format!("    oifname \"pub0\" ip saddr {private} accept\n");
        }
        nat += "    oifname \"pub0\" drop\n  }\n}\n";
        nft(&ns, &nat)?;
        if eips.is_empty() {
            let _ = ip(&["-n", &ns, "route", "del", "default"]);
        } else {
            ip(&["-n", &ns, "route", "replace", "default", "via", &gw.to_string(), "dev", "pub0"])?;
        }
        Ok(())
    }

    /// Custom routes of a VPC (`destination`, next-hop address), installed in its namespace with
    /// protocol 250 so routes this driver did not make are never touched; stale ones go.
    pub fn apply_routes(&self, vpc_id: &str, routes: &[(Ipv4Net, std::net::Ipv4Addr)]) -> Result<(), NetError> {
        let ns = self.namespace(vpc_id);
        for (dst, via) in routes {
            ip(&["-n", &ns, "route", "replace", &dst.to_string(), "via", &via.to_string(), "proto", "250"])?;
        }
        let present = ip(&["-n", &ns, "route", "show", "proto", "250"])?;
        for line in present.lines() {
            let dst = line.split_whitespace().next().unwrap_or_default();
            if !routes.iter().any(|(d, _)| d.to_string() == dst) {
                ip(&["-n", &ns, "route", "del", dst, "proto", "250"])?;
            }
        }
        Ok(())
    }

    /// Removes the host's public bridge and its table (when the region's last EIP goes, or at
    /// start when none is associated).
    pub fn remove_public(&self) {
        let _ = ip(&["link", "del", &self.public_bridge()]);
        let _ = nft_host(&format!("delete table inet {}_pub\n", self.prefix.replace('-', "_")));
    }
}

/// Runs an nftables script in the host's own namespace.
fn nft_host(script: &str) -> Result<String, NetError> {
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]);
    run_nft(cmd, "host", script)
}

/// A vSwitch's gateway: the first host address of its CIDR.
pub fn gateway(cidr: Ipv4Net) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(u32::from(cidr.network()) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_script_orders_rules_and_defaults() {
        let rule = |ingress, protocol: &str, ports, peer: &str, accept, priority| SgRule {
            ingress,
            protocol: protocol.into(),
            ports,
            peer: peer.parse().expect("cidr"),
            accept,
            priority,
        };
        let s = security_script(&[PortPolicy {
            ip: "198.18.1.10".parse().expect("ip"),
            rules: vec![
                rule(true, "tcp", Some((22, 22)), "0.0.0.0/0", true, 10),
                rule(true, "tcp", Some((22, 22)), "198.18.9.0/24", false, 10),
                rule(false, "all", None, "10.0.0.0/8", false, 1),
            ],
        }]);
        let drop_at = s.find("ip saddr 198.18.9.0/24 meta l4proto tcp tcp dport 22-22 drop").expect("drop rule");
        let accept_at = s.find("ip saddr 0.0.0.0/0 meta l4proto tcp tcp dport 22-22 accept").expect("accept rule");
        assert!(drop_at < accept_at, "at equal priority the drop comes first:\n{s}");
        assert!(s.contains("chain in_0 {") && s.contains("    drop\n  }"), "ingress ends in drop");
        assert!(s.contains("ip daddr 10.0.0.0/8 drop") && s.contains("    return\n  }"), "egress ends in return");
        assert!(s.starts_with("table inet nimbus_sg {}\ndelete table inet nimbus_sg\n"), "replaced atomically");
    }

    #[test]
    fn names_fit_linux_limits() {
        let d = NetDriver::new("nimbus");
        assert_eq!(d.namespace("vpc-abcdefghij0123456789"), "nimbus-vpc-ij0123456789");
        let br = NetDriver::bridge("vsw-abcdefghij0123456789");
        assert!(br.len() <= 15, "{br}");
        assert_eq!(gateway("198.18.1.0/24".parse().expect("cidr")).to_string(), "198.18.1.1");
    }
}
