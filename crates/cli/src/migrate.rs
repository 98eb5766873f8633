//! `handoff migrate`: the store's schema brought to this build's version, on either backend.

use std::path::PathBuf;

use anyhow::Context;
use handoff_contract::data_dir::StoreAt;
use handoff_store::postgres::{PgOptions, PgStore, SCHEMA_VERSION};
use handoff_store::sqlite::{SqliteOptions, SqliteStore};

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The contract, read for `[hub] store` or `[hub] data_dir` only.
    #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
    config: PathBuf,
    #[command(flatten)]
    data: crate::DataDir,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let at = args.data.store(&args.config)?;
    match &at {
        StoreAt::Dir(dir) => {
            SqliteStore::open(dir, SqliteOptions::default())
                .with_context(|| format!("migrating the store in {}", dir.display()))?;
            println!("{}: the embedded store is at this build's schema", at.display());
        }
        StoreAt::Postgres(url) => {
            let before = PgStore::migrate(url, PgOptions::default())
                .await
                .with_context(|| format!("migrating the store at {}", at.display()))?;
            if before == SCHEMA_VERSION {
                println!("{}: at schema version {SCHEMA_VERSION} already", at.display());
            } else {
                println!("{}: schema version {before} -> {SCHEMA_VERSION}", at.display());
            }
        }
    }
    Ok(())
}
