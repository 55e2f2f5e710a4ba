//! Operator commands that work on the state store directly (the region may be running).

use crate::backup::{BackupRequest, KIND as BACKUP};
use crate::config::{StoreArgs, resolve_store};
use anyhow::{Context, Result, bail};
use nimbus_store::{JobState, NewJob, Store};
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
    /// Tenant accounts: each has its own root AccessKey and sees only its own resources.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Every action this region serves, as JSON (product, version, action, RAM action).
    Actions {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rotate the region root key while the region runs: a new generation becomes current and every
    /// stored secret is re-wrapped under it (older generations stay readable for tokens in flight).
    RotateRootKey {
        #[command(flatten)]
        store: StoreArgs,
        /// Only re-wrap values still under older generations (e.g. written by the region before it
        /// noticed the rotation); add no generation.
        #[arg(long)]
        rewrap_only: bool,
    },
    /// System images the region builds from Debian's packages.
    #[command(subcommand)]
    Image(ImageCommand),
    /// List recent jobs, or show one.
    Jobs {
        #[command(flatten)]
        store: StoreArgs,
        /// A job id to show in full.
        id: Option<String>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Build (or rebuild) a system image and store it in OSS with its SHA-256 digests, showing
    /// a progress bar. The region must be running (its job worker builds it). Images:
    /// nimbus_busybox_x64_dropbear (built at first start), debian_12_x64_nimbus (debootstrap from
    /// this host's Debian mirror; about a minute and a half here, packages cached for rebuilds).
    Build {
        #[command(flatten)]
        store: StoreArgs,
        /// The image id.
        id: String,
        /// Build again even if the image is Available (instances keep their own disks).
        #[arg(long)]
        rebuild: bool,
        /// Queue the build and return at once (prints the job id).
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum AccountCommand {
    /// Create a tenant account; prints its root credentials once, as JSON.
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A unique name for the account.
        #[arg(long)]
        name: String,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: its keys and sessions stop working at once (cached keys within 10 s).
    Disable {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
    /// Enable a disabled account again.
    Enable {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
}

async fn open(store: &StoreArgs) -> Result<(std::path::PathBuf, Store)> {
    let (dir, url) = resolve_store(store)?;
    let s = Store::open(&url).await.context("opening the state store")?;
    Ok((dir, s))
}

fn root_key(dir: &std::path::Path, args: &StoreArgs) -> Result<std::sync::Arc<dyn nimbus_core::secret::KeyProvider>> {
    crate::keys::open(dir, args)
}

async fn account(cmd: AccountCommand) -> Result<i32> {
    match cmd {
        AccountCommand::Create { store, name } => {
            let (dir, s) = open(&store).await?;
            let keys = root_key(&dir, &store)?;
            let creds = match nimbus_iam::accounts::create_tenant(&s, keys.as_ref(), &name).await {
                Err(nimbus_store::StoreError::AlreadyExists) => bail!("an account named {name:?} already exists"),
                other => other?,
            };
            println!("{}", serde_json::to_string_pretty(&creds)?);
            eprintln!("Account {} created. Its AccessKey secret is shown only now.", creds.account_id);
        }
        AccountCommand::List { store } => {
            let (_, s) = open(&store).await?;
            for a in s.list_accounts().await? {
                println!("{}  {:<8}  {}", a.id, a.status, a.name);
            }
        }
        AccountCommand::Disable { store, id } => {
            let (_, s) = open(&store).await?;
            s.set_account_status(&id, "Disabled").await.with_context(|| format!("no account {id}"))?;
            eprintln!("Account {id} disabled.");
        }
        AccountCommand::Enable { store, id } => {
            let (_, s) = open(&store).await?;
            s.set_account_status(&id, "Enabled").await.with_context(|| format!("no account {id}"))?;
            eprintln!("Account {id} enabled.");
        }
    }
    Ok(0)
}

pub async fn run(cmd: AdminCommand) -> Result<i32> {
    match cmd {
        AdminCommand::Account(a) => account(a).await,
        AdminCommand::Image(ImageCommand::Build { store, id, rebuild, no_wait }) => {
            let Some(sys) = nimbus_ecs_agent::SYSTEM_IMAGES.iter().find(|i| i.id == id) else {
                let known: Vec<&str> = nimbus_ecs_agent::SYSTEM_IMAGES.iter().map(|i| i.id).collect();
                bail!("{id} is not a system image; these are: {}", known.join(", "));
            };
            let (_, s) = open(&store).await?;
            let root = s
                .list_accounts()
                .await?
                .into_iter()
                .find(|a| a.name == crate::bootstrap::ROOT_ACCOUNT_NAME)
                .context("the region has no root account yet: start it once with `nimbus up`")?;
            let job = s
                .enqueue_job(&NewJob {
                    kind: nimbus_ecs_agent::BUILD_IMAGE_JOB.into(),
                    account_id: root.id,
                    payload: serde_json::json!({"ImageId": sys.id, "Rebuild": rebuild}),
                    max_attempts: 3,
                })
                .await?;
            println!("{}", job.id);
            if no_wait {
                eprintln!("Image build job {} queued; `nimbus admin jobs {}` shows its progress.", job.id, job.id);
                return Ok(0);
            }
            eprintln!("Building {} ({})…", sys.id, sys.name);
            wait_for(&s, &job.id).await
        }
        AdminCommand::RotateRootKey { store, rewrap_only } => {
            let (dir, s) = open(&store).await?;
            let keys = root_key(&dir, &store)?;
            let r = crate::rotate::rotate(&dir, &s, keys.as_ref(), rewrap_only).await?;
            println!(
                "root key generation {} is current; re-wrapped {} AccessKey secrets, {} KMS key versions, {} MFA seeds, {} key files",
                r.generation, r.access_keys, r.key_versions, r.mfa_seeds, r.files
            );
            Ok(0)
        }
        AdminCommand::Actions { store } => {
            let (dir, s) = open(&store).await?;
            let keys = root_key(&dir, &store)?;
            let creds = std::sync::Arc::new(nimbus_iam::StoreCredentials::new(s.clone(), keys.clone()));
            let reg = crate::up::registry(&keys, &creds, nimbus_iam::StsConfig::default());
            let list: Vec<serde_json::Value> = reg
                .all_actions()
                .map(|(svc, a)| {
                    let resources: Vec<serde_json::Value> = svc
                        .resource_params(a)
                        .iter()
                        .map(|r| serde_json::json!({"Param": r.param, "Kind": r.kind, "Form": format!("{:?}", r.form), "RamAction": r.ram_action.unwrap_or(a.ram_action)}))
                        .collect();
                    serde_json::json!({"Product": svc.product(), "Version": svc.version(), "Action": a.name, "RamAction": a.ram_action, "Access": a.access.as_str(), "Resources": resources})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(0)
        }
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

/// Shows a progress bar on stderr until the job ends (with the step the job reports as
/// `checkpoint.Step`); on a non-terminal, one line per step instead. Exit code 0 if it succeeded.
async fn wait_for(s: &Store, id: &str) -> Result<i32> {
    use indicatif::{ProgressBar, ProgressStyle};
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(100);
    bar.set_style(
        ProgressStyle::with_template("[{bar:40}] {pos:>3}%  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#>."),
    );
    if !tty {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last_line = String::new();
    loop {
        let j = s.get_job(id).await?;
        let step = match j.state {
            JobState::Succeeded => "done".to_string(),
            _ => j.checkpoint.as_ref().and_then(|c| c["Step"].as_str()).unwrap_or(j.state.as_str()).to_string(),
        };
        bar.set_position(j.progress.clamp(0, 100) as u64);
        bar.set_message(step.clone());
        let line = format!("{:>3}%  {step}", j.progress.clamp(0, 100));
        if !tty && line != last_line {
            eprintln!("{line}");
            last_line = line;
        }
        match j.state {
            JobState::Succeeded => {
                bar.finish_with_message("done");
                println!("{}", serde_json::to_string_pretty(&job_json(&j))?);
                return Ok(0);
            }
            JobState::Failed => {
                bar.abandon_with_message("failed");
                bail!("job {id} failed: {}", j.last_error.unwrap_or_default());
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum TrailCommand {
    /// Check the whole ActionTrail: the hash chain of events and the signed digests. Names the first
    /// bad record and exits 1 if anything was edited, deleted, reordered or truncated.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// The trail public key (hex) to trust; by default DIR/trail-public.key. Pin it from a copy
        /// kept elsewhere to guard against a replaced key file.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Check a delivered trail folder (DIR/trails/<account>/<trail>) instead of the store.
        #[arg(long, value_name = "FOLDER")]
        delivered: Option<std::path::PathBuf>,
    },
}

pub async fn trail(cmd: TrailCommand) -> Result<i32> {
    let TrailCommand::Verify { store, public_key, delivered } = cmd;
    let (dir, s) = open(&store).await?;
    let public = match public_key {
        Some(k) => k,
        None => std::fs::read_to_string(dir.join("trail-public.key"))
            .with_context(|| format!("reading {}/trail-public.key (or pass --public-key)", dir.display()))?
            .trim()
            .to_string(),
    };
    if let Some(folder) = delivered {
        return Ok(match nimbus_trail::verify_delivered(&folder, &public) {
            Ok(n) => {
                println!("delivered trail verified: {n} signed digests and their event files, no tampering found");
                0
            }
            Err(problem) => {
                println!("delivered trail verification FAILED at {problem}");
                1
            }
        });
    }
    let report = nimbus_trail::verify(&s, &public).await?;
    match report.problem {
        None => {
            println!("trail verified: {} events, {} signed digests, no tampering found", report.events, report.digests);
            Ok(0)
        }
        Some(p) => {
            println!("trail verification FAILED at {p}");
            println!("({} events and {} digests read before the check stopped)", report.events, report.digests);
            Ok(1)
        }
    }
}
