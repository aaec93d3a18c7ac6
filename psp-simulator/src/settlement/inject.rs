//! Applying settlement breaks (`breaks.rs`) to the ledger's entries: a pure
//! transform, so the CSV download, Toss settlements and Stripe balance
//! transactions report exactly the same broken lines.
//!
//! Targets are resolved against the ledger's own lines (breaks never change
//! the ids a target names, and foreign lines are not targets). Every break
//! on a line applies in list order: deltas add up, the last currency wins,
//! each `next_day` moves one more day, each `duplicate` adds one more copy
//! of the line as changed by all its breaks; `drop` wins over everything.
//! The result is ordered by `created` again (stable, so a line and its
//! copies stay adjacent), as the views expect.
//!
//! Everything is reproducible: a pick is a Fisher–Yates shuffle driven by
//! splitmix64 from the pick's seed over the lines sorted by transaction id
//! (the same for the same set of lines), and a foreign line's ids come from
//! splitmix64 seeded by the break's `seed` and its position in the list.

use super::breaks::{Break, CurrencyCode, ForeignAmount, Pick, ReportId, Selector, SoldDate, Target};
use super::{Entry, EntryKind, dates, fees, signed};
use crate::clock::{DAY_SECS, KST_OFFSET_SECS};
use crate::ledger::Psp;

/// Seconds after local midnight at which a foreign line was "sold": noon,
/// safely inside its day whatever the offset.
const FOREIGN_TIME_OF_DAY_SECS: i64 = 12 * 3_600;
/// Random characters of a Stripe-style id (as `stripe::intent`).
const STRIPE_ID_RANDOM_LEN: usize = 24;
/// Characters of a Toss `paymentKey` (as `toss::payment`).
const TOSS_PAYMENT_KEY_LEN: usize = 50;
/// Characters of a Toss `transactionKey` (as `toss::payment`).
const TOSS_TRANSACTION_KEY_LEN: usize = 32;
/// Random characters after `order_` in a foreign Toss `orderId`.
const TOSS_ORDER_ID_RANDOM_LEN: usize = 20;
/// Characters ids are drawn from.
const ALPHANUMERIC: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `base` (the ledger's entries of `psp`, oldest first) as the PSP reports
/// them under `breaks`.
pub fn apply(psp: Psp, base: Vec<Entry>, breaks: &[Break]) -> Vec<Entry> {
    let mut lines: Vec<Line> = base.into_iter().map(|entry| Line { entry, dropped: false, copies: 1 }).collect();
    let mut foreign = Vec::new();
    for (position, item) in breaks.iter().enumerate() {
        if let Break::Foreign { amount_minor, currency, date, seed, order_id } = item {
            let spec = ForeignSpec { amount: *amount_minor, currency, date: *date, order_id: order_id.as_ref() };
            foreign.extend(foreign_entry(psp, spec, *seed, position));
            continue;
        }
        for index in matching(&lines, target_of(item)) {
            if let Some(line) = lines.get_mut(index) {
                change(line, item);
            }
        }
    }
    let mut reported: Vec<Entry> = lines
        .into_iter()
        .filter(|line| !line.dropped)
        .flat_map(|line| std::iter::repeat_n(line.entry, line.copies))
        .collect();
    reported.extend(foreign);
    reported.sort_by_key(|entry| entry.created);
    reported
}

/// One ledger line on its way into the report.
struct Line {
    entry: Entry,
    dropped: bool,
    /// How many times it is reported (more than once when duplicated).
    copies: usize,
}

fn target_of(item: &Break) -> Option<&Target> {
    match item {
        Break::Drop { target }
        | Break::Amount { target, .. }
        | Break::Fee { target, .. }
        | Break::Currency { target, .. }
        | Break::Duplicate { target }
        | Break::NextDay { target } => Some(target),
        Break::Foreign { .. } => None,
    }
}

/// Indices of the lines `target` names.
fn matching(lines: &[Line], target: Option<&Target>) -> Vec<usize> {
    let Some(target) = target else { return Vec::new() };
    let candidates: Vec<(usize, &Line)> =
        lines.iter().enumerate().filter(|(_, line)| target.accepts(line.entry.kind)).collect();
    let names = |entry: &Entry| match &target.selector {
        Selector::PaymentReference(id) => entry.payment_reference == id.as_str(),
        Selector::OrderId(id) => entry.order_id.as_deref() == Some(id.as_str()),
        Selector::TransactionId(id) => entry.transaction_id == id.as_str(),
        Selector::Pick(_) => false,
    };
    match &target.selector {
        Selector::Pick(pick) => picked(candidates, *pick),
        _ => candidates.into_iter().filter(|(_, line)| names(&line.entry)).map(|(index, _)| index).collect(),
    }
}

/// The line at `pick.index` of a seeded shuffle of `candidates` sorted by
/// transaction id; none if there are not that many.
fn picked(mut candidates: Vec<(usize, &Line)>, pick: Pick) -> Vec<usize> {
    candidates.sort_by(|(_, a), (_, b)| a.entry.transaction_id.cmp(&b.entry.transaction_id));
    let mut rng = SplitMix64(pick.seed);
    for last in (1..candidates.len()).rev() {
        candidates.swap(last, rng.below(last + 1));
    }
    usize::try_from(pick.index)
        .ok()
        .and_then(|index| candidates.get(index))
        .map(|(index, _)| *index)
        .into_iter()
        .collect()
}

/// Applies one targeted break to `line`.
fn change(line: &mut Line, item: &Break) {
    let entry = &mut line.entry;
    match item {
        Break::Drop { .. } => line.dropped = true,
        Break::Amount { delta_minor, .. } => match entry.amount_minor.checked_add(delta_minor.get()) {
            Some(amount) => entry.amount_minor = amount,
            None => tracing::warn!(transaction_id = %entry.transaction_id, "amount break overflows; ignored"),
        },
        Break::Fee { delta_minor, .. } => match entry.fee_minor.checked_add(delta_minor.get()) {
            Some(fee) => entry.fee_minor = fee,
            None => tracing::warn!(transaction_id = %entry.transaction_id, "fee break overflows; ignored"),
        },
        Break::Currency { currency, .. } => entry.currency = currency.for_psp(entry.psp),
        Break::Duplicate { .. } => line.copies = line.copies.saturating_add(1),
        Break::NextDay { .. } => {
            entry.sold_date = entry.sold_date.plus_days(1);
            entry.paid_out_date = entry.paid_out_date.plus_days(1);
            // Day filters on `created` (Stripe) must see the line a day later too.
            entry.created = entry.created.saturating_add(DAY_SECS.unsigned_abs());
        }
        Break::Foreign { .. } => {}
    }
    // Amounts and fees are bounded far below overflow (DELTA_MINOR_MAX), so
    // this only fails on a line already absurd; keep the old net then.
    if let Some(net) = entry.amount_minor.checked_sub(entry.fee_minor) {
        entry.net_minor = net;
    }
}

/// What a foreign break asks for.
struct ForeignSpec<'a> {
    amount: ForeignAmount,
    currency: &'a CurrencyCode,
    date: SoldDate,
    order_id: Option<&'a ReportId>,
}

