//! SQL functions of the store's own, registered on every connection, so that clusters are
//! grouped and summed in SQL (each exception is written with the fingerprint of its detail,
//! `handoff_model::cluster`, since migration 0014) with money summed exactly (`rust_decimal`).

use std::collections::BTreeMap;

use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::{Connection, Result};
use rust_decimal::Decimal;

pub(super) fn register(conn: &Connection) -> Result<()> {
    let pure = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_aggregate_function("handoff_money", 2, pure, Money)?;
    conn.create_aggregate_function("handoff_tally", 1, pure, Tally)?;
    conn.create_aggregate_function("handoff_newest", 2, pure, Newest)?;
    Ok(())
}

fn user_error(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(Box::new(e))
}

/// `handoff_money(amount, currency)`: a JSON object of currency to the exact sum (decimal
/// text) of the amounts; rows without either are not money. A corrupt amount fails the query.
struct Money;

impl Aggregate<BTreeMap<String, Decimal>, String> for Money {
    fn init(&self, _: &mut Context<'_>) -> Result<BTreeMap<String, Decimal>> {
        Ok(BTreeMap::new())
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut BTreeMap<String, Decimal>) -> Result<()> {
        let (Some(amount), Some(currency)) = (ctx.get::<Option<String>>(0)?, ctx.get::<Option<String>>(1)?) else {
            return Ok(());
        };
        let amount: Decimal = amount.parse().map_err(user_error)?;
        let sum = acc.entry(currency).or_default();
        *sum = sum.checked_add(amount).ok_or_else(|| user_error(std::fmt::Error))?;
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<BTreeMap<String, Decimal>>) -> Result<String> {
        let money = crate::search::money_text(acc.unwrap_or_default());
        serde_json::to_string(&money).map_err(user_error)
    }
}

/// `handoff_tally(value)`: a JSON object of each value to how many rows had it.
struct Tally;

impl Aggregate<BTreeMap<String, u64>, String> for Tally {
    fn init(&self, _: &mut Context<'_>) -> Result<BTreeMap<String, u64>> {
        Ok(BTreeMap::new())
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut BTreeMap<String, u64>) -> Result<()> {
        *acc.entry(ctx.get::<String>(0)?).or_default() += 1;
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<BTreeMap<String, u64>>) -> Result<String> {
        serde_json::to_string(&acc.unwrap_or_default()).map_err(user_error)
    }
}

/// `handoff_newest(at, id)`: the id of the row with the greatest (at, id).
struct Newest;

impl Aggregate<Option<(i64, i64)>, Option<i64>> for Newest {
    fn init(&self, _: &mut Context<'_>) -> Result<Option<(i64, i64)>> {
        Ok(None)
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut Option<(i64, i64)>) -> Result<()> {
        let key = (ctx.get::<i64>(0)?, ctx.get::<i64>(1)?);
        if acc.is_none_or(|newest| key > newest) {
            *acc = Some(key);
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<Option<(i64, i64)>>) -> Result<Option<i64>> {
        Ok(acc.flatten().map(|(_, id)| id))
    }
}
