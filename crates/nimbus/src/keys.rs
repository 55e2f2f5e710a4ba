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
    let wanted = args.root_key_provider.as_deref().unwrap_or(if sealed.exists() { "passphrase" } else { "file" });
    match wanted {
        "file" => {
            if sealed.exists() {
                bail!("{} is sealed with a passphrase: start with --root-key-provider passphrase", dir.display());
            }
            Ok(Arc::new(FileKeyProvider::load_or_create(&file).context("loading the region root key")?))
        }
        "passphrase" => {
            if file.exists() {
                bail!(
                    "{} keeps its root key in {}: changing providers needs a root key rotation, which is not supported yet",
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
