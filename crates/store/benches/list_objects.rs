//! Time to list 1,000 keys from a bucket of 1,000,000 objects (1,000 "directories" of 1,000 keys),
//! with and without a delimiter, on the embedded SQLite store. Prints figures; asserts nothing.
//! Run: cargo bench -p nimbus-store --bench list_objects

use nimbus_store::Store;
use nimbus_store::objects::ObjectRow;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("s.db").display())).await.expect("store");
    let t = Instant::now();
    for d in 0..1000 {
        let rows: Vec<ObjectRow> = (0..1000)
            .map(|j| ObjectRow {
                bucket: "bench".into(),
                key: format!("dir{d:03}/obj{j:04}"),
                size: 1024,
                etag: "e".into(),
                last_modified: 0,
                meta: serde_json::json!({}),
                version_id: "null".into(),
                seq: 0,
            })
            .collect();
        store.put_object_rows(&rows).await.expect("load");
    }
    println!("loaded 1,000,000 object rows in {:.1} s", t.elapsed().as_secs_f64());
    let cases: [(&str, &str, &str, &str); 4] = [
        ("first 1,000 keys, no delimiter", "", "", ""),
        ("1,000 common prefixes at the root, delimiter '/'", "", "", "/"),
        ("1,000 keys under dir500/, delimiter '/'", "dir500/", "", "/"),
        ("1,000 keys from a marker deep in the bucket", "", "dir777/obj0500", ""),
    ];
    for (label, prefix, marker, delim) in cases {
        let mut best = f64::MAX;
        let mut n = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let l = store.list_objects("bench", prefix, marker, delim, 1000).await.expect("list");
            best = best.min(t.elapsed().as_secs_f64());
            n = l.objects.len() + l.common_prefixes.len();
        }
        println!("{label:<52} {n:>5} entries  {:>8.2} ms", best * 1e3);
    }
}
