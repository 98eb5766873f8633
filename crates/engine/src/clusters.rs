//! Exceptions clustered by what they have in common: the pattern, the flow, the field, the
//! channel, the mapping and the error's fingerprint (its detail with numbers and quoted values
//! blanked). A cluster is one cause to fix once, then act on every member. Used by
//! `handoff exceptions clusters`, `/api/v1/clusters` and `handoff doctor`.

use std::collections::BTreeMap;

use handoff_store::ExceptionRow;
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

/// One definition of the fingerprint, shared with the store's SQL (clusters are grouped there).
pub use handoff_model::cluster::fingerprint;

/// What the members of a cluster share.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ClusterKey {
    pub pattern: String,
    pub flow: Option<String>,
    pub field: Option<String>,
    pub channel: Option<String>,
    pub mapping: Option<String>,
    pub fingerprint: String,
}

impl ClusterKey {
    pub fn of(x: &ExceptionRow) -> ClusterKey {
        ClusterKey {
            pattern: x.pattern.clone(),
            flow: x.flow.clone(),
            field: x.field.clone(),
            channel: x.channel.clone(),
            mapping: x.mapping.clone(),
            fingerprint: fingerprint(&x.detail),
        }
    }

    /// A short stable name for the cluster (`c` and 8 hex digits, FNV-1a of the key), for
    /// `exceptions act --cluster`.
    pub fn id(&self) -> String {
        handoff_model::cluster::cluster_id([
            Some(self.pattern.as_str()),
            self.flow.as_deref(),
            self.field.as_deref(),
            self.channel.as_deref(),
            self.mapping.as_deref(),
            Some(self.fingerprint.as_str()),
        ])
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub id: String,
    #[serde(flatten)]
    pub key: ClusterKey,
    /// Exceptions in the cluster, and distinct orders among them.
    pub exceptions: usize,
    pub orders: usize,
    /// The money at stake by currency (decimal text), summed exactly.
    pub money: BTreeMap<String, String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Members by state (open, acknowledged, resolved, ...).
    pub states: BTreeMap<String, usize>,
    /// Member exception ids, newest first.
    pub members: Vec<i64>,
    /// Members still open or acknowledged: those an action would act on.
    pub actionable: Vec<i64>,
    /// One member's detail, as an example.
    pub example: String,
}

/// Clusters exceptions, largest first (by exceptions, then orders, then the most recent).
pub fn clusters(rows: &[ExceptionRow]) -> Vec<Cluster> {
    let mut groups: BTreeMap<ClusterKey, Vec<&ExceptionRow>> = BTreeMap::new();
    for x in rows {
        groups.entry(ClusterKey::of(x)).or_default().push(x);
    }
    let mut out: Vec<Cluster> = groups
        .into_iter()
        .map(|(key, mut members)| {
            members.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then(b.id.cmp(&a.id)));
            let mut orders: Vec<&str> = members.iter().map(|x| x.order_ref.as_str()).collect();
            orders.sort_unstable();
            orders.dedup();
            let mut money: BTreeMap<String, Decimal> = BTreeMap::new();
            let mut states: BTreeMap<String, usize> = BTreeMap::new();
            for x in &members {
                if let (Some(amount), Some(currency)) = (&x.amount, &x.currency)
                    && let Ok(amount) = amount.parse::<Decimal>()
                {
                    *money.entry(currency.clone()).or_default() += amount;
                }
                *states.entry(x.state.clone()).or_default() += 1;
            }
            Cluster {
                id: key.id(),
                exceptions: members.len(),
                orders: orders.len(),
                money: money.into_iter().map(|(c, a)| (c, a.to_string())).collect(),
                first_seen: members.iter().map(|x| x.opened_at).min().expect("a cluster has members"),
                last_seen: members.iter().map(|x| x.updated_at.max(x.opened_at)).max().expect("members"),
                states,
                actionable: members
                    .iter()
                    .filter(|x| x.state == "open" || x.state == "acknowledged")
                    .map(|x| x.id)
                    .collect(),
                members: members.iter().map(|x| x.id).collect(),
                example: members[0].detail.clone(),
                key,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.exceptions.cmp(&a.exceptions).then(b.orders.cmp(&a.orders)).then(b.last_seen.cmp(&a.last_seen))
    });
    out
}

/// The cluster named by its id (`c…`) or by its rank in [`clusters`] (1 is the largest).
pub fn find<'a>(clusters: &'a [Cluster], key: &str) -> Option<&'a Cluster> {
    match key.parse::<usize>() {
        Ok(rank) => rank.checked_sub(1).and_then(|i| clusters.get(i)),
        Err(_) => clusters.iter().find(|c| c.id == key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(id: i64, order: &str, detail: &str, amount: &str, state: &str) -> ExceptionRow {
        ExceptionRow {
            id,
            pattern: "dead_delivery".into(),
            order_ref: order.into(),
            flow: Some("orders-to-erp".into()),
            field: Some("order.customer.name".into()),
            detail: detail.into(),
            state: state.into(),
            opened_at: Timestamp::from_second(id).unwrap(),
            updated_at: Timestamp::from_second(id).unwrap(),
            amount: Some(amount.into()),
            currency: Some("EUR".into()),
            ..ExceptionRow::default()
        }
    }

    #[test]
    fn numbers_and_quoted_values_are_blanked() {
        assert_eq!(
            fingerprint("create_order to erp dead-lettered after 1 attempts: 422: \"Ada\" is not a name (12.50)"),
            "create_order to erp dead-lettered after # attempts: #: \"…\" is not a name (#)"
        );
    }

    #[test]
    fn one_cause_across_orders_is_one_cluster_with_its_money_summed() {
        let rows = vec![
            x(1, "#1", "422: name required for #1", "10.10", "open"),
            x(2, "#2", "422: name required for #2", "0.20", "resolved"),
            x(3, "#3", "timeout after 5s", "1", "open"),
        ];
        let c = clusters(&rows);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].exceptions, c[0].orders), (2, 2));
        assert_eq!(c[0].money["EUR"], "10.30");
        assert_eq!(c[0].actionable, vec![1]);
        assert_eq!(c[0].states["resolved"], 1);
        assert_eq!(find(&c, "1").unwrap().id, c[0].id);
        assert_eq!(find(&c, &c[1].id).unwrap().exceptions, 1);
        assert!(c[0].id.starts_with('c') && c[0].id.len() == 9);
    }
}
