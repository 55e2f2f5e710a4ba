//! `nimbus`: brings a region up, and is the command line for it.

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use nimbus::cli::{admin, call, configure, oss};
use nimbus::config::{Settings, UpArgs};

#[derive(Parser)]
#[command(
    name = "nimbus",
    version,
    about = "Nimbus: a private cloud you run on your own machines and use as you use Alibaba Cloud."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring a region up on this machine (first start creates keys, CA and the root AccessKey).
    Up(Box<UpArgs>),
    /// Save a CLI profile: endpoint, AccessKey and CA.
    Configure(configure::ConfigureArgs),
    /// Operator commands on the state store.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// ActionTrail integrity.
    #[command(subcommand)]
    Trail(admin::TrailCommand),
    /// Object storage: mb, ls, cp, rm, presign; fsck for operators.
    #[command(subcommand)]
    Oss(oss::OssCommand),
    #[command(external_subcommand)]
    Call(Vec<String>),
}

/// The API calls, which clap cannot list (they are an external subcommand): every product served.
fn calls_help() -> String {
    let products: Vec<String> = nimbus::client::PRODUCTS
        .iter()
        .map(|(p, v)| format!("  {p:<12} nimbus {p} <Action> [--Param value]...   (API {v})"))
        .collect();
    format!(
        "API calls (signed with the profile `nimbus configure` saved; `--output table`, `--profile`, `--endpoint`):\n{}\n  e.g. nimbus ecs DescribeRegions --output table",
        products.join("\n")
    )
}

fn main() {
    // `nimbus up --help` ends with what this host offers VMs (read now, cheaply; the accelerator
    // itself is chosen by the probe boot at start).
    let cmd = Cli::command().after_help(calls_help()).mut_subcommand("up", |up| up.after_help(host_facts()));
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let code = match run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    nimbus::install_crypto_provider();
    match cli.command {
        Command::Up(args) => {
            let settings = Settings::resolve(&args)?;
            init_logging(&settings.log);
            runtime()?.block_on(nimbus::up::run(settings))?;
            Ok(0)
        }
        Command::Configure(a) => {
            configure::run(a)?;
            Ok(0)
        }
        Command::Admin(cmd) => {
            init_logging("warn");
            runtime()?.block_on(admin::run(cmd))
        }
        Command::Trail(cmd) => {
            init_logging("warn");
            runtime()?.block_on(admin::trail(cmd))
        }
        Command::Oss(cmd) => {
            init_logging("warn");
            runtime()?.block_on(oss::run(cmd))
        }
        Command::Call(args) => call::run(&args),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Logs go to stderr; stdout carries only what a script may read (endpoints, `ready`, results).
fn init_logging(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(ansi)
        .try_init();
}

/// This host's VM facts for `nimbus up --help`.
fn host_facts() -> String {
    let kvm = match std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        Ok(_) => "/dev/kvm opens: `--accel auto` boots a probe VM under KVM at start and falls back to TCG \
                  if it does not reach its init in time"
            .to_string(),
        Err(e) => format!("/dev/kvm unusable ({e}): VMs run under TCG (software emulation)"),
    };
    let cgroups = match nimbus_host::cgroup::Cgroups::detect("nimbus") {
        Ok(c) => format!("instance vCPU/memory limits through {}", c.describe()),
        Err(why) => format!("no instance limits beyond QEMU's -smp/-m: {why}"),
    };
    let qemu = match nimbus_host::vm::Toolchain::find() {
        Ok(t) => format!("QEMU {}", t.qemu.display()),
        Err(e) => format!("no VM toolchain: {e}: {}", nimbus_host::vm::INSTALL_HINT),
    };
    format!("This host:\n  {kvm}\n  {cgroups}\n  {qemu}")
}
