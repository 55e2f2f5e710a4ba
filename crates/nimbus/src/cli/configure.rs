//! `nimbus configure`: named profiles in `~/.nimbus/config.toml` (or `$NIMBUS_CLI_CONFIG`), 0600.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Profile {
    pub endpoint: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    pub region: String,
    /// CA certificate to trust for https endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// OSS endpoint (`nimbus oss …`), e.g. https://127.0.0.1:9443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oss_endpoint: Option<String>,
}

#[derive(Serialize, Deserialize, Default, Debug)]
pub struct ProfileFile {
    #[serde(default = "default_name")]
    pub current: String,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

fn default_name() -> String {
    "default".into()
}

pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("NIMBUS_CLI_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let home = dirs::home_dir().context("no home directory: set NIMBUS_CLI_CONFIG")?;
    Ok(home.join(".nimbus").join("config.toml"))
}

pub fn load() -> Result<ProfileFile> {
    let p = path()?;
    if !p.exists() {
        return Ok(ProfileFile { current: default_name(), ..Default::default() });
    }
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not a valid profile file", p.display()))
}

/// The profile to use: `name`, else the current one.
pub fn profile(name: Option<&str>) -> Result<Profile> {
    let f = load()?;
    let name = name.unwrap_or(&f.current);
    f.profiles.get(name).cloned().with_context(|| {
        format!("no profile {name:?}: run `nimbus configure --profile {name}` (or `nimbus configure --from-data-dir ./nimbus-data`)")
    })
}

#[derive(clap::Args, Debug)]
pub struct ConfigureArgs {
    /// Profile to write.
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// Take endpoint, root AccessKey and CA from a local region's data directory.
    #[arg(long, value_name = "DIR")]
    pub from_data_dir: Option<PathBuf>,
    /// OpenAPI endpoint, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// Prefer the interactive prompt or --from-data-dir: a flag stays in your shell history.
    #[arg(long)]
    pub access_key_secret: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// OSS endpoint, e.g. https://127.0.0.1:9443.
    #[arg(long)]
    pub oss_endpoint: Option<String>,
}

pub fn run(a: ConfigureArgs) -> Result<()> {
    let mut p = match &a.from_data_dir {
        Some(dir) => from_data_dir(dir)?,
        None => Profile::default(),
    };
    if let Some(v) = a.endpoint {
        p.endpoint = v;
    }
    if let Some(v) = a.access_key_id {
        p.access_key_id = v;
    }
    if let Some(v) = a.access_key_secret {
        p.access_key_secret = v;
    }
    if let Some(v) = a.region {
        p.region = v;
    }
    if a.ca_file.is_some() {
        p.ca_file = a.ca_file;
    }
    if a.oss_endpoint.is_some() {
        p.oss_endpoint = a.oss_endpoint;
    }
    if p.region.is_empty() {
        p.region = "local-1".into();
    }
    let stdin = std::io::stdin();
    for (label, field) in [
        ("Endpoint (e.g. https://127.0.0.1:8443)", &mut p.endpoint),
        ("AccessKey Id", &mut p.access_key_id),
        ("AccessKey Secret", &mut p.access_key_secret),
    ] {
        if field.is_empty() {
            if !stdin.is_terminal() {
                bail!("{label} is missing: pass it as a flag or use --from-data-dir");
            }
            eprint!("{label}: ");
            std::io::stderr().flush()?;
            let mut line = String::new();
            stdin.lock().read_line(&mut line)?;
            *field = line.trim().to_string();
        }
    }
    if !p.endpoint.starts_with("http://") && !p.endpoint.starts_with("https://") {
        bail!("endpoint {:?} must start with http:// or https://", p.endpoint);
    }
    let mut f = load()?;
    f.profiles.insert(a.profile.clone(), p.clone());
    f.current = a.profile.clone();
    save(&f)?;
    eprintln!(
        "Profile {:?} saved to {} (endpoint {}, AccessKey {}).",
        a.profile,
        path()?.display(),
        p.endpoint,
        p.access_key_id
    );
    Ok(())
}

fn from_data_dir(dir: &Path) -> Result<Profile> {
    let creds: crate::bootstrap::RootCredentials = serde_json::from_str(
        &std::fs::read_to_string(dir.join("root-credentials"))
            .with_context(|| format!("reading {}/root-credentials", dir.display()))?,
    )?;
    let ep: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("endpoints.json")).with_context(|| {
            format!("reading {}/endpoints.json: has the region been started once?", dir.display())
        })?)?;
    Ok(Profile {
        endpoint: ep["OpenApiHttps"].as_str().unwrap_or_default().to_string(),
        access_key_id: creds.access_key_id.clone(),
        access_key_secret: creds.access_key_secret.clone(),
        region: ep["Region"].as_str().unwrap_or("local-1").to_string(),
        ca_file: Some(dir.canonicalize()?.join("ca.pem")),
        oss_endpoint: ep["OssHttps"].as_str().map(str::to_string),
    })
}

fn save(f: &ProfileFile) -> Result<()> {
    let p = path()?;
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    nimbus_core::secret::write_private_file(&p, toml::to_string_pretty(f)?.as_bytes())
        .with_context(|| format!("writing {}", p.display()))
}
