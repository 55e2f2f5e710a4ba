//! `nimbus oss mb|ls|cp|rm|presign|fsck`: object storage from the command line, like `ossutil`.
//! Paths are `oss://bucket[/key]`; local paths are files. Large uploads go in parts with a
//! progress bar; large downloads are fetched in ranges, also with a progress bar.

use super::configure;
use crate::oss_client::{OssClient, between};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct Conn {
    /// CLI profile (see `nimbus configure`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// OSS endpoint, overriding the profile's.
    #[arg(long, global = true)]
    pub oss_endpoint: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum OssCommand {
    /// Create a bucket.
    Mb {
        /// oss://bucket
        target: String,
        /// private, public-read or public-read-write.
        #[arg(long, default_value = "private")]
        acl: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List buckets, or the objects of oss://bucket[/prefix].
    Ls {
        target: Option<String>,
        /// Roll keys up at `/` (directory view).
        #[arg(long)]
        dir: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Copy a file to OSS, OSS to a file, or within OSS.
    Cp {
        source: String,
        destination: String,
        /// Files larger than this go up in parts (MiB).
        #[arg(long, default_value_t = 64)]
        multipart_threshold_mib: u64,
        /// Part size (MiB).
        #[arg(long, default_value_t = 16)]
        part_size_mib: u64,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete an object, every object under a prefix (--recursive), or a bucket (--bucket).
    Rm {
        target: String,
        #[arg(long)]
        recursive: bool,
        /// Delete the (empty) bucket itself.
        #[arg(long)]
        bucket: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a presigned URL for oss://bucket/key.
    Presign {
        target: String,
        /// Seconds the link stays valid (at most 604800, 7 days: the region refuses longer links).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..=604_800))]
        expires: i64,
        #[arg(long, default_value = "GET")]
        method: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Operator: verify every block of every replica against its checksum and repair rot and
    /// lost copies from a good replica (the region's background scrubber, on demand).
    Fsck {
        #[command(flatten)]
        store: crate::config::StoreArgs,
        /// The region's replica directories, if not the defaults (give three).
        #[arg(long = "oss-replica-dir", value_name = "DIR")]
        replica_dirs: Vec<PathBuf>,
        /// Also remove replica files no metadata points at once they are this old (seconds).
        /// Use 0 only while the region is stopped: younger files may be uploads in flight.
        #[arg(long, value_name = "SECS")]
        remove_orphans_older_than: Option<u64>,
    },
}

/// `oss://bucket/key` → (bucket, key).
fn parse_target(t: &str) -> Option<(String, String)> {
    let rest = t.strip_prefix("oss://")?;
    let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
    (!b.is_empty()).then(|| (b.to_string(), k.to_string()))
}

fn client(conn: &Conn) -> Result<OssClient> {
    let p = configure::profile(conn.profile.as_deref())?;
    let endpoint = conn.oss_endpoint.clone().or(p.oss_endpoint.clone()).context(
        "no OSS endpoint: pass --oss-endpoint or run `nimbus configure --from-data-dir DIR` (or --oss-endpoint URL)",
    )?;
    let ca = match &p.ca_file {
        Some(f) => Some(std::fs::read(f).with_context(|| format!("reading CA file {}", f.display()))?),
        None => None,
    };
    OssClient::new(&endpoint, &p.access_key_id, &p.access_key_secret, ca.as_deref())
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub async fn run(cmd: OssCommand) -> Result<i32> {
    match cmd {
        OssCommand::Fsck { store, replica_dirs, remove_orphans_older_than } => {
            fsck(store, replica_dirs, remove_orphans_older_than.map(std::time::Duration::from_secs)).await
        }
        other => tokio::task::spawn_blocking(move || run_client(other)).await?,
    }
}

fn run_client(cmd: OssCommand) -> Result<i32> {
    match cmd {
        OssCommand::Mb { target, acl, conn } => {
            let (b, _) = parse_target(&target).context("expected oss://bucket")?;
            client(&conn)?.request("PUT", Some(&b), None, &[], &[("x-oss-acl", &acl)], &[])?.ok()?;
            println!("created oss://{b}");
        }
        OssCommand::Ls { target, dir, conn } => {
            let c = client(&conn)?;
            match target.as_deref().map(parse_target) {
                None => {
                    let r = c.request("GET", None, None, &[], &[], &[])?.ok()?;
                    for name in r.text().split("<Name>").skip(1).filter_map(|s| s.split("</Name>").next()) {
                        println!("oss://{name}");
                    }
                }
                Some(None) => bail!("expected oss://bucket[/prefix]"),
                Some(Some((b, prefix))) => {
                    let mut marker = String::new();
                    loop {
                        let mut q: Vec<(&str, &str)> = vec![("prefix", &prefix), ("max-keys", "1000")];
                        if !marker.is_empty() {
                            q.push(("marker", &marker));
                        }
                        if dir {
                            q.push(("delimiter", "/"));
                        }
                        let r = c.request("GET", Some(&b), None, &q, &[], &[])?.ok()?;
                        let t = r.text();
                        for p in t.split("<CommonPrefixes>").skip(1).filter_map(|s| between(s, "<Prefix>", "</Prefix>"))
                        {
                            println!("{:>12}  {:24}  oss://{b}/{p}", "DIR", "");
                        }
                        for o in t.split("<Contents>").skip(1) {
                            let key = between(o, "<Key>", "</Key>").unwrap_or_default();
                            let size = between(o, "<Size>", "</Size>").unwrap_or_default();
                            let modified = between(o, "<LastModified>", "</LastModified>").unwrap_or_default();
                            println!("{size:>12}  {modified:24}  oss://{b}/{}", xml_unescape(&key));
                        }
                        match between(&t, "<NextMarker>", "</NextMarker>") {
                            Some(n) if t.contains("<IsTruncated>true</IsTruncated>") => marker = xml_unescape(&n),
                            _ => break,
                        }
                    }
                }
            }
        }
        OssCommand::Cp { source, destination, multipart_threshold_mib, part_size_mib, conn } => {
            let c = client(&conn)?;
            match (parse_target(&source), parse_target(&destination)) {
                (None, Some((b, k))) => {
                    let path = PathBuf::from(&source);
                    let k = if k.is_empty() || k.ends_with('/') {
                        format!("{k}{}", path.file_name().context("source has no file name")?.to_string_lossy())
                    } else {
                        k
                    };
                    let len = std::fs::metadata(&path).with_context(|| format!("reading {source}"))?.len();
                    let pb = bar(len, "upload");
                    if len > multipart_threshold_mib << 20 {
                        let f = std::fs::File::open(&path)?;
                        c.multipart_upload(&b, &k, f, (part_size_mib << 20) as usize, |done| pb.set_position(done))?;
                    } else {
                        let data = std::fs::read(&path)?;
                        c.put_object(&b, &k, &data)?.ok()?;
                        pb.set_position(len);
                    }
                    pb.finish_and_clear();
                    println!("{source} -> oss://{b}/{k} ({len} bytes)");
                }
                (Some((b, k)), None) => {
                    let head = c.request("HEAD", Some(&b), Some(&k), &[], &[], &[])?.ok()?;
                    let len: u64 = head.header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let pb = bar(len, "download");
                    let tmp = PathBuf::from(format!("{destination}.nimbus-partial"));
                    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                    let chunk = part_size_mib << 20;
                    let mut at = 0u64;
                    while at < len || (len == 0 && at == 0) {
                        let end = (at + chunk).min(len).saturating_sub(1);
                        let range = format!("bytes={at}-{end}");
                        let r = if len == 0 {
                            c.get_object(&b, &k)?.ok()?
                        } else {
                            c.request("GET", Some(&b), Some(&k), &[], &[("range", &range)], &[])?.ok()?
                        };
                        f.write_all(&r.body)?;
                        at += r.body.len() as u64;
                        pb.set_position(at);
                        if len == 0 || r.body.is_empty() {
                            break;
                        }
                    }
                    f.sync_all()?;
                    std::fs::rename(&tmp, &destination)?;
                    pb.finish_and_clear();
                    println!("oss://{b}/{k} -> {destination} ({at} bytes)");
                }
                (Some((sb, sk)), Some((db, dk))) => {
                    let src = format!("/{sb}/{}", nimbus_gateway::signature::oss::encode_path(&sk));
                    c.request("PUT", Some(&db), Some(&dk), &[], &[("x-oss-copy-source", &src)], &[])?.ok()?;
                    println!("oss://{sb}/{sk} -> oss://{db}/{dk}");
                }
                (None, None) => bail!("one side of cp must be oss://bucket/key"),
            }
        }
        OssCommand::Rm { target, recursive, bucket, conn } => {
            let c = client(&conn)?;
            let (b, k) = parse_target(&target).context("expected oss://bucket[/key]")?;
            if recursive {
                let mut n = 0;
                loop {
                    let r =
                        c.request("GET", Some(&b), None, &[("prefix", &k), ("max-keys", "1000")], &[], &[])?.ok()?;
                    let keys: Vec<String> = r
                        .text()
                        .split("<Key>")
                        .skip(1)
                        .filter_map(|s| s.split("</Key>").next())
                        .map(str::to_string)
                        .collect();
                    if keys.is_empty() {
                        break;
                    }
                    let body = format!(
                        "<Delete><Quiet>true</Quiet>{}</Delete>",
                        keys.iter().map(|k| format!("<Object><Key>{k}</Key></Object>")).collect::<String>()
                    );
                    c.request(
                        "POST",
                        Some(&b),
                        None,
                        &[("delete", "")],
                        &[("content-type", "application/xml")],
                        body.as_bytes(),
                    )?
                    .ok()?;
                    n += keys.len();
                }
                println!("deleted {n} objects under oss://{b}/{k}");
            } else if !k.is_empty() {
                c.request("DELETE", Some(&b), Some(&k), &[], &[], &[])?.ok()?;
                println!("deleted oss://{b}/{k}");
            }
            if bucket {
                c.request("DELETE", Some(&b), None, &[], &[], &[])?.ok()?;
                println!("deleted bucket oss://{b}");
            }
        }
        OssCommand::Presign { target, expires, method, conn } => {
            let (b, k) = parse_target(&target).context("expected oss://bucket/key")?;
            println!("{}", client(&conn)?.presign(&method.to_ascii_uppercase(), &b, &k, expires));
        }
        OssCommand::Fsck { .. } => unreachable!("handled in run"),
    }
    Ok(0)
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

async fn fsck(
    store_args: crate::config::StoreArgs,
    replica_dirs: Vec<PathBuf>,
    orphan_grace: Option<std::time::Duration>,
) -> Result<i32> {
    let (dir, url) = crate::config::resolve_store(&store_args)?;
    let dirs = if replica_dirs.is_empty() {
        (0..3).map(|i| dir.join("oss").join(format!("replica-{i}"))).collect()
    } else {
        replica_dirs
    };
    let store = nimbus_store::Store::open(&url).await.context("opening the state store")?;
    let engine = std::sync::Arc::new(nimbus_oss::Engine::open(dirs).context("opening the replica directories")?);
    let report = nimbus_oss::scrub::scrub(&store, &engine, orphan_grace).await?;
    store.close().await;
    println!(
        "{}",
        serde_json::json!({
            "Objects": report.objects,
            "BlocksChecked": report.blocks_checked,
            "Repaired": report.repaired,
            "Lost": report.lost,
            "OrphansRemoved": report.orphans_removed,
        })
    );
    Ok(if report.lost.is_empty() { 0 } else { 2 })
}