/// The extra charge line of a foreign break at `position`.
fn foreign_entry(psp: Psp, spec: ForeignSpec<'_>, seed: u64, position: usize) -> Option<Entry> {
    let offset = match psp {
        Psp::Stripe => 0,
        Psp::Toss => KST_OFFSET_SECS,
    };
    let created = u64::try_from(spec.date.0.midnight_unix(offset).checked_add(FOREIGN_TIME_OF_DAY_SECS)?).ok()?;
    let amount = spec.amount.get();
    let currency = spec.currency.for_psp(psp);
    let fee = match psp {
        Psp::Stripe => fees::stripe_fee(amount, &currency),
        Psp::Toss => fees::toss_fee(amount).0,
    };
    // Mixing the position in keeps two foreign lines with one seed apart.
    let mut rng = SplitMix64(SplitMix64(seed).next() ^ u64::try_from(position).unwrap_or(u64::MAX));
    let given_order = spec.order_id.map(|id| id.as_str().to_owned());
    let (transaction_id, source, payment_reference, order_id) = match psp {
        Psp::Stripe => {
            let (txn, charge, intent) = (rng.id("txn"), rng.id("ch"), rng.id("pi"));
            (txn, charge, intent, given_order)
        }
        Psp::Toss => {
            let transaction_key = rng.alphanumeric(TOSS_TRANSACTION_KEY_LEN).to_ascii_uppercase();
            let payment_key = rng.alphanumeric(TOSS_PAYMENT_KEY_LEN);
            let order_id =
                given_order.unwrap_or_else(|| format!("order_{}", rng.alphanumeric(TOSS_ORDER_ID_RANDOM_LEN)));
            (transaction_key.clone(), transaction_key, payment_key, Some(order_id))
        }
    };
    let (sold_date, paid_out_date) = dates(psp, created);
    Some(Entry {
        psp,
        kind: EntryKind::Charge,
        transaction_id,
        source,
        payment_reference,
        order_id,
        amount_minor: signed(amount),
        fee_minor: signed(fee),
        net_minor: signed(amount).checked_sub(signed(fee))?,
        currency,
        created,
        sold_date,
        paid_out_date,
        reason: None,
    })
}

/// Steele, Lea and Flood's splitmix64: tiny, seedable and the same on
/// every platform and crate version — what reproducible breaks need. Its
/// arithmetic wraps by design (it is a hash, not money).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0; the modulo bias is irrelevant
    /// for picking test lines).
    fn below(&mut self, bound: usize) -> usize {
        let bound = u64::try_from(bound).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next() % bound).unwrap_or(0)
    }

    fn alphanumeric(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(ALPHANUMERIC[self.below(ALPHANUMERIC.len())])).collect()
    }

    /// A Stripe-style `<prefix>_<24 alphanumerics>`.
    fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{}", self.alphanumeric(STRIPE_ID_RANDOM_LEN))
    }
}

#[cfg(test)]
mod tests;
