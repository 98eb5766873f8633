//! How long the hub keeps what it stored (`[retention]`): customers' personal data and the
//! vendors' raw bodies go first, the history of the write path later, and the inbox's dedup
//! keys never before any vendor may still redeliver.

use jiff::SignedDuration;
use serde::Deserialize;

/// The longest a vendor redelivers or re-reads one change (Shopify retries a webhook for 48
/// hours, Stripe for 3 days, a poll's lookback is minutes): a dedup key kept this long sees
/// every redelivery, so a contract may not keep them less.
pub const MIN_DEDUP_DAYS: u32 = 7;

/// `[retention]`, in days.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Raw vendor bodies (the inbox's and held bodies) and the personal fields of stored
    /// payloads (customer, addresses, payer email) are purged after this many days; an
    /// exception's evidence keeps a hash of what it referred to.
    pub personal_data_days: u32,
    /// The rules' journal, attempts and the audit log are compacted after this many days (an
    /// order's journal keeps its last entry per system and kind; a finished command its last
    /// attempt).
    pub history_days: u32,
    /// An inbox row, whose (system, event id) is the dedup key of a redelivery, is kept at
    /// least this many days (at least [`MIN_DEDUP_DAYS`]); after it, a row nothing else
    /// refers to any more goes.
    pub dedup_days: u32,
    /// How often `handoff serve` purges.
    pub purge_every: SignedDuration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            personal_data_days: 30,
            history_days: 90,
            dedup_days: 14,
            purge_every: SignedDuration::from_hours(1),
        }
    }
}

impl Retention {
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        let refuse = |key: &str, message: String| Err((format!("retention.{key}"), message));
        if self.personal_data_days == 0 {
            return refuse("personal_data_days", "must be at least 1 day".into());
        }
        if self.dedup_days < MIN_DEDUP_DAYS {
            return refuse(
                "dedup_days",
                format!(
                    "must be at least {MIN_DEDUP_DAYS} days: vendors redeliver a webhook for days, and a \
                     redelivery after its key is gone would be taken for a new event, got {}",
                    self.dedup_days
                ),
            );
        }
        if self.history_days < self.dedup_days {
            return refuse(
                "history_days",
                format!("must be at least dedup_days ({}), got {}", self.dedup_days, self.history_days),
            );
        }
        if self.history_days > 36_500 || self.personal_data_days > 36_500 || self.dedup_days > 36_500 {
            return refuse("history_days", "a retention is at most 36500 days".into());
        }
        if self.purge_every < SignedDuration::from_secs(1) {
            return refuse("purge_every", format!("must be at least 1s, got {:#}", self.purge_every));
        }
        Ok(())
    }
}

/// What is older than these instants goes at a purge run at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub personal_data: jiff::Timestamp,
    pub history: jiff::Timestamp,
    pub dedup: jiff::Timestamp,
}

impl Retention {
    /// The instants before which a purge at `now` removes each kind of data.
    pub fn cutoffs(&self, now: jiff::Timestamp) -> Cutoffs {
        let back = |days: u32| now - SignedDuration::from_hours(24 * i64::from(days));
        Cutoffs {
            personal_data: back(self.personal_data_days),
            history: back(self.history_days),
            dedup: back(self.dedup_days),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Contract;

    fn contract(retention: &str) -> Result<Contract, crate::ContractError> {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/handoff.toml")).unwrap();
        Contract::parse(&format!("{text}\n[retention]\n{retention}\n"), Path::new("handoff.toml"))
    }

    #[test]
    fn defaults_keep_dedup_keys_a_week_at_least() {
        let c = contract("").unwrap();
        assert!(c.retention.dedup_days >= super::MIN_DEDUP_DAYS);
        assert!(c.retention.history_days >= c.retention.dedup_days);
        let now: jiff::Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
        let cut = c.retention.cutoffs(now);
        assert_eq!(cut.personal_data, "2026-11-05T00:00:00Z".parse().unwrap());
    }

    #[test]
    fn a_dedup_horizon_shorter_than_a_vendors_redelivery_is_refused() {
        let e = contract("dedup_days = 6").unwrap_err();
        assert_eq!(e.key, "retention.dedup_days");
        assert!(contract("dedup_days = 7\nhistory_days = 7").is_ok());
        assert_eq!(contract("dedup_days = 30\nhistory_days = 10").unwrap_err().key, "retention.history_days");
        assert_eq!(contract("personal_data_days = 0").unwrap_err().key, "retention.personal_data_days");
        assert_eq!(contract("personal_days = 3").unwrap_err().key, "retention.personal_days");
    }
}
