//! OSS benchmark client: prints figures, asserts nothing.
//!
//! - `big`: MB/s of 64 MiB PUT and GET through the OSS endpoint, next to the physical limit of
//!   this machine measured in the same run (three fsync'd file writes of the same bytes, as the
//!   engine's three replicas; a page-cache read of one).
//! - `small`: PUT, GET and HEAD operations per second for small objects at N concurrent clients.
//! - `load`: writes a bucket of N object rows straight into a stopped region's store.
//! - `list`: time to list 1,000 keys, with and without a delimiter.

use anyhow::{Context, Result, bail};
use nimbus::oss_client::OssClient;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn client(args: &[String]) -> Result<OssClient> {
    let endpoint = arg(args, "--endpoint").context("--endpoint")?;
    let ak = arg(args, "--ak").context("--ak")?;
    let sk = arg(args, "--secret").context("--secret")?;
    let ca = arg(args, "--ca").map(std::fs::read).transpose()?;
    OssClient::new(&endpoint, &ak, &sk, ca.as_deref())
}

fn big(args: &[String]) -> Result<()> {
    let c = client(args)?;
    let bucket = arg(args, "--bucket").unwrap_or_else(|| "bench".into());
    let mib: usize = arg(args, "--size-mib").map(|s| s.parse()).transpose()?.unwrap_or(64);
    let runs: usize = arg(args, "--runs").map(|s| s.parse()).transpose()?.unwrap_or(5);
    let scratch = PathBuf::from(arg(args, "--scratch").context("--scratch DIR (on the replicas' filesystem)")?);
    let data = pseudo_random(mib << 20, 7);
    let mb = (mib << 20) as f64 / 1e6;
    let (mut put, mut get, mut phys_w, mut phys_r) = (vec![], vec![], vec![], vec![]);
    for i in 0..runs {
        let key = format!("big-{i}");
        // As oss2 and boto3 send it by default: no Content-MD5 (the CRC-64 answer is checked).
        let t = Instant::now();
        let r = c.request("PUT", Some(&bucket), Some(&key), &[], &[], &data)?.ok()?;
        if r.header("x-oss-hash-crc64ecma").is_none() {
            bail!("PUT returned no CRC-64");
        }
        put.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let r = c.get_object(&bucket, &key)?.ok()?;
        get.push(mb / t.elapsed().as_secs_f64());
        if r.body.len() != data.len() {
            bail!("GET returned {} bytes", r.body.len());
        }
        // The physical limit: the same bytes to three files, then all three fsync'd, as the
        // engine does (it writes every block to the three replicas, then syncs them).
        std::fs::create_dir_all(&scratch)?;
        let t = Instant::now();
        let mut files = vec![];
        for r in 0..3 {
            let mut f = std::fs::File::create(scratch.join(format!("phys-{r}")))?;
            f.write_all(&data)?;
            files.push(f);
        }
        // Synced concurrently, the disk's best for this work (the engine does the same).
        std::thread::scope(|sc| {
            let hs: Vec<_> = files.into_iter().map(|f| sc.spawn(move || f.sync_all())).collect();
            hs.into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked"))))
        })?;
        phys_w.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut buf = Vec::with_capacity(data.len());
        std::fs::File::open(scratch.join("phys-0"))?.read_to_end(&mut buf)?;
        phys_r.push(mb / t.elapsed().as_secs_f64());
        // New files each run, as the engine makes (truncating old ones would add block freeing).
        for r in 0..3 {
            std::fs::remove_file(scratch.join(format!("phys-{r}")))?;
        }
        c.request("DELETE", Some(&bucket), Some(&key), &[], &[], &[])?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let (p, g, w, r) = (median(put), median(get), median(phys_w), median(phys_r));
    println!("{mib} MiB objects, median of {runs}:");
    println!("  PUT  {p:8.0} MB/s   physical limit (3 fsync'd file writes) {w:8.0} MB/s   ratio {:.2}", p / w);
    println!("  GET  {g:8.0} MB/s   physical limit (page-cache read)      {r:8.0} MB/s   ratio {:.2}", g / r);
    Ok(())
}

fn small(args: &[String]) -> Result<()> {
    let bucket = arg(args, "--bucket").unwrap_or_else(|| "bench".into());
    let clients: usize = arg(args, "--clients").map(|s| s.parse()).transpose()?.unwrap_or(1);
    let secs: u64 = arg(args, "--seconds").map(|s| s.parse()).transpose()?.unwrap_or(5);
    let size: usize = arg(args, "--size").map(|s| s.parse()).transpose()?.unwrap_or(4096);
    let data = Arc::new(pseudo_random(size, 11));
    let mut line = format!("{size} B objects, {clients:>2} clients:");
    // GET and HEAD read back the keys each client PUT.
    let written: Arc<Vec<AtomicU64>> = Arc::new((0..clients).map(|_| AtomicU64::new(0)).collect());
    for op in ["PUT", "GET", "HEAD"] {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(secs);
        let threads: Vec<_> = (0..clients)
            .map(|t| {
                let (c, bucket, data, done, written) =
                    (client(args), bucket.clone(), data.clone(), done.clone(), written.clone());
                std::thread::spawn(move || -> Result<()> {
                    let c = c?;
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let n = if op == "PUT" { 1000 } else { written[t].load(Ordering::Relaxed).clamp(1, 1000) };
                        let key = format!("small-{t}-{}", i % n);
                        let r = match op {
                            "PUT" => c.put_object(&bucket, &key, &data)?,
                            "GET" => c.get_object(&bucket, &key)?,
                            _ => c.request("HEAD", Some(&bucket), Some(&key), &[], &[], &[])?,
                        };
                        r.ok()?;
                        done.fetch_add(1, Ordering::Relaxed);
                        if op == "PUT" {
                            written[t].fetch_max(i + 1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in threads {
            t.join().map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        }
        line += &format!("  {op} {:7.0}/s", done.load(Ordering::Relaxed) as f64 / secs as f64);
    }
    println!("{line}");
    Ok(())
}

async fn load(args: &[String]) -> Result<()> {
    let url = arg(args, "--store-url").context("--store-url")?;
    let account = arg(args, "--account").context("--account")?;
    let bucket = arg(args, "--bucket").unwrap_or_else(|| "million".into());
    let dirs: usize = arg(args, "--dirs").map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let per: usize = arg(args, "--per-dir").map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let store = nimbus_store::Store::open(&url).await?;
    let cfg = serde_json::json!({"acl": "private", "storage_class": "Standard"});
    match store.create_bucket(&bucket, &account, &cfg).await {
        Ok(_) | Err(nimbus_store::StoreError::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    let t = Instant::now();
    let meta = serde_json::json!({"segments": [], "crc64": 0, "object_type": "Normal", "content_type": "application/octet-stream",
        "acl": "default", "storage_class": "Standard", "owner": account});
    for d in 0..dirs {
        let rows: Vec<nimbus_store::objects::ObjectRow> = (0..per)
            .map(|i| nimbus_store::objects::ObjectRow {
                bucket: bucket.clone(),
                key: format!("dir-{d:04}/obj-{i:06}"),
                size: 0,
                etag: "D41D8CD98F00B204E9800998ECF8427E".into(),
                last_modified: 0,
                meta: meta.clone(),
                version_id: "null".into(),
                seq: 0,
            })
            .collect();
        store.put_object_rows(&rows).await?;
    }
    store.close().await;
    println!("loaded {} object rows into {bucket} in {:.1} s", dirs * per, t.elapsed().as_secs_f64());
    Ok(())
}

fn list(args: &[String]) -> Result<()> {
    let c = client(args)?;
    let bucket = arg(args, "--bucket").unwrap_or_else(|| "million".into());
    let runs = 5;
    let mut report = vec![];
    for (label, q) in [
        ("first 1,000 keys, no delimiter", vec![("max-keys", "1000")]),
        ("1,000 keys under a prefix", vec![("max-keys", "1000"), ("prefix", "dir-0500/")]),
        ("1,000 keys after a deep marker", vec![("max-keys", "1000"), ("marker", "dir-0750/obj-000500")]),
        ("1,000 common prefixes, delimiter '/'", vec![("max-keys", "1000"), ("delimiter", "/")]),
    ] {
        let mut times = vec![];
        for _ in 0..runs {
            let t = Instant::now();
            let r = c.request("GET", Some(&bucket), None, &q, &[], &[])?.ok()?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            let n = r.text().matches("<Key>").count() + r.text().matches("<CommonPrefixes>").count();
            if n != 1000 {
                bail!("{label}: {n} entries");
            }
        }
        report.push(format!("  {label:40} {:7.1} ms (median of {runs})", median(times)));
    }
    println!("ListObjects over HTTP, bucket of 1,000,000 objects (1,000 dirs x 1,000):");
    for l in report {
        println!("{l}");
    }
    Ok(())
}

fn main() -> Result<()> {
    nimbus::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("big") => big(&args),
        Some("small") => small(&args),
        Some("get-loop") => {
            // For profiling: GET one object over and over.
            let c = client(&args)?;
            let (b, k) =
                (arg(&args, "--bucket").unwrap_or_else(|| "bench".into()), arg(&args, "--key").context("--key")?);
            let n: usize = arg(&args, "--times").map(|s| s.parse()).transpose()?.unwrap_or(10);
            let t = Instant::now();
            let mut bytes = 0;
            for _ in 0..n {
                bytes += c.get_object(&b, &k)?.ok()?.body.len();
            }
            println!("{:.0} MB/s", bytes as f64 / 1e6 / t.elapsed().as_secs_f64());
            Ok(())
        }
        Some("list") => list(&args),
        Some("load") => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(load(&args)),
        _ => bail!("usage: oss-bench big|small|list|load [options] (see bench/oss.sh)"),
    }
}
