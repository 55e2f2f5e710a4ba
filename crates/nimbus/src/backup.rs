//! The `store.backup` job: every table of the state store, page by page, into
//! `DIR/backups/<job-id>/<table>.jsonl`, then a `manifest.json` with row counts and SHA-256 digests.
//!
//! Resumable: after each page is written and fsync'd the job checkpoints (table, last key, file
//! length). A job interrupted anywhere — `kill -9` included — resumes on restart: each file is cut
//! back to its checkpointed length and paging continues after the checkpointed key, so no row is
//! lost or written twice. `rows_per_second` paces it so a backup never starves the live control plane.
//!
//! The copy is page-consistent, not a point-in-time snapshot: rows changed while it runs may appear
//! in their old or new form. Secrets stay wrapped by the root key, so a backup is useless without it.

use nimbus_api::BoxFut;
use nimbus_api::{JobControl, JobError, JobHandler};
use nimbus_store::{Job, Store, export};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const KIND: &str = "store.backup";
const PAGE_ROWS: i64 = 200;

pub struct BackupJob {
    pub store: Store,
    pub data_dir: PathBuf,
}

#[derive(Serialize, Deserialize, Default, Debug)]
struct Checkpoint {
    table: usize,
    after: Option<String>,
    rows: i64,
    total: i64,
    /// Length of each table file at the last checkpoint.
    bytes: BTreeMap<String, u64>,
}

/// The job's payload.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct BackupRequest {
    /// 0 = as fast as the store allows.
    #[serde(default)]
    pub rows_per_second: u64,
}

impl BackupJob {
    pub fn dest(&self, job_id: &str) -> PathBuf {
        self.data_dir.join("backups").join(job_id)
    }

    async fn run_job(&self, job: &Job, ctl: &JobControl) -> Result<Value, JobError> {
        let req: BackupRequest =
            serde_json::from_value(job.payload.clone()).map_err(|e| JobError::Permanent(e.to_string()))?;
        let dest = self.dest(&job.id);
        std::fs::create_dir_all(&dest)?;
        let tables = export::tables();
        let mut cp: Checkpoint = match &job.checkpoint {
            Some(v) => {
                serde_json::from_value(v.clone()).map_err(|e| JobError::Permanent(format!("bad checkpoint: {e}")))?
            }
            None => {
                let mut total = 0;
                for t in &tables {
                    total += self.store.count_rows(t).await?;
                }
                Checkpoint { total: total.max(1), ..Default::default() }
            }
        };
        if job.checkpoint.is_some() {
            tracing::info!(
                job = job.id,
                table = tables.get(cp.table).copied().unwrap_or("-"),
                rows = cp.rows,
                "resuming backup from checkpoint"
            );
        }
        let started = Instant::now();
        let rows_at_start = cp.rows;
        while cp.table < tables.len() {
            let table = tables[cp.table];
            let path = dest.join(format!("{table}.jsonl"));
            let file = std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path)?;
            // Drop whatever was written after the last checkpoint: those rows are fetched again.
            file.set_len(cp.bytes.get(table).copied().unwrap_or(0))?;
            let mut file = std::io::BufWriter::new(file);
            use std::io::Seek;
            file.seek(std::io::SeekFrom::End(0))?;
            loop {
                let page = self.store.export_page(table, cp.after.as_deref(), PAGE_ROWS).await?;
                if page.rows.is_empty() {
                    break;
                }
                for row in &page.rows {
                    serde_json::to_writer(&mut file, row)?;
                    file.write_all(b"\n")?;
                }
                file.flush()?;
                file.get_ref().sync_data()?;
                cp.rows += page.rows.len() as i64;
                cp.after = page.last_key;
                cp.bytes.insert(table.to_string(), file.get_ref().metadata()?.len());
                let progress = (cp.rows * 99 / cp.total.max(cp.rows)).min(99);
                ctl.heartbeat(progress, &serde_json::to_value(&cp)?).await?;
                if req.rows_per_second > 0 {
                    // Pace against the whole run, not just this page, so stalls are not repaid in bursts.
                    let due = Duration::from_secs_f64((cp.rows - rows_at_start) as f64 / req.rows_per_second as f64);
                    if let Some(wait) = due.checked_sub(started.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            cp.table += 1;
            cp.after = None;
            ctl.heartbeat((cp.rows * 99 / cp.total.max(cp.rows)).min(99), &serde_json::to_value(&cp)?).await?;
        }
        let mut manifest_tables = vec![];
        for t in &tables {
            let bytes = std::fs::read(dest.join(format!("{t}.jsonl")))?;
            let rows = bytes.iter().filter(|&&b| b == b'\n').count();
            manifest_tables.push(json!({"name": t, "file": format!("{t}.jsonl"), "rows": rows, "sha256": hex::encode(Sha256::digest(&bytes))}));
        }
        let manifest = json!({
            "job_id": job.id,
            "completed_at": nimbus_core::clock::iso8601(nimbus_core::clock::now_millis()),
            "store_backend": format!("{:?}", self.store.backend()),
            "schema_version": nimbus_store::schema_version(),
            "tables": manifest_tables,
        });
        let path = dest.join("manifest.json");
        nimbus_core::secret::write_private_file(&path, serde_json::to_string_pretty(&manifest)?.as_bytes())?;
        Ok(json!({"dest": dest.display().to_string(), "rows": cp.rows, "manifest": path.display().to_string()}))
    }
}

impl JobHandler for BackupJob {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn run<'a>(&'a self, job: &'a Job, ctl: &'a JobControl) -> BoxFut<'a, Result<Value, JobError>> {
        Box::pin(self.run_job(job, ctl))
    }
}
