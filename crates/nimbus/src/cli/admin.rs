//! Operator commands that work on the state store directly (the region may be running).

use crate::backup::{BackupRequest, KIND as BACKUP};
use crate::config::{StoreArgs, resolve_store};
use anyhow::{Context, Result, bail};
use nimbus_store::{JobState, NewJob, Store};
use std::io::Write;
use std::time::Duration;

#[derive(clap::Subcommand, Debug)]
pub enum AdminCommand {
    /// Back up the state store into DIR/backups/<job-id>/ (run by the region's job worker).
    Backup {
        #[command(flatten)]
        store: StoreArgs,
        /// Pace the copy so it never starves the live control plane (0 = no limit).
        #[arg(long, default_value_t = 0)]
        rows_per_second: u64,
        /// Wait for the job and show its progress.
        #[arg(long)]
        wait: bool,
    },
    /// List recent jobs, or show one.
    Jobs {
        #[command(flatten)]
        store: StoreArgs,
        /// A job id to show in full.
        id: Option<String>,
    },
}

pub async fn run(cmd: AdminCommand) -> Result<i32> {
    match cmd {
        AdminCommand::Backup { store, rows_per_second, wait } => {
            let (_dir, url) = resolve_store(&store)?;
            let s = Store::open(&url).await.context("opening the state store")?;
            let job = s
                .enqueue_job(&NewJob {
                    kind: BACKUP.into(),
                    account_id: String::new(),
                    payload: serde_json::to_value(BackupRequest { rows_per_second })?,
                    max_attempts: 5,
                })
                .await?;
            println!("{}", job.id);
            if !wait {
                eprintln!("Backup job {} queued; `nimbus admin jobs {}` shows its progress.", job.id, job.id);
                return Ok(0);
            }
            wait_for(&s, &job.id).await
        }
        AdminCommand::Jobs { store, id } => {
            let (_dir, url) = resolve_store(&store)?;
            let s = Store::open(&url).await.context("opening the state store")?;
            match id {
                Some(id) => {
                    let j = s.get_job(&id).await.with_context(|| format!("no job {id}"))?;
                    println!("{}", serde_json::to_string_pretty(&job_json(&j))?);
                }
                None => {
                    for j in s.list_jobs(50).await? {
                        println!(
                            "{}  {:<12}  {:<9}  {:>3}%  attempts {}",
                            j.id,
                            j.kind,
                            j.state.as_str(),
                            j.progress,
                            j.attempts
                        );
                    }
                }
            }
            Ok(0)
        }
    }
}

fn job_json(j: &nimbus_store::Job) -> serde_json::Value {
    serde_json::json!({
        "Id": j.id, "Kind": j.kind, "State": j.state.as_str(), "Progress": j.progress, "Attempts": j.attempts,
        "MaxAttempts": j.max_attempts, "Result": j.result, "LastError": j.last_error, "Checkpoint": j.checkpoint,
    })
}

/// Shows a progress bar on stderr until the job ends; exit code 0 if it succeeded.
async fn wait_for(s: &Store, id: &str) -> Result<i32> {
    let mut err = std::io::stderr();
    loop {
        let j = s.get_job(id).await?;
        let filled = (j.progress.clamp(0, 100) / 5) as usize;
        write!(err, "\r[{}{}] {:>3}%  {}", "#".repeat(filled), ".".repeat(20 - filled), j.progress, j.state.as_str())?;
        err.flush()?;
        match j.state {
            JobState::Succeeded => {
                writeln!(err)?;
                println!("{}", serde_json::to_string_pretty(&job_json(&j))?);
                return Ok(0);
            }
            JobState::Failed => {
                writeln!(err)?;
                bail!("job {id} failed: {}", j.last_error.unwrap_or_default());
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
