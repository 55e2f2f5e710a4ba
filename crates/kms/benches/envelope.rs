//! Envelope encryption throughput next to raw AES-256-GCM on the same machine: 64 MiB sealed in
//! 1 MiB blocks (as OSS would seal object blocks), once through the envelope API (a data key
//! generated under a master key, then AES-256-GCM per block with the block number as AAD), once
//! with aes-gcm directly. The ratio is the figure that matters. Run: cargo bench -p nimbus-kms

use nimbus_api::LogAuditor;
use nimbus_core::region::Region;
use nimbus_core::secret::FileKeyProvider;
use nimbus_kms::envelope::{self, Envelope};
use nimbus_kms::keystore;
use nimbus_store::Store;
use std::sync::Arc;
use std::time::Instant;

const TOTAL: usize = 64 << 20;
const BLOCK: usize = 1 << 20;
const ROUNDS: usize = 5;

fn gbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
    let keys: Arc<dyn nimbus_core::secret::KeyProvider> =
        Arc::new(FileKeyProvider::load_or_create(&dir.path().join("root.key")).expect("key"));
    let key = store
        .repo::<nimbus_kms::model::Key>()
        .create(&keystore::new_key(keys.as_ref(), "1000000000000001", "local-1", "bench"))
        .await
        .expect("key");
    let env = Envelope { store, keys, auditor: Arc::new(LogAuditor), region: Arc::new(Region::local_default()) };
    let data = vec![0x5au8; TOTAL];
    let ctx = serde_json::Map::new();

    // Envelope: a fresh data key per round (as per object), then every block sealed with it.
    let mut best_env = f64::MAX;
    let mut best_open = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let dk = env.generate_data_key("1000000000000001", &key.id, &ctx, "bench").await.expect("data key");
        for (i, b) in data.chunks(BLOCK).enumerate() {
            std::hint::black_box(envelope::seal(&dk.plaintext, &(i as u64).to_be_bytes(), b));
        }
        best_env = best_env.min(t.elapsed().as_secs_f64());
        let sealed: Vec<Vec<u8>> = data
            .chunks(BLOCK)
            .enumerate()
            .map(|(i, b)| envelope::seal(&dk.plaintext, &(i as u64).to_be_bytes(), b))
            .collect();
        let t = Instant::now();
        let k = env.decrypt_data_key("1000000000000001", &dk.blob, &ctx, "bench").await.expect("unwrap");
        let n: usize = sealed
            .iter()
            .enumerate()
            .map(|(i, s)| std::hint::black_box(envelope::open(&k, &(i as u64).to_be_bytes(), s).expect("open")).len())
            .sum();
        assert_eq!(n, TOTAL);
        best_open = best_open.min(t.elapsed().as_secs_f64());
    }

    // Raw AES-256-GCM, same blocks, same AAD, no key management.
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let cipher = aes_gcm::Aes256Gcm::new(&aes_gcm::Key::<aes_gcm::Aes256Gcm>::from([7u8; 32]));
    let mut best_raw = f64::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for (i, b) in data.chunks(BLOCK).enumerate() {
            let nonce = aes_gcm::Nonce::from([i as u8; 12]);
            std::hint::black_box(
                cipher.encrypt(&nonce, Payload { msg: b, aad: &(i as u64).to_be_bytes() }).expect("encrypt"),
            );
        }
        best_raw = best_raw.min(t.elapsed().as_secs_f64());
    }
    println!("Envelope encryption vs raw AES-256-GCM: 64 MiB in 1 MiB blocks, best of {ROUNDS}, one core");
    println!("raw AES-256-GCM seal                {:>6.2} GB/s", gbps(TOTAL, best_raw));
    println!(
        "envelope seal (new data key + seal) {:>6.2} GB/s   ratio {:.2}",
        gbps(TOTAL, best_env),
        best_raw / best_env
    );
    println!(
        "envelope open (unwrap key + open)   {:>6.2} GB/s   ratio {:.2}",
        gbps(TOTAL, best_open),
        best_raw / best_open
    );
}
