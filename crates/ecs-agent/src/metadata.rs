//! The instance metadata service: `http://169.254.169.254/latest/…` (and Alibaba's own address,
//! `http://100.100.100.200/latest/…`) inside every VPC namespace
//! that has instances, as on Alibaba Cloud. The caller is identified by its source address,
//! which the port's anti-spoofing rules make unforgeable, so an instance only ever sees its own
//! data. Listeners are bound inside the namespace (a thread enters it with setns(2) just to
//! bind) and served by this process's runtime.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use nimbus_api::{AuditEvent, Auditor};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_core::secret::KeyProvider;
use nimbus_store::{Resource, Store};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

pub struct MetadataServers {
    shared: Arc<Shared>,
    servers: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// An issued role session: (the JSON answer, issued at, expires at), in ms. Kept in memory only.
type IssuedSession = (String, i64, i64);

/// What every listener answers from.
struct Shared {
    store: Store,
    region: String,
    /// Seals the instance-role STS sessions (the region root key, as for AssumeRole).
    keys: Arc<dyn KeyProvider>,
    /// Every credential issue is an ActionTrail event of the instance's account.
    auditor: Arc<dyn Auditor>,
    /// Issued role sessions by (instance, role): (answer, issued at, expires at), in ms. Reused
    /// until a quarter of their life is left, so a polling SDK does not mint a session per poll.
    sessions: Mutex<HashMap<(String, String), IssuedSession>>,
    /// Hardened-mode tokens (`PUT /latest/api/token`): token → (instance, expires at ms). In
    /// memory only: a restart of the region makes guests ask again, as after a token expires.
    tokens: Mutex<HashMap<String, (String, i64)>>,
}

/// Headers of Alibaba's security hardening mode (IMDSv2).
const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
const MAX_TOKEN_TTL_SECS: i64 = 21_600;

/// What the answer needs of a request besides the caller's address.
struct Asked<'a> {
    method: &'a hyper::Method,
    path: &'a str,
    headers: &'a hyper::HeaderMap,
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
    pub fn new(store: Store, region: &str, keys: Arc<dyn KeyProvider>, auditor: Arc<dyn Auditor>) -> Self {
        let shared = Shared {
            store,
            region: region.to_string(),
            keys,
            auditor,
            sessions: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        };
        MetadataServers { shared: Arc::new(shared), servers: Mutex::new(HashMap::new()) }
    }

    /// Makes the VPC's metadata listener exist (idempotent).
    pub async fn ensure(&self, vpc: &str, ns: &str) -> std::io::Result<()> {
        {
            let servers = self.servers.lock().unwrap_or_else(|e| e.into_inner());
            if servers.get(vpc).is_some_and(|h| !h.is_finished()) {
                return Ok(());
            }
        }
        let mut listeners = vec![];
        for a in [nimbus_host::net::METADATA_ADDR, nimbus_host::net::ALIBABA_METADATA_ADDR] {
            let addr = SocketAddr::from((a, 80));
            let ns = ns.to_string();
            let l = tokio::task::spawn_blocking(move || bind_in_namespace(&ns, addr))
                .await
                .map_err(std::io::Error::other)??;
            listeners.push(tokio::net::TcpListener::from_std(l)?);
        }
        let (shared, vpc_id) = (self.shared.clone(), vpc.to_string());
        let handle = tokio::spawn(async move {
            let (a, b) = (&listeners[0], &listeners[1]);
            loop {
                let accepted = tokio::select! { r = a.accept() => r, r = b.accept() => r };
                let Ok((stream, peer)) = accepted else { continue };
                let (shared, vpc_id) = (shared.clone(), vpc_id.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (shared, vpc_id) = (shared.clone(), vpc_id.clone());
                        async move {
                            let asked = Asked { method: req.method(), path: req.uri().path(), headers: req.headers() };
                            let (status, body) = answer(&shared, &vpc_id, peer.ip(), &asked).await;
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
        tracing::info!(vpc, namespace = ns, "metadata service listening on 169.254.169.254:80 and 100.100.100.200:80");
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

/// The answer to a request of the instance at `source` in `vpc`.
async fn answer(shared: &Shared, vpc: &str, source: IpAddr, asked: &Asked<'_>) -> (StatusCode, String) {
    let path = asked.path;
    let (store, region) = (&shared.store, shared.region.as_str());
    let not_found = (StatusCode::NOT_FOUND, "Not Found\n".to_string());
    let Ok(all) = store.all_resources_all_accounts(nimbus_ecs::instance::KIND).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "metadata store unavailable\n".into());
    };
    let src = source.to_string();
    let Some(i) = all.into_iter().find(|i| i.spec["VpcId"] == vpc && i.spec["PrivateIpAddress"] == src.as_str()) else {
        return (StatusCode::FORBIDDEN, "no instance has this address\n".into());
    };
    let s = &i.spec;
    if s["MetadataOptions"]["HttpEndpoint"] == "disabled" {
        return (StatusCode::FORBIDDEN, "the metadata service is disabled for this instance\n".into());
    }
    if let Some(refused) = check_hardening(shared, &i, asked) {
        return refused;
    }
    if asked.method == hyper::Method::PUT {
        return issue_token(shared, &i, asked);
    }
    if asked.method != hyper::Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "GET, or PUT /latest/api/token\n".into());
    }
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
        "/latest/meta-data" => "eipv4\nhostname\nimage-id\ninstance-id\ninstance/\nmac\nnetwork-type\nprivate-ipv4\npublic-ipv4\npublic-keys/\nram/\nregion-id\nvpc-id\nvswitch-id\nzone-id\n".into(),
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
        "/latest/meta-data/ram" => "security-credentials/\n".into(),
        "/latest/meta-data/ram/security-credentials" => match field(&s["RamRoleName"]) {
            r if r.is_empty() => return not_found,
            r => r,
        },
        other => match other.strip_prefix("/latest/meta-data/ram/security-credentials/") {
            Some(role) if !role.is_empty() && role.eq_ignore_ascii_case(&field(&s["RamRoleName"])) => {
                return role_credentials(shared, &i).await;
            }
            _ => return not_found,
        },
    };
    (StatusCode::OK, body)
}

/// Security hardening mode: a token, when sent, must be one this instance was given and not
/// expired; with `HttpTokens=required` every read needs one. Requests that came through a proxy
/// (`X-Forwarded-For`) get no token, so an SSRF through a web proxy in the guest cannot mint one.
fn check_hardening(shared: &Shared, i: &Resource, asked: &Asked<'_>) -> Option<(StatusCode, String)> {
    if asked.method == hyper::Method::PUT {
        return asked
            .headers
            .contains_key("x-forwarded-for")
            .then(|| (StatusCode::FORBIDDEN, "a forwarded request gets no token\n".into()));
    }
    match asked.headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        Some(token) => {
            let now = now_millis();
            let mut tokens = shared.tokens.lock().unwrap_or_else(|e| e.into_inner());
            tokens.retain(|_, (_, exp)| *exp > now);
            match tokens.get(token) {
                Some((owner, _)) if *owner == i.id => None,
                _ => Some((StatusCode::UNAUTHORIZED, "the metadata token is invalid or expired\n".into())),
            }
        }
        None if i.spec["MetadataOptions"]["HttpTokens"] == "required" => {
            Some((StatusCode::UNAUTHORIZED, "this instance requires a metadata token (PUT /latest/api/token)\n".into()))
        }
        None => None,
    }
}

/// `PUT /latest/api/token` with the TTL header (1 to 21600 seconds): a random token bound to the
/// instance.
fn issue_token(shared: &Shared, i: &Resource, asked: &Asked<'_>) -> (StatusCode, String) {
    if asked.path.trim_end_matches('/') != "/latest/api/token" {
        return (StatusCode::METHOD_NOT_ALLOWED, "PUT is only for /latest/api/token\n".into());
    }
    let ttl =
        asked.headers.get(TOKEN_TTL_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let Some(ttl) = ttl.filter(|t| (1..=MAX_TOKEN_TTL_SECS).contains(t)) else {
        return (
            StatusCode::BAD_REQUEST,
            format!("send X-aliyun-ecs-metadata-token-ttl-seconds: 1 to {MAX_TOKEN_TTL_SECS}\n"),
        );
    };
    let token = nimbus_core::ids::access_key_secret();
    shared
        .tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), (i.id.clone(), now_millis() + ttl * 1000));
    (StatusCode::OK, token)
}

