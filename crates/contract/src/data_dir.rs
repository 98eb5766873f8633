//! Where the hub's store lives, one rule for every command: `--data-dir`, else
//! `HANDOFF_DATA_DIR`, else the contract's `[hub] data_dir` (relative to the contract file),
//! else `handoff-data`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{ContractError, MAX_CONTRACT_BYTES};

/// The data directory when neither flag, environment nor contract names one.
pub const DEFAULT: &str = "handoff-data";

#[derive(Deserialize, Default)]
struct Only {
    #[serde(default)]
    hub: OnlyHub,
}

#[derive(Deserialize, Default)]
struct OnlyHub {
    data_dir: Option<PathBuf>,
}

/// The data directory: `given` (the flag, or the environment, as the command line read them)
/// first, then the contract at `config` if there is one, then [`DEFAULT`]. Only the contract's
/// `[hub] data_dir` is read, nothing else validated and no secret resolved: a command that only
/// reads the store must not need the systems' credentials. A contract that is not there names
/// nothing; one that cannot be read is refused.
pub fn resolve(given: Option<PathBuf>, config: Option<&Path>) -> Result<PathBuf, ContractError> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    if let Some(config) = config.filter(|c| c.exists()) {
        let refuse = |message: String| ContractError { file: config.to_owned(), key: String::new(), message };
        let size = std::fs::metadata(config).map_err(|e| refuse(format!("cannot read: {e}")))?.len();
        if size > MAX_CONTRACT_BYTES {
            return Err(refuse(format!("is {size} bytes; a contract may be at most {MAX_CONTRACT_BYTES}")));
        }
        let text = std::fs::read_to_string(config).map_err(|e| refuse(format!("cannot read: {e}")))?;
        let only: Only = toml::from_str(&text).map_err(|e| refuse(e.to_string().trim_end().to_owned()))?;
        if let Some(dir) = only.hub.data_dir {
            return Ok(config.parent().unwrap_or(Path::new(".")).join(dir));
        }
    }
    Ok(PathBuf::from(DEFAULT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_or_environment_then_contract_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("handoff.toml");
        std::fs::write(&config, "[hub]\ndata_dir = \"store\"\n[systems.shop]\nrole = \"storefront\"\n").unwrap();
        let given = Some(PathBuf::from("elsewhere"));
        assert_eq!(resolve(given, Some(&config)).unwrap(), PathBuf::from("elsewhere"));
        assert_eq!(resolve(None, Some(&config)).unwrap(), dir.path().join("store"), "relative to the contract");
        assert_eq!(resolve(None, Some(&dir.path().join("absent.toml"))).unwrap(), PathBuf::from(DEFAULT));
        assert_eq!(resolve(None, None).unwrap(), PathBuf::from(DEFAULT));
        std::fs::write(&config, "[hub]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(resolve(None, Some(&config)).unwrap(), PathBuf::from(DEFAULT));
        std::fs::write(&config, "[hub]\ndata_dir = 7\n").unwrap();
        let refused = resolve(None, Some(&config)).unwrap_err();
        assert!(refused.to_string().contains("data_dir"), "{refused}");
    }
}
