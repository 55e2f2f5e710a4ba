//! Choosing and opening the region root key provider.

use crate::config::StoreArgs;
use anyhow::{Context, Result, bail};
use nimbus_core::secret::{FileKeyProvider, KeyProvider, PassphraseKeyProvider};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

/// Opens the root key of `dir` with the provider the data directory was created with.
pub fn open(dir: &Path, args: &StoreArgs) -> Result<Arc<dyn KeyProvider>> {
    let file = dir.join("root.key");
    let sealed = dir.join("root.key.sealed");
    let marker = dir.join("root.key.pkcs11");
    let default = if sealed.exists() {
        "passphrase"
    } else if marker.exists() {
        "pkcs11"
    } else {
        "file"
    };
    let wanted = args.root_key_provider.as_deref().unwrap_or(default);
    if wanted != default && default == "passphrase" {
        bail!("{} is sealed with a passphrase: start with --root-key-provider passphrase", dir.display());
    }
    if wanted != default && (file.exists() || marker.exists()) {
        bail!(
            "{} was created with the {default} root key provider; moving the root key to another provider is not supported yet",
            dir.display()
        );
    }
    match wanted {
        "pkcs11" => {
            // Module and token default to what this data directory was created with (the PIN is never stored).
            let recorded: serde_json::Value =
                std::fs::read_to_string(&marker).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
            let module = args
                .pkcs11_module
                .clone()
                .or_else(|| recorded["module"].as_str().map(Into::into))
                .context("--pkcs11-module is needed for --root-key-provider pkcs11")?;
            let token = args
                .pkcs11_token
                .clone()
                .or_else(|| recorded["token"].as_str().map(Into::into))
                .unwrap_or_else(|| "nimbus".into());
            let pin = match &args.pkcs11_pin_file {
                Some(f) => {
                    std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?.trim().to_string()
                }
                None => std::env::var("NIMBUS_PKCS11_PIN")
                    .context("give the token PIN with --pkcs11-pin-file or $NIMBUS_PKCS11_PIN")?,
            };
            let p = crate::pkcs11::Pkcs11Provider::open(&module, &token, &pin)?;
            // Remember the choice (the key itself stays in the token).
            std::fs::write(
                &marker,
                serde_json::json!({"module": module.display().to_string(), "token": token}).to_string(),
            )?;
            Ok(Arc::new(p))
        }
        "file" => {
            // A sealed directory never gets here: its default is `passphrase`, refused above.
            Ok(Arc::new(FileKeyProvider::load_or_create(&file).context("loading the region root key")?))
        }
        "passphrase" => {
            if file.exists() {
                bail!(
                    "{} keeps its root key in {}: moving the root key to another provider is not supported yet",
                    dir.display(),
                    file.display()
                );
            }
            let pass = passphrase(args)?;
            let p = PassphraseKeyProvider::load_or_create(&sealed, &pass).map_err(|e| match e {
                nimbus_core::secret::KeyError::Unwrap => {
                    anyhow::anyhow!("wrong passphrase for {}: the region stays sealed", sealed.display())
                }
                other => anyhow::anyhow!(other),
            })?;
            Ok(Arc::new(p))
        }
        other => bail!("--root-key-provider {other:?}: use file or passphrase"),
    }
}

fn passphrase(args: &StoreArgs) -> Result<String> {
    if let Some(f) = &args.passphrase_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading the passphrase file {}", f.display()))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    if let Ok(p) = std::env::var("NIMBUS_ROOT_PASSPHRASE") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        eprint!("Root key passphrase: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    bail!(
        "the region root key is sealed with a passphrase and none was given (--passphrase-file, $NIMBUS_ROOT_PASSPHRASE, or run on a terminal): the region stays sealed"
    )
}