/// `/latest/meta-data/ram/security-credentials/<role>`: an STS session of the instance's role, in
/// the JSON Alibaba's SDK credential providers read.
async fn role_credentials(shared: &Shared, i: &Resource) -> (StatusCode, String) {
    let role = i.spec["RamRoleName"].as_str().unwrap_or_default().to_string();
    let key = (i.id.clone(), role.to_ascii_lowercase());
    let now = now_millis();
    if let Some((body, issued, expires)) = shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
        && now < expires - (expires - issued) / 4
    {
        return (StatusCode::OK, body.clone());
    }
    let instance_arn = format!("acs:ecs:{}:{}:instance/{}", shared.region, i.account_id, i.id);
    let policy = i.spec["RamRolePolicy"].as_str().filter(|p| !p.is_empty()).map(str::to_string);
    let issued = nimbus_iam::instance_roles::issue(
        shared.keys.as_ref(),
        &shared.store,
        &i.account_id,
        &role,
        &instance_arn,
        &i.id,
        policy,
    )
    .await;
    let mut event = AuditEvent::incoming(
        format!("metadata.{}", shared.region),
        &shared.region,
        &nimbus_core::ids::request_id(),
        i.spec["PrivateIpAddress"].as_str().and_then(|a| a.parse().ok()).unwrap_or(IpAddr::from([0, 0, 0, 0])),
        None,
    );
    event.event_name = "AssumeRole".into();
    event.service_name = "Sts".into();
    event.event_rw = "Write".into();
    event.account_id = Some(i.account_id.clone());
    event.principal_type = Some("Service".into());
    event.principal_id = Some(nimbus_iam::instance_roles::ECS_SERVICE.into());
    event.principal_name = Some(nimbus_iam::instance_roles::ECS_SERVICE.into());
    event.request_parameters.insert("RoleSessionName".into(), json!(i.id));
    event.request_parameters.insert("RamRoleName".into(), json!(role));
    event.resources = vec![instance_arn];
    let answer = match issued {
        Ok(session) => {
            event.resources.push(session.role_arn.clone());
            event.http_status = 200;
            let body = json!({
                "AccessKeyId": session.access_key_id, "AccessKeySecret": session.access_key_secret,
                "SecurityToken": session.security_token, "Expiration": iso8601(session.expires_at),
                "LastUpdated": iso8601(now), "Code": "Success",
            })
            .to_string();
            shared
                .sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, (body.clone(), now, session.expires_at));
            (StatusCode::OK, body)
        }
        Err(e) => {
            // The role was deleted or no longer trusts ECS: the instance gets no credentials.
            event.http_status = e.status;
            event.set_error(&e, &[]);
            shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
            let body = json!({"Code": e.code, "Message": e.message, "LastUpdated": iso8601(now)}).to_string();
            (StatusCode::NOT_FOUND, body)
        }
    };
    shared.auditor.record(event).await;
    answer
}
