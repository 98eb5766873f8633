//! Where the hub's store lives, one rule for every command: `--data-dir`, else
//! `HANDOFF_DATA_DIR`, else the contract's `[hub] data_dir` (relative to the contract file),
//! else `handoff-data`. Commands that may use PostgreSQL (`serve`, `migrate`) ask
//! [`resolve_store`], which looks at `--store` / `HANDOFF_STORE` and `[hub] store` too.

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
    store: Option<String>,
}

/// Where a hub's store is: the embedded SQLite store in a data directory, or a PostgreSQL
/// database several hubs share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAt {
    Dir(PathBuf),
    Postgres(String),
}

impl StoreAt {
    /// A store address as a person gives it: a `postgres://` or `postgresql://` URL, else a
    /// data directory.
    pub fn parse(address: &str) -> StoreAt {
        if is_postgres(address) { StoreAt::Postgres(address.to_owned()) } else { StoreAt::Dir(address.into()) }
    }

    /// The address to print: a URL without its password.
    pub fn display(&self) -> String {
        match self {
            StoreAt::Dir(dir) => dir.display().to_string(),
            StoreAt::Postgres(url) => redact(url),
        }
    }
}

fn is_postgres(address: &str) -> bool {
    address.starts_with("postgres://") || address.starts_with("postgresql://")
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The store: `given` (`--store` or `HANDOFF_STORE`) first, then a data directory given on
/// the command line or in the environment (`given_dir`), then the contract's `[hub] store`,
/// then its `[hub] data_dir`, then [`DEFAULT`]. SQLite stays the default.
pub fn resolve_store(
    given: Option<String>,
    given_dir: Option<PathBuf>,
    config: Option<&Path>,
) -> Result<StoreAt, ContractError> {
    if let Some(address) = given.filter(|a| !a.is_empty()) {
        return Ok(StoreAt::parse(&address));
    }
    if let Some(dir) = given_dir {
        return Ok(StoreAt::Dir(dir));
    }
    if let Some((config, hub)) = read_hub(config)? {
        if let Some(url) = hub.store {
            if !is_postgres(&url) {
                return Err(ContractError {
                    file: config.to_owned(),
                    key: "hub.store".into(),
                    message: "must be a postgres:// URL (the embedded store is `data_dir`)".into(),
                });
            }
            return Ok(StoreAt::Postgres(url));
        }
        if let Some(dir) = hub.data_dir {
            return Ok(StoreAt::Dir(config.parent().unwrap_or(Path::new(".")).join(dir)));
        }
    }
    Ok(StoreAt::Dir(PathBuf::from(DEFAULT)))
}

/// The `[hub]` table of the contract at `config`, if there is one; nothing else read.
fn read_hub(config: Option<&Path>) -> Result<Option<(&Path, OnlyHub)>, ContractError> {
    let Some(config) = config.filter(|c| c.exists()) else { return Ok(None) };
    let refuse = |message: String| ContractError { file: config.to_owned(), key: String::new(), message };
    let size = std::fs::metadata(config).map_err(|e| refuse(format!("cannot read: {e}")))?.len();
    if size > MAX_CONTRACT_BYTES {
        return Err(refuse(format!("is {size} bytes; a contract may be at most {MAX_CONTRACT_BYTES}")));
    }
    let text = std::fs::read_to_string(config).map_err(|e| refuse(format!("cannot read: {e}")))?;
    let only: Only = toml::from_str(&text).map_err(|e| refuse(e.to_string().trim_end().to_owned()))?;
    Ok(Some((config, only.hub)))
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
    if let Some((config, hub)) = read_hub(config)?
        && let Some(dir) = hub.data_dir
    {
        return Ok(config.parent().unwrap_or(Path::new(".")).join(dir));
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

    #[test]
    fn a_store_url_comes_before_data_directories_and_sqlite_stays_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("handoff.toml");
        let url = "postgres://hub:secret@db:5432/handoff";
        std::fs::write(&config, format!("[hub]\ndata_dir = \"store\"\nstore = \"{url}\"\n")).unwrap();
        let pg = StoreAt::Postgres(url.into());
        assert_eq!(resolve_store(None, None, Some(&config)).unwrap(), pg, "the contract's store first");
        assert_eq!(pg.display(), "postgres://hub:***@db:5432/handoff", "never the password");
        let elsewhere = Some(PathBuf::from("elsewhere"));
        assert_eq!(resolve_store(None, elsewhere.clone(), Some(&config)).unwrap(), StoreAt::Dir("elsewhere".into()));
        assert_eq!(resolve_store(Some("x".into()), elsewhere, Some(&config)).unwrap(), StoreAt::Dir("x".into()));
        let flag = Some("postgresql://127.0.0.1/test".to_owned());
        assert_eq!(resolve_store(flag, None, None).unwrap(), StoreAt::Postgres("postgresql://127.0.0.1/test".into()));
        std::fs::write(&config, "[hub]\ndata_dir = \"store\"\n").unwrap();
        assert_eq!(resolve_store(None, None, Some(&config)).unwrap(), StoreAt::Dir(dir.path().join("store")));
        assert_eq!(resolve_store(None, None, None).unwrap(), StoreAt::Dir(DEFAULT.into()));
        std::fs::write(&config, "[hub]\nstore = \"store\"\n").unwrap();
        let refused = resolve_store(None, None, Some(&config)).unwrap_err();
        assert!(refused.to_string().contains("hub.store"), "{refused}");
    }
}
