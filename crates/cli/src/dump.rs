//! `handoff export` and `handoff import`: an installation moved from one store to another
//! (SQLite to PostgreSQL, back, or between machines) with nothing lost, checked by each
//! table's row count and content hash on both sides (see `handoff_store::dump`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use handoff_contract::data_dir::StoreAt;
use handoff_store::dump::{DumpReader, Imported, Tally};
use handoff_store::postgres::{PgOptions, PgReader};
use handoff_store::sqlite::{DB_FILE, SqliteReader};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The contract, read for `[hub] store` or `[hub] data_dir` only.
    #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
    config: PathBuf,
    #[command(flatten)]
    data: crate::DataDir,
    /// The dump to write (gzip-compressed when its name ends in `.gz`).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A dump `handoff export` wrote (gzip-compressed or not).
    file: PathBuf,
    /// The contract, read for `[hub] store` or `[hub] data_dir` only.
    #[arg(long, env = "HANDOFF_CONFIG", default_value = "handoff.toml")]
    config: PathBuf,
    #[command(flatten)]
    data: crate::DataDir,
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let at = args.data.store(&args.config)?;
    let started = Instant::now();
    let tally = export_to(&at, &args.out).await?;
    print(&tally);
    println!("exported {} to {} in {:.1} s", at.display(), args.out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Writes the store at `at` to the dump `out`; a dump is in place only once complete.
pub async fn export_to(at: &StoreAt, out: &Path) -> anyhow::Result<Tally> {
    let partial = out.with_extension("partial");
    let file = BufWriter::new(File::create(&partial).with_context(|| format!("creating {}", partial.display()))?);
    let gzip = out.extension().is_some_and(|e| e == "gz");
    let written = match at {
        StoreAt::Dir(dir) => {
            if !dir.join(DB_FILE).exists() {
                bail!("no Handoff store in {}", dir.display());
            }
            let reader = SqliteReader::open(dir)?;
            tokio::task::spawn_blocking(move || -> anyhow::Result<Tally> {
                Ok(if gzip {
                    let (out, tally) = reader.export(GzEncoder::new(file, Compression::fast()))?;
                    out.finish()?.flush()?;
                    tally
                } else {
                    reader.export(file)?.1
                })
            })
            .await?
        }
        StoreAt::Postgres(url) => {
            let reader = PgReader::open(url, PgOptions { max_connections: 1, ..PgOptions::default() })
                .await
                .with_context(|| format!("reading the store at {}", at.display()))?;
            if gzip {
                let (out, tally) = reader.export(GzEncoder::new(file, Compression::fast())).await?;
                out.finish()?.flush()?;
                Ok(tally)
            } else {
                Ok(reader.export(file).await?.1)
            }
        }
    };
    let tally = written.with_context(|| format!("exporting {}", at.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("moving {} to {}", partial.display(), out.display()))?;
    Ok(tally)
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let at = args.data.store(&args.config)?;
    let started = Instant::now();
    let imported = import_from(&args.file, &at).await?;
    print(&imported.tally);
    if imported.not_kept > 0 {
        println!(
            "{} claims of PostgreSQL hubs not kept: SQLite has one hub, which takes back every command in flight \
             when it starts (the outbox's hash differs from the dump's by them alone)",
            imported.not_kept
        );
    }
    println!(
        "imported {} into {} in {:.1} s: every table's rows and hash read back equal the dump's",
        args.file.display(),
        at.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes the dump `file` into the empty store at `at`, checked by counts and hashes.
pub async fn import_from(file: &Path, at: &StoreAt) -> anyhow::Result<Imported> {
    let mut opened = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut magic = [0u8; 2];
    let gzip = opened.read(&mut magic)? == 2 && magic == [0x1f, 0x8b];
    let opened = File::open(file)?;
    let input: Box<dyn std::io::BufRead + Send> = if gzip {
        Box::new(BufReader::new(GzDecoder::new(BufReader::new(opened))))
    } else {
        Box::new(BufReader::new(opened))
    };
    let reader = DumpReader::new(input).with_context(|| format!("reading {}", file.display()))?;
    let imported = match at {
        StoreAt::Postgres(url) => handoff_store::postgres::import(url, PgOptions::default(), reader).await,
        StoreAt::Dir(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || handoff_store::sqlite::import(&dir, reader)).await?
        }
    };
    imported.with_context(|| format!("importing {} into {}", file.display(), at.display()))
}

fn print(tally: &Tally) {
    println!("{:<20} {:>10}  sha256", "table", "rows");
    for (table, t) in tally {
        println!("{table:<20} {:>10}  {}", t.rows, t.sha256);
    }
}
