//! The schema, one migration per file, applied in order on open. `schema_version` lists the
//! ones applied; a transaction-scoped advisory lock lets one process migrate at a time while
//! the others wait and then find nothing left to do.

use crate::{Result, StoreError};

const MIGRATIONS: [&str; 8] = [
    include_str!("../../migrations/postgres/0001_write_path.sql"),
    include_str!("../../migrations/postgres/0002_claim_leases.sql"),
    include_str!("../../migrations/postgres/0003_console_search.sql"),
    include_str!("../../migrations/postgres/0004_leads.sql"),
    include_str!("../../migrations/postgres/0005_purge_indexes.sql"),
    include_str!("../../migrations/postgres/0006_held_commands.sql"),
    include_str!("../../migrations/postgres/0007_fewer_outbox_indexes.sql"),
    include_str!("../../migrations/postgres/0008_short_email_keys.sql"),
];

/// The migration whose new columns are filled, for the rows already there, by [`fill_search`].
const SEARCH: usize = 3;

/// The migration after which the email keys already stored are shortened
/// ([`crate::search::SHORTEN_EMAIL_KEYS`]).
const SHORT_EMAIL_KEYS: usize = 8;

/// Rows read at a time while filling.
const FILL_BATCH: i64 = 10_000;

/// The schema version this build writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Any number that no other advisory lock of the hub uses: "handoff" in ASCII.
const MIGRATION_LOCK: i64 = 0x68616e646f6666;

/// Applies the migrations not yet applied; returns the version the database was at.
pub(super) async fn to_latest(client: &mut tokio_postgres::Client) -> Result<i32> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    // No notice for a table that is there already: that is every open but the first.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let at: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[]).await?.get(0);
    if at > VERSION {
        return Err(StoreError::Schema(format!(
            "the database is at schema version {at}, this build knows version {VERSION}: use the build that wrote it"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        tx.batch_execute(sql).await?;
        if i + 1 == SEARCH {
            fill_search(&tx).await?;
        }
        if i + 1 == SHORT_EMAIL_KEYS {
            tx.execute(crate::search::SHORTEN_EMAIL_KEYS, &[]).await?;
        }
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(i as i32 + 1)]).await?;
    }
    tx.commit().await?;
    if at < VERSION {
        tracing::info!(message = "store migrated", from = at, to = VERSION);
    }
    Ok(at)
}

/// The schema version of the database, without changing it: 0 when it holds no store.
pub(super) async fn version(c: &impl deadpool_postgres::GenericClient) -> Result<i32> {
    let found: bool = c.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.get(0);
    if !found {
        return Ok(0);
    }
    Ok(c.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[]).await?.get(0))
}

