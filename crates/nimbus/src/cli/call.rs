//! `nimbus <product> <Action> [--Param value]…`: a signed call, like `aliyun <product> <Action>`.
//!
//! Lowercase options belong to the CLI (`--profile`, `--output`, `--endpoint`, `--region`,
//! `--version`); every option starting with an uppercase letter is an API parameter.

use super::configure;
use super::output::{self, Output};
use crate::client::{RpcClient, product_list, version_of};
use anyhow::{Context, Result, bail};

pub const USAGE: &str = "usage: nimbus <product> <Action> [--Param value]... [--profile NAME] [--output json|table] [--endpoint URL] [--region ID] [--version YYYY-MM-DD]";

/// Runs the call; returns the process exit code.
pub fn run(args: &[String]) -> Result<i32> {
    let (product, action) = match args {
        [p, a, ..] => (p.as_str(), a.as_str()),
        _ => bail!("{USAGE}"),
    };
    let mut params: Vec<(String, String)> = vec![];
    let (mut profile_name, mut out, mut endpoint, mut region, mut version) = (None, Output::Json, None, None, None);
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let Some(name) = flag.strip_prefix("--") else { bail!("unexpected argument {flag:?}\n{USAGE}") };
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let value = match inline {
            Some(v) => v,
            None => rest.next().with_context(|| format!("--{name} needs a value"))?.clone(),
        };
        match name {
            "profile" => profile_name = Some(value),
            "output" => out = value.parse()?,
            "endpoint" => endpoint = Some(value),
            "region" => region = Some(value),
            "version" => version = Some(value),
            n if n.starts_with(|c: char| c.is_ascii_uppercase()) => params.push((n.to_string(), value)),
            other => bail!("unknown option --{other} (API parameters start with an uppercase letter)\n{USAGE}"),
        }
    }
    let version = match version {
        Some(v) => v,
        None => version_of(product)
            .with_context(|| format!("unknown product {product:?}; this region serves: {}", product_list()))?
            .to_string(),
    };
    let p = configure::profile(profile_name.as_deref())?;
    let ca = match &p.ca_file {
        Some(f) => Some(std::fs::read(f).with_context(|| format!("reading CA file {}", f.display()))?),
        None => None,
    };
    let region = region.unwrap_or(p.region.clone());
    if !params.iter().any(|(k, _)| k == "RegionId") {
        params.push(("RegionId".into(), region));
    }
    let client = RpcClient::new(
        endpoint.as_deref().unwrap_or(&p.endpoint),
        &p.access_key_id,
        &p.access_key_secret,
        ca.as_deref(),
    )?;
    let reply = client.call(&version, action, &params)?;
    if (200..300).contains(&reply.status) {
        output::print(&reply.body, out)?;
        return Ok(0);
    }
    let code = reply.code().unwrap_or("UnknownError");
    let msg = reply.body.get("Message").and_then(|v| v.as_str()).unwrap_or("");
    eprintln!("Error: {code} (HTTP {}): {msg}", reply.status);
    if let Some(rid) = reply.body.get("RequestId").and_then(|v| v.as_str()) {
        eprintln!("RequestId: {rid}");
    }
    if let Some(hint) = hint(code) {
        eprintln!("Hint: {hint}");
    }
    Ok(1)
}

fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "InvalidAccessKeyId.NotFound" | "SignatureDoesNotMatch" => {
            "check the profile's AccessKey (`nimbus configure --from-data-dir DIR` for a local region)"
        }
        "InvalidTimeStamp.Expired" => "this machine's clock is more than 15 minutes off the region's",
        "Throttling.User" => "too many requests with this AccessKey; wait and retry",
        "InvalidAction.NotFound" | "InvalidVersion" => "check the action's spelling and the product name",
        _ => return None,
    })
}
