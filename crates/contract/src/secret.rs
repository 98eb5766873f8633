//! Secrets of the contract: webhook secrets and vendor credentials. Each is written in the
//! contract as `env:NAME` (read from the environment) or `file:PATH` (read from a file that
//! only its owner may read), or, for trying things out, in clear. Once read they live in types
//! whose `Debug` never shows them, so no log line or panic message can carry one.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A vendor API's credentials and account settings by name. Some are secrets and some are
/// not (an account id); all are kept out of `Debug`, which shows the names only.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Credentials(BTreeMap<String, String>);

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.keys().map(|k| (k, "[redacted]"))).finish()
    }
}

impl Deref for Credentials {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Credentials {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<const N: usize> From<[(String, String); N]> for Credentials {
    fn from(entries: [(String, String); N]) -> Self {
        Credentials(BTreeMap::from(entries))
    }
}

impl From<BTreeMap<String, String>> for Credentials {
    fn from(entries: BTreeMap<String, String>) -> Self {
        Credentials(entries)
    }
}

impl FromIterator<(String, String)> for Credentials {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        Credentials(entries.into_iter().collect())
    }
}

/// What `value` names: the value of an environment variable (`env:NAME`), the contents of a
/// file only its owner may read (`file:PATH`, relative to the contract's directory), or itself.
pub(crate) fn resolve(value: &str, contract_dir: &Path) -> Result<String, String> {
    if let Some(var) = value.strip_prefix("env:") {
        return std::env::var(var).map_err(|_| format!("environment variable {var} is not set"));
    }
    let Some(path) = value.strip_prefix("file:") else { return Ok(value.to_owned()) };
    let path = contract_dir.join(path);
    let shown = path.display();
    let metadata = std::fs::metadata(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!("{shown} may be read by others (mode {mode:o}); allow its owner only (chmod 600)"));
        }
    }
    if metadata.len() > 64 * 1024 {
        return Err(format!("{shown} is {} bytes; a secret file holds one secret", metadata.len()));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// A webhook secret as resolved from the contract.
pub(crate) fn resolve_secret(secret: &SecretString, contract_dir: &Path) -> Result<SecretString, String> {
    resolve(secret.expose_secret(), contract_dir).map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_and_never_values() {
        let c = Credentials::from([("client_secret".to_owned(), "hunter2".to_owned())]);
        let shown = format!("{c:?} {:?}", SecretString::from("hunter3"));
        assert!(shown.contains("client_secret"), "{shown}");
        assert!(!shown.contains("hunter"), "{shown}");
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_must_be_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = resolve("file:shop.secret", dir.path()).unwrap_err();
        assert!(refused.contains("chmod 600"), "{refused}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(resolve("file:shop.secret", dir.path()).unwrap(), "s3cret");
        assert_eq!(resolve("plain", dir.path()).unwrap(), "plain");
        assert!(resolve("env:HANDOFF_TEST_UNSET_VARIABLE", dir.path()).unwrap_err().contains("not set"));
    }
}
