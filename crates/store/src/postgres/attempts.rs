//! Group commit of the dispatchers' outcomes: `record_attempt` calls arriving together
//! ([`super::batch`]) are recorded in one transaction, each under its own fencing check
//! (`writes::record_attempts`), and each caller answered once it committed.

use deadpool_postgres::Pool;

use super::batch::Batched;
use super::writes;
use crate::{AttemptRecord, Result};

/// `record_attempt`'s writes.
pub(super) struct Outcomes {
    pub(super) pool: Pool,
    /// The NOTIFY channel a recorded outcome wakes the hubs on: it frees its order's next command.
    pub(super) channel: String,
}

impl Batched for Outcomes {
    type Item = AttemptRecord;
    type Answer = ();
    const WHAT: &'static str = "attempt";
    const MAX_BATCH: usize = 256;

    async fn commit(&self, attempts: &[&AttemptRecord]) -> Result<Vec<Result<()>>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let answers = writes::record_attempts(&tx, attempts).await?;
        if answers.iter().any(Result::is_ok) {
            writes::notify(&tx, &self.channel).await?;
        }
        tx.commit().await?;
        Ok(answers)
    }
}
