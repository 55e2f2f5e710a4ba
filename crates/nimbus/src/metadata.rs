//! The instance metadata service: `http://169.254.169.254/latest/…` inside every VPC namespace
//! that has instances, as on Alibaba Cloud. The caller is identified by its source address,
//! which the port's anti-spoofing rules make unforgeable, so an instance only ever sees its own
//! data. Listeners are bound inside the namespace (a thread enters it with setns(2) just to
//! bind) and served by this process's runtime.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use nimbus_store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use tokio::task::JoinHandle;

pub struct MetadataServers {
    store: Store,
    region: String,
    servers: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// Binds `addr` inside network namespace `ns` (`/run/netns/<ns>`).
fn bind_in_namespace(ns: &str, addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(&path)?;
            // Changes only this short-lived thread's namespace.
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")))
    })
}

impl MetadataServers {
    pub fn new(store: Store, region: &str) -> Self {
        MetadataServers { store, region: region.to_string(), servers: Mutex::new(HashMap::new()) }
    }

    /// Makes the VPC's metadata listener exist (idempotent).
    pub async fn ensure(&self, vpc: &str, ns: &str) -> std::io::Result<()> {
        {
            let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
            if servers.get(vpc).is_some_and(|h| !h.is_finished()) {
                return Ok(());
            }
        }
        let addr = SocketAddr::from((nimbus_host::net::METADATA_ADDR, 80));
        let std_listener = {
            let ns = ns.to_string();
            tokio::task::spawn_blocking(move || bind_in_namespace(&ns, addr)).await.map_err(std::io::Error::other)??
        };
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let (store, region, vpc_id) = (self.store.clone(), self.region.clone(), vpc.to_string());
        let handle = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else { continue };
                let (store, region, vpc_id) = (store.clone(), region.clone(), vpc_id.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (store, region, vpc_id) = (store.clone(), region.clone(), vpc_id.clone());
                        async move {
                            let (status, body) = answer(&store, &region, &vpc_id, peer.ip(), req.uri().path()).await;
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "text/plain")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap_or_default(),
                            )
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, svc).await;
                });
            }
        });
        tracing::info!(vpc, namespace = ns, "metadata service listening on 169.254.169.254:80");
        self.servers.lock().unwrap_or_else(|e| e.into_inner()).insert(vpc.to_string(), handle);
        Ok(())
    }

    /// Stops every listener (shutdown).
    pub fn stop(&self) {
        for (_, h) in self.servers.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            h.abort();
        }
    }
}

/// The answer to `path` for the instance at `source` in `vpc`.
async fn answer(store: &Store, region: &str, vpc: &str, source: IpAddr, path: &str) -> (StatusCode, String) {
    let not_found = (StatusCode::NOT_FOUND, "Not Found\n".to_string());
    let Ok(all) = store.all_resources_all_accounts(nimbus_ecs::instance::KIND).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metadata store unavailable\n".into());
    };
    let src = source.to_string();
    let Some(i) = all.into_iter().find(|i| i.spec["VpcId"] == vpc && i.spec["PrivateIpAddress"] == src.as_str()) else {
        return (StatusCode::FORBIDDEN, "no instance has this address\n".into());
    };
    let s = &i.spec;
    let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let eip = async {
        store
            .all_resources(&i.account_id, "vpc.eip")
            .await
            .ok()
            .and_then(|e| e.into_iter().find(|e| e.spec["InstanceId"] == i.id.as_str()))
            .map(|e| field(&e.spec["IpAddress"]))
            .unwrap_or_default()
    };
    let body = match path.trim_end_matches('/') {
        "/latest/meta-data" => "eipv4\nhostname\nimage-id\ninstance-id\ninstance/\nmac\nnetwork-type\nprivate-ipv4\npublic-ipv4\npublic-keys/\nregion-id\nvpc-id\nvswitch-id\nzone-id\n".into(),
        "/latest/meta-data/instance-id" => i.id.clone(),
        "/latest/meta-data/hostname" => field(&s["HostName"]),
        "/latest/meta-data/image-id" => field(&s["ImageId"]),
        "/latest/meta-data/mac" => field(&s["MacAddress"]),
        "/latest/meta-data/network-type" => "vpc".into(),
        "/latest/meta-data/private-ipv4" => field(&s["PrivateIpAddress"]),
        "/latest/meta-data/region-id" => region.to_string(),
        "/latest/meta-data/zone-id" => field(&s["ZoneId"]),
        "/latest/meta-data/vpc-id" => field(&s["VpcId"]),
        "/latest/meta-data/vswitch-id" => field(&s["VSwitchId"]),
        "/latest/meta-data/instance/instance-type" => field(&s["InstanceType"]),
        "/latest/meta-data/eipv4" => eip.await,
        "/latest/meta-data/public-ipv4" => match s["PublicIpAddress"].as_str().filter(|a| !a.is_empty()) {
            Some(ip) => ip.to_string(),
            None => eip.await,
        },
        "/latest/meta-data/public-keys" => if field(&s["KeyPairName"]).is_empty() { String::new() } else { "0/\n".into() },
        "/latest/meta-data/public-keys/0/openssh-key" => {
            let name = field(&s["KeyPairName"]);
            if name.is_empty() {
                return not_found;
            }
            match store.get_resource(&i.account_id, &nimbus_ecs::key_pair::id_of(&i.account_id, &name)).await {
                Ok(k) => format!("{}\n", field(&k.spec["PublicKeyBody"]).trim_end()),
                Err(_) => return not_found,
            }
        }
        "/latest/user-data" => {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.decode(field(&s["UserData"])).unwrap_or_default();
            String::from_utf8_lossy(&raw).into_owned()
        }
        _ => return not_found,
    };
    (StatusCode::OK, body)
}
