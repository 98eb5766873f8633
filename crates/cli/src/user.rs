//! `handoff user create`: the console's people. The first admin is made here, before the hub
//! serves; the password is read from the terminal (twice) or from standard input, and only its
//! argon2id hash is kept.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::{Context as _, bail};
use handoff_store::{NewUser, Role, Store};
use jiff::Timestamp;

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Make a console user.
    Create {
        /// The name they log in with.
        #[arg(long)]
        name: String,
        /// viewer (reads, personal data masked), operator (also acts on exceptions and dead
        /// letters), admin (also users, tokens and the contract).
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// Read the password from standard input (one line) instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
        /// Who makes it, for the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: crate::DataDir,
    },
}

/// Shortest password accepted (NIST SP 800-63B's floor for a password a person chose).
const MIN_PASSWORD: usize = 8;
/// Longest password accepted: argon2 reads it all.
const MAX_PASSWORD: usize = 256;

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { name, role, password_stdin, actor, data } => {
            let password = if password_stdin { stdin_line()? } else { ask()? };
            let store = crate::store::create(&data.store_here()?).await?;
            let id = create(&store, &name, role, &password, &actor, Timestamp::now()).await?;
            println!("user {id} {name:?} ({role}) created; they log in at /console");
            Ok(())
        }
    }
}

fn stdin_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn ask() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the password on: pass it with --password-stdin");
    }
    let first = rpassword::prompt_password("password: ")?;
    let again = rpassword::prompt_password("again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// Makes a console user with `password` (kept as its argon2id hash); returns their id.
pub async fn create<S: Store>(
    store: &S,
    name: &str,
    role: Role,
    password: &str,
    actor: &str,
    now: Timestamp,
) -> anyhow::Result<i64> {
    if name.trim().is_empty() || name.len() > 200 || name.trim() != name {
        bail!("a user's name is 1 to 200 characters, without spaces around it");
    }
    let chars = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&chars) {
        bail!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters");
    }
    let password_hash = handoff_server::console::session::hash_password(password).map_err(anyhow::Error::msg)?;
    let user = NewUser { name: name.to_owned(), role, password_hash };
    match store.create_user(user, actor.to_owned(), now).await? {
        Some(id) => Ok(id),
        None => bail!("a user named {name:?} exists already"),
    }
}
