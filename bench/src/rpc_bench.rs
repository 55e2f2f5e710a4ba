//! `rpc-bench`: signed calls per second and latency percentiles over keep-alive connections, HTTP
//! or HTTPS. Each worker holds one connection and signs every call afresh (new nonce and
//! timestamp), as a real client must. Default call: ECS `DescribeRegions`.
//!
//! usage: rpc-bench --endpoint http(s)://HOST:PORT --ak ID --secret S [--ca FILE] [--connections N]
//!        [--seconds S] [--action NAME --version YYYY-MM-DD [--param K=V]...]

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use nimbus_gateway::signature::{pct, v1};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

struct Opts {
    endpoint: String,
    ak: String,
    secret: String,
    ca: Option<String>,
    connections: usize,
    seconds: u64,
    action: String,
    version: String,
    params: Vec<(String, String)>,
}

fn opts() -> Result<Opts> {
    let mut o = Opts {
        endpoint: String::new(),
        ak: String::new(),
        secret: String::new(),
        ca: None,
        connections: 8,
        seconds: 10,
        action: "DescribeRegions".into(),
        version: "2014-05-26".into(),
        params: vec![],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--endpoint" => o.endpoint = v()?,
            "--ak" => o.ak = v()?,
            "--secret" => o.secret = v()?,
            "--ca" => o.ca = Some(v()?),
            "--connections" => o.connections = v()?.parse()?,
            "--seconds" => o.seconds = v()?.parse()?,
            "--action" => o.action = v()?,
            "--version" => o.version = v()?,
            "--param" => {
                let kv = v()?;
                let (k, val) = kv.split_once('=').context("--param takes K=V")?;
                o.params.push((k.to_string(), val.to_string()));
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if o.endpoint.is_empty() || o.ak.is_empty() || o.secret.is_empty() {
        bail!("usage: rpc-bench --endpoint URL --ak ID --secret S [--ca FILE] [--connections N] [--seconds S]");
    }
    Ok(o)
}

fn signed_path(o: &Opts) -> String {
    let nonce = uuid::Uuid::new_v4().to_string();
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut p: Vec<(&str, &str)> = vec![
        ("Action", &o.action),
        ("Version", &o.version),
        ("Format", "JSON"),
        ("AccessKeyId", &o.ak),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &nonce),
        ("Timestamp", &ts),
        ("RegionId", "local-1"),
    ];
    p.extend(o.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let sig = v1::sign(&o.secret, &v1::string_to_sign("POST", p.iter().copied()));
    p.push(("Signature", &sig));
    format!("/?{}", p.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&"))
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Io for T {}

async fn connect(host: &str, tls: Option<(&tokio_rustls::TlsConnector, &str)>) -> Result<Box<dyn Io>> {
    let tcp = TcpStream::connect(host).await?;
    tcp.set_nodelay(true)?;
    Ok(match tls {
        None => Box::new(tcp),
        Some((c, name)) => {
            let sn = rustls_pki_types::ServerName::try_from(name.to_string())?;
            Box::new(c.connect(sn, tcp).await?)
        }
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let o = Arc::new(opts()?);
    let (https, host) = match (o.endpoint.strip_prefix("https://"), o.endpoint.strip_prefix("http://")) {
        (Some(h), _) => (true, h.trim_end_matches('/').to_string()),
        (None, Some(h)) => (false, h.trim_end_matches('/').to_string()),
        _ => bail!("endpoint must be http:// or https://"),
    };
    let connector = if https {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(o.ca.as_deref().context("--ca is needed for https")?)?;
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(c?)?;
        }
        let cfg = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        Some(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
    } else {
        None
    };
    let server_name = host.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or(host.clone());
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let mut tasks = vec![];
    for _ in 0..o.connections {
        let (o, host, connector, server_name) = (o.clone(), host.clone(), connector.clone(), server_name.clone());
        tasks.push(tokio::spawn(async move {
            let io = connect(&host, connector.as_ref().map(|c| (c, server_name.as_str()))).await?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
            tokio::spawn(conn);
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let req = Request::post(signed_path(&o)).header("host", &host).body(Empty::<Bytes>::new())?;
                let t = Instant::now();
                let resp = sender.send_request(req).await?;
                let ok = resp.status() == 200;
                resp.into_body().collect().await?;
                lat.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((lat, errors))
        }));
    }
    let started = Instant::now();
    let mut all = vec![];
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64().max(o.seconds as f64);
    all.sort();
    let pct_of = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    println!(
        "{:<16} {:<5}  conns {:>3}  calls {:>7}  errors {:>3}  {:>8.0} calls/s  p50 {:>7.3} ms  p99 {:>7.3} ms",
        o.action,
        if https { "HTTPS" } else { "HTTP" },
        o.connections,
        all.len(),
        errors,
        all.len() as f64 / elapsed,
        pct_of(0.50).as_secs_f64() * 1e3,
        pct_of(0.99).as_secs_f64() * 1e3,
    );
    if errors > 0 {
        bail!("{errors} calls did not answer 200");
    }
    Ok(())
}
