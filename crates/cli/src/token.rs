//! `handoff token create|list|revoke`: the API's tokens. A token is printed once, when created;
//! the store keeps only its hash. The first admin is made here, before the hub ever serves.

use anyhow::bail;
use handoff_store::{NewToken, Role, Store, TokenRow};
use jiff::{SignedDuration, Timestamp};

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (once).
    Create {
        /// Who holds it: a person or a program, shown in the audit log of what it does.
        #[arg(long)]
        name: String,
        /// viewer (reads, personal data masked), operator (also acts on exceptions and dead
        /// letters), admin (also tokens and the contract).
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// Days until it stops working; none: until revoked.
        #[arg(long)]
        days: Option<u32>,
        /// Who makes it, for the audit log.
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: crate::DataDir,
    },
    /// Every token: holder, role, when made, when it ends, whether revoked.
    List {
        #[command(flatten)]
        data: crate::DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Stop a token from working, at once.
    Revoke {
        id: i64,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
        #[command(flatten)]
        data: crate::DataDir,
    },
}

/// Tokens a store keeps at most: a leak of the table is bounded, and so is the list.
const MAX_TOKENS: usize = 10_000;

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name, role, days, actor, data } => {
            let store = crate::store::create(&data.store_here()?).await?;
            let token = create(&store, &name, role, days, &actor, Timestamp::now()).await?;
            println!("{token}");
            eprintln!("token for {name:?} ({role}); it is shown only this once");
            Ok(())
        }
        TokenCommand::List { data, json } => {
            let store = crate::store::open(&data.store_here()?).await?;
            let tokens = store.tokens().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                tokens.iter().for_each(|t| println!("{}", line(t)));
            }
            Ok(())
        }
        TokenCommand::Revoke { id, actor, data } => {
            let store = crate::store::open(&data.store_here()?).await?;
            if !store.revoke_token(id, actor, Timestamp::now()).await? {
                bail!("no live token {id} (see `handoff token list`)");
            }
            println!("token {id} revoked");
            Ok(())
        }
    }
}

/// Makes a token for `name` and returns it; the store keeps its hash.
pub async fn create<S: Store>(
    store: &S,
    name: &str,
    role: Role,
    days: Option<u32>,
    actor: &str,
    now: Timestamp,
) -> anyhow::Result<String> {
    if name.trim().is_empty() || name.len() > 200 {
        bail!("a token's name is 1 to 200 characters");
    }
    if store.tokens().await?.len() >= MAX_TOKENS {
        bail!("{MAX_TOKENS} tokens exist; revoke some before making more");
    }
    let expires_at = days.map(|d| now.checked_add(SignedDuration::from_hours(24 * i64::from(d)))).transpose()?;
    let (token, hash) = handoff_server::auth::issue();
    store.create_token(NewToken { name: name.to_owned(), role, hash, expires_at }, actor.to_owned(), now).await?;
    Ok(token)
}

fn line(t: &TokenRow) -> String {
    let until = t.expires_at.map_or("no end".to_owned(), |at| format!("until {at}"));
    let revoked = t.revoked_at.map_or(String::new(), |at| format!(", revoked {at}"));
    format!("{:>4}  {:<8}  {}  made {}, {until}{revoked}", t.id, t.role, t.name, t.created_at)
}
