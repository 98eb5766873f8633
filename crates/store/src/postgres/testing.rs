//! For tests, in this crate and others, and for `handoff bench --store postgres://...`: a fresh
//! store in a schema of its own on the database `HANDOFF_TEST_DATABASE_URL` (or the benchmark's
//! URL) names, so tests run in parallel on one database. Without the
//! variable the tests say loudly that they did not run, and fail where `CI` is set.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_postgres::NoTls;

use super::{PgOptions, PgStore};

/// The variable naming the test database, e.g. `postgres://postgres@127.0.0.1:5432/test`.
pub const TEST_DATABASE_URL: &str = "HANDOFF_TEST_DATABASE_URL";

/// The test database's address; `None` (after a loud line) when there is none outside CI.
///
/// # Panics
/// When the variable is unset and `CI` is set: CI must run the PostgreSQL tests.
pub fn test_database_url() -> Option<String> {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{TEST_DATABASE_URL} is not set and CI is: the PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "!!! POSTGRES TESTS NOT RUN: set {TEST_DATABASE_URL} (e.g. postgres://postgres@127.0.0.1:5432/test) !!!"
            );
            None
        }
    }
}

/// A schema created for one test and dropped by [`TestSchema::drop`], or, if the test
/// panicked first, as it unwinds.
pub struct TestSchema {
    pub url: String,
    pub name: String,
    dropped: bool,
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Unwinding out of a test: no runtime to await on, so a thread with its own.
        let (url, sql) = (self.url.clone(), format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.map(|r| r.block_on(run(&url, &sql)))
        })
        .join();
    }
}

impl TestSchema {
    pub async fn create(url: &str) -> crate::Result<TestSchema> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name =
            format!("t_{}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed), nanos % 1_000_000_000);
        run(url, &format!("CREATE SCHEMA {name}")).await?;
        Ok(TestSchema { url: url.to_owned(), name, dropped: false })
    }

    /// The address of this schema's store, for another process (`handoff serve --store`):
    /// the database's URL with the schema first on the search path of every connection.
    pub fn store_url(&self) -> String {
        let join = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{join}options=-c%20search_path%3D{}", self.url, self.name)
    }

    /// Options for a store in this schema.
    pub fn options(&self) -> PgOptions {
        PgOptions { max_connections: 4, schema: Some(self.name.clone()), ..PgOptions::default() }
    }

    pub async fn drop(mut self) -> crate::Result<()> {
        run(&self.url, &format!("DROP SCHEMA {} CASCADE", self.name)).await?;
        self.dropped = true;
        Ok(())
    }
}

async fn run(url: &str, sql: &str) -> crate::Result<()> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    let running = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = running.await;
    Ok(())
}

/// Runs `test` on a fresh store in a schema of its own, and drops the schema whatever the
/// test's outcome (a failed test fails after the schema is gone).
pub async fn with_store<F, Fut>(test: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(url) = test_database_url() else { return };
    let schema = TestSchema::create(&url).await.expect("creating a test schema");
    let outcome = match PgStore::open(&url, schema.options()).await {
        Ok(store) => tokio::spawn(test(store)).await,
        Err(error) => {
            let _ = schema.drop().await;
            panic!("opening the PostgreSQL store: {error}");
        }
    };
    schema.drop().await.expect("dropping the test schema");
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}