/// Migration 0003's hook: the fingerprint of every exception already stored, and the search
/// fields of every order from its events in order (as the writer keeps them), in batches.
async fn fill_search(tx: &tokio_postgres::Transaction<'_>) -> Result<()> {
    let mut after = 0i64;
    loop {
        let rows = tx
            .query("SELECT id, detail FROM exceptions WHERE id > $1 ORDER BY id LIMIT $2", &[&after, &FILL_BATCH])
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0)?;
        let ids: Vec<i64> = rows.iter().map(|r| r.try_get(0)).collect::<std::result::Result<_, _>>()?;
        let prints: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<_, String>(1).map(|d| super::writes::fingerprint(&d)))
            .collect::<std::result::Result<_, _>>()?;
        tx.execute(
            "UPDATE exceptions e SET fingerprint = f.print FROM unnest($1::bigint[], $2::text[]) AS f (id, print)
             WHERE e.id = f.id",
            &[&ids, &prints],
        )
        .await?;
    }
    let mut after = 0i64;
    loop {
        let rows = tx
            .query(
                "SELECT i.id, i.order_ref, i.payload FROM inbox i JOIN orders o ON o.order_ref = i.order_ref
                 WHERE i.id > $1 ORDER BY i.id LIMIT $2",
                &[&after, &FILL_BATCH],
            )
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0)?;
        // The batch's events folded per order, later ones first among what they say.
        let mut said: std::collections::BTreeMap<String, (Option<String>, Option<String>)> = Default::default();
        for r in &rows {
            let (channel, email) = super::writes::search_fields(r.try_get(2)?);
            let order = said.entry(r.try_get(1)?).or_default();
            order.0 = channel.or(order.0.take());
            order.1 = email.or(order.1.take());
        }
        let refs: Vec<&String> = said.keys().collect();
        let channels: Vec<&Option<String>> = said.values().map(|(c, _)| c).collect();
        let emails: Vec<&Option<String>> = said.values().map(|(_, e)| e).collect();
        tx.execute(
            "UPDATE orders o SET channel = coalesce(f.channel, o.channel, o.source),
                                 email_key = coalesce(f.email, o.email_key)
             FROM unnest($1::text[], $2::text[], $3::text[]) AS f (order_ref, channel, email)
             WHERE o.order_ref = f.order_ref",
            &[&refs, &channels, &emails],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio_postgres::NoTls;

    use super::*;
    use crate::postgres::testing::{TestSchema, test_database_url};

    /// A fresh schema at `version`, its migrations applied without their hooks (on no rows).
    async fn at_version(
        url: &str,
        version: usize,
    ) -> (TestSchema, tokio_postgres::Client, tokio::task::JoinHandle<()>) {
        let schema = TestSchema::create(url).await.unwrap();
        let config = super::super::config(url, &schema.options()).unwrap();
        let (client, connection) = config.connect(NoTls).await.unwrap();
        let running = tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .await
            .unwrap();
        for (i, sql) in MIGRATIONS.iter().take(version).enumerate() {
            client.batch_execute(sql).await.unwrap();
            client.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(i as i32 + 1)]).await.unwrap();
        }
        (schema, client, running)
    }

    /// A database stored before migration 0003 is searchable after it: the hook fills the
    /// fingerprints and the orders' search fields from what was there.
    #[tokio::test]
    async fn the_search_migration_fills_the_rows_already_there() {
        let Some(url) = test_database_url() else { return };
        let (schema, mut client, running) = at_version(&url, SEARCH - 1).await;
        let detail = r#"create_order to erp dead-lettered after 5 attempts: 422 "SKU-9" unknown"#;
        client
            .batch_execute(&format!(
                "INSERT INTO orders (order_ref, source, first_seen, updated_at) VALUES
                     ('A-1', 'shop', now(), now()), ('B-2', 'shop', now(), now());
                 INSERT INTO inbox (system, event_id, kind, order_ref, received_at, payload) VALUES
                     ('shop', 'e1', 'order.created', 'A-1', now(),
                      '{{\"order\": {{\"channel\": \"web\", \"customer\": {{\"email\": \" Ann@Example.com \"}}}}}}'),
                     ('shop', 'e2', 'order.updated', 'A-1', now(), 'not json'),
                     ('shop', 'e3', 'order.created', 'B-2', now(), '{{}}');
                 INSERT INTO exceptions (pattern, order_ref, detail, state, opened_at, updated_at)
                     VALUES ('dead_letter', 'A-1', '{}', 'open', now(), now());",
                detail.replace('\'', "''")
            ))
            .await
            .unwrap();

        assert_eq!(to_latest(&mut client).await.unwrap(), SEARCH as i32 - 1);

        let print: String = client.query_one("SELECT fingerprint FROM exceptions", &[]).await.unwrap().get(0);
        assert_eq!(print, handoff_model::cluster::fingerprint(detail));
        let orders: Vec<(String, Option<String>, Option<String>)> = client
            .query("SELECT order_ref, channel, email_key FROM orders ORDER BY order_ref", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let ann = crate::search::email_key("ann@example.com");
        assert_eq!(
            orders,
            [("A-1".to_owned(), Some("web".to_owned()), Some(ann)), ("B-2".to_owned(), Some("shop".to_owned()), None)]
        );
        drop(client);
        let _ = running.await;
        schema.drop().await.unwrap();
    }

    /// Migration 0008 shortens the email keys kept by earlier builds to the key a search looks for.
    #[tokio::test]
    async fn the_short_email_key_migration_rewrites_the_keys_already_kept() {
        let Some(url) = test_database_url() else { return };
        let (schema, mut client, running) = at_version(&url, SHORT_EMAIL_KEYS - 1).await;
        // SHA-256 of "ann@example.com" (sha256sum), as builds before 0008 kept it.
        let long = "sha256:71d4f55f72fa128dfb468a1a3901507c804b74316488744d769d7f4b16696476";
        client
            .execute(
                "INSERT INTO orders (order_ref, source, first_seen, updated_at, email_key)
                 VALUES ('#1', 'shop', now(), now(), $1), ('#2', 'shop', now(), now(), '0123456789abcdef'),
                        ('#3', 'shop', now(), now(), NULL)",
                &[&long],
            )
            .await
            .unwrap();
        assert_eq!(to_latest(&mut client).await.unwrap(), SHORT_EMAIL_KEYS as i32 - 1);
        let keys: Vec<Option<String>> = client
            .query("SELECT email_key FROM orders ORDER BY order_ref", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(keys, [Some("71d4f55f72fa128d".to_owned()), Some("0123456789abcdef".to_owned()), None]);
        drop(client);
        let _ = running.await;
        schema.drop().await.unwrap();
    }
}
