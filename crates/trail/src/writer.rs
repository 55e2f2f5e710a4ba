//! The group-committing writer and the digest timer.

use crate::chain::{event_body, event_hash};
use crate::signer::TrailKey;
use nimbus_api::{AuditEvent, Auditor, BoxFut};
use nimbus_core::clock::{iso8601, now_millis};
use nimbus_store::Store;
use nimbus_store::trail::{DigestRow, TrailRow};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone, Debug)]
pub struct TrailConfig {
    /// How often a signed digest is written (when there are new events) and trails are delivered.
    pub digest_interval: Duration,
    /// Where trails deliver their files (`DIR/trails`); `None` delivers nothing.
    pub delivery_dir: Option<std::path::PathBuf>,
}

impl Default for TrailConfig {
    fn default() -> Self {
        TrailConfig { digest_interval: Duration::from_secs(60), delivery_dir: None }
    }
}

const MAX_GROUP: usize = 1024;

type Pending = (AuditEvent, oneshot::Sender<()>);

pub struct Trail {
    tx: mpsc::Sender<Pending>,
    digests: mpsc::Sender<oneshot::Sender<()>>,
}

impl Trail {
    /// Starts the writer and the digest timer; both stop when `shutdown` turns true (after writing
    /// what is queued and a final digest).
    pub async fn start(
        store: Store,
        key: TrailKey,
        cfg: TrailConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(Arc<Trail>, tokio::task::JoinHandle<()>), nimbus_store::StoreError> {
        let (seq, hash) = store.trail_head().await?;
        let (tx, rx) = mpsc::channel::<Pending>(8192);
        let (dtx, drx) = mpsc::channel(16);
        let key = Arc::new(key);
        let task = tokio::spawn(run(store, key, cfg, seq, hash, rx, drx, shutdown));
        Ok((Arc::new(Trail { tx, digests: dtx }), task))
    }

    /// Writes a digest now (if there are events it does not yet cover) and waits for it.
    pub async fn digest_now(&self) {
        let (done, wait) = oneshot::channel();
        if self.digests.send(done).await.is_ok() {
            let _ = wait.await;
        }
    }
}

impl Auditor for Trail {
    fn record(&self, mut event: AuditEvent) -> BoxFut<'_, ()> {
        // Whoever produced the event, what is persisted goes through the one redaction.
        event.redact();
        Box::pin(async move {
            let (done, wait) = oneshot::channel();
            if self.tx.send((event, done)).await.is_err() {
                tracing::error!("the trail writer has stopped; an event was not recorded");
                return;
            }
            let _ = wait.await;
        })
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    store: Store,
    key: Arc<TrailKey>,
    cfg: TrailConfig,
    mut seq: i64,
    mut hash: String,
    mut rx: mpsc::Receiver<Pending>,
    mut digest_requests: mpsc::Receiver<oneshot::Sender<()>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(cfg.digest_interval);
    ticker.tick().await;
    loop {
        tokio::select! {
            first = rx.recv() => {
                let Some(first) = first else { break };
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(p) => group.push(p),
                        Err(_) => break,
                    }
                }
                write_group(&store, &mut seq, &mut hash, group).await;
            }
            _ = ticker.tick() => {
                write_digest(&store, &key).await;
                if let Some(d) = &cfg.delivery_dir {
                    crate::deliver::deliver(&store, &key, d).await;
                }
            }
            Some(done) = digest_requests.recv() => {
                write_digest(&store, &key).await;
                if let Some(d) = &cfg.delivery_dir {
                    crate::deliver::deliver(&store, &key, d).await;
                }
                let _ = done.send(());
            }
            _ = shutdown.changed() => {
                rx.close();
                let mut rest = vec![];
                while let Some(p) = rx.recv().await {
                    rest.push(p);
                }
                if !rest.is_empty() {
                    write_group(&store, &mut seq, &mut hash, rest).await;
                }
                write_digest(&store, &key).await;
                if let Some(d) = &cfg.delivery_dir {
                    crate::deliver::deliver(&store, &key, d).await;
                }
                break;
            }
        }
    }
}

async fn write_group(store: &Store, seq: &mut i64, hash: &mut String, group: Vec<Pending>) {
    let (mut s, mut h) = (*seq, hash.clone());
    let mut rows = Vec::with_capacity(group.len());
    for (e, _) in &group {
        s += 1;
        let body = event_body(e).to_string();
        let next = event_hash(&h, s, &body);
        rows.push(TrailRow {
            seq: s,
            event_id: e.event_id.clone(),
            event_time: chrono::DateTime::parse_from_rfc3339(&e.event_time)
                .map(|t| t.timestamp_millis())
                .unwrap_or_else(|_| now_millis()),
            account_id: e.account_id.clone().unwrap_or_default(),
            event_name: e.event_name.clone(),
            service_name: e.service_name.clone(),
            event_rw: e.event_rw.clone(),
            access_key_id: e.access_key_id.clone().unwrap_or_default(),
            user_name: e.principal_name.clone().unwrap_or_default(),
            resource_name: e.resources.first().cloned().unwrap_or_default(),
            error_code: e.error_code.clone().unwrap_or_default(),
            body,
            prev_hash: h.clone(),
            hash: next.clone(),
        });
        h = next;
    }
    match store.append_trail(&rows).await {
        Ok(()) => {
            *seq = s;
            *hash = h;
        }
        Err(e) => tracing::error!(error = %e, events = rows.len(), "could not append to the trail"),
    }
    for (_, done) in group {
        let _ = done.send(());
    }
}

async fn write_digest(store: &Store, key: &TrailKey) {
    let result: Result<(), nimbus_store::StoreError> = async {
        let (head_seq, head_hash) = store.trail_head().await?;
        let previous = store.digests().await?.pop();
        let (prev_end, prev_sig, next_seq) = match &previous {
            Some(d) => {
                let body: serde_json::Value = serde_json::from_str(&d.body)?;
                (body["endSeq"].as_i64().unwrap_or(0), d.signature.clone(), d.seq + 1)
            }
            None => (0, String::new(), 1),
        };
        if head_seq <= prev_end {
            return Ok(());
        }
        let body = json!({
            "digestSeq": next_seq,
            "startSeq": prev_end + 1,
            "endSeq": head_seq,
            "endHash": head_hash,
            "previousDigestSignature": prev_sig,
            "createdAt": iso8601(now_millis()),
            "publicKey": key.public_hex(),
        })
        .to_string();
        let signature = key.sign(body.as_bytes());
        store.append_digest(&DigestRow { seq: next_seq, body, signature }).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not write a trail digest");
    }
}
