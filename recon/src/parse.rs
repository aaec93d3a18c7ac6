//! Readers of the three settlement sources: the daily CSV file, Toss Payments'
//! `GET /v1/settlements` and Stripe's `GET /v1/balance_transactions`. Each turns the PSP's own
//! shape into [`SettlementLine`]s and keeps every line's raw text for the evidence; a malformed
//! report is refused whole, naming the line and the field, so nothing half-read is stored.

use crate::line::{Day, LineError, LineKind, Psp, SettlementLine, currency_code};
use serde_json::Value;

/// Most lines one report may hold (a bound on memory; a PSP's day is split in pages well
/// below this).
pub const REPORT_LINES_MAX: usize = 1_000_000;

/// Columns of the settlement CSV, in the order the simulator writes them (read by name, so
/// another order is accepted).
pub const CSV_COLUMNS: [&str; 11] = [
    "psp",
    "transaction_id",
    "payment_reference",
    "order_id",
    "type",
    "amount_minor",
    "fee_minor",
    "net_minor",
    "currency",
    "sold_date",
    "paid_out_date",
];

/// An optional column: a refund's own PSP id (Stripe `re_...`, Toss the cancel's transaction
/// key), which pairs it with our refund by id rather than by amount.
pub const CSV_REFUND_ID_COLUMN: &str = "refund_id";

/// Reads a settlement CSV (RFC 4180, a header row naming [`CSV_COLUMNS`], and optionally
/// [`CSV_REFUND_ID_COLUMN`]) of `psp`, held in memory. See [`CsvLines`] for a file.
pub fn parse_csv(psp: Psp, text: &str) -> Result<Vec<SettlementLine>, LineError> {
    let source = || std::io::Cursor::new(text.as_bytes());
    CsvLines::new(psp, source(), source())?.collect()
}

/// A settlement CSV read record by record from a seekable source (a spooled file), so a
/// report of any size is never held in memory: each line's raw text is read back from the
/// source by the record's byte range.
pub struct CsvLines<R: std::io::Read, S: std::io::Read + std::io::Seek> {
    psp: Psp,
    records: csv::StringRecordsIntoIter<std::io::BufReader<R>>,
    raw: S,
    columns: Vec<usize>,
    refund_id: Option<usize>,
    end: u64,
    pending: Option<(csv::StringRecord, u64)>,
    count: usize,
    failed: bool,
}

impl<R: std::io::Read, S: std::io::Read + std::io::Seek> CsvLines<R, S> {
    /// Reads the header of `source`, from its start; `raw` is a second, independent reader of
    /// the same bytes (another `Cursor`, the file opened again) the lines' raw text is read
    /// back from.
    pub fn new(psp: Psp, source: R, mut raw: S) -> Result<Self, LineError> {
        let io = |e: std::io::Error| LineError::Report(format!("CSV: {e}"));
        let end = raw.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(std::io::BufReader::new(source));
        let headers = reader.headers().map_err(|e| LineError::Report(format!("CSV header: {e}")))?.clone();
        let column = |name: &'static str| {
            headers
                .iter()
                .position(|h| h.trim() == name)
                .ok_or_else(|| LineError::Report(format!("CSV header has no {name:?} column")))
        };
        let columns: Vec<usize> = CSV_COLUMNS.iter().map(|name| column(name)).collect::<Result<_, _>>()?;
        let refund_id = column(CSV_REFUND_ID_COLUMN).ok();
        let mut lines = CsvLines {
            psp,
            records: reader.into_records(),
            raw,
            columns,
            refund_id,
            end,
            pending: None,
            count: 0,
            failed: false,
        };
        lines.pending = lines.next_record()?;
        Ok(lines)
    }

    fn next_record(&mut self) -> Result<Option<(csv::StringRecord, u64)>, LineError> {
        match self.records.next() {
            None => Ok(None),
            Some(Err(e)) => Err(LineError::Report(format!("CSV: {e}"))),
            Some(Ok(record)) => {
                let start = record.position().map(|p| p.byte()).unwrap_or_default();
                Ok(Some((record, start)))
            }
        }
    }

    fn line(&mut self, record: &csv::StringRecord, start: u64, end: u64) -> Result<SettlementLine, LineError> {
        use std::io::SeekFrom;
        self.count += 1;
        if self.count > REPORT_LINES_MAX {
            return Err(LineError::Report(format!("more than {REPORT_LINES_MAX} lines")));
        }
        let io = |e: std::io::Error| LineError::Report(format!("CSV: {e}"));
        let mut bytes = vec![0; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
        self.raw.seek(SeekFrom::Start(start)).map_err(io)?;
        self.raw.read_exact(&mut bytes).map_err(io)?;
        let raw = String::from_utf8_lossy(&bytes);
        let raw = raw.trim_matches(['\r', '\n']);
        let line_no = u32::try_from(self.count).unwrap_or(u32::MAX);
        let columns = &self.columns;
        let field = |i: usize| record.get(columns[i]).unwrap_or_default().trim();
        let mut line = csv_line(self.psp, line_no, raw, field).map_err(|e| e.at(line_no))?;
        line.refund_reference = self
            .refund_id
            .and_then(|i| record.get(i))
            .map(str::trim)
            .filter(|id| !id.is_empty() && line.kind == LineKind::Refund)
            .map(str::to_owned);
        Ok(line)
    }
}

impl<R: std::io::Read, S: std::io::Read + std::io::Seek> Iterator for CsvLines<R, S> {
    type Item = Result<SettlementLine, LineError>;

    /// The next line; after an error, nothing more.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let (record, start) = self.pending.take()?;
        let result = self.next_record().and_then(|next| {
            let end = next.as_ref().map_or(self.end, |(_, next_start)| *next_start);
            self.pending = next;
            self.line(&record, start, end)
        });
        self.failed = result.is_err();
        Some(result)
    }
}

/// One item of a spooled API report (a JSON object on one line, as [`SettlementLine::raw`]
/// keeps it): a Toss settlement or a Stripe balance transaction.
pub fn api_item_line(psp: Psp, raw: &str, line_no: u32) -> Result<SettlementLine, LineError> {
    let item: Value =
        serde_json::from_str(raw).map_err(|e| LineError::Report(format!("line {line_no}: not a JSON item: {e}")))?;
    let mut line = match psp {
        Psp::Toss => toss_line(&item, line_no),
        Psp::Stripe => stripe_line(&item, line_no),
    }
    .map_err(|e| e.at(line_no))?;
    // The item as spooled, not as serde writes it again.
    raw.clone_into(&mut line.raw);
    Ok(line)
}

fn csv_line<'a>(
    psp: Psp,
    line_no: u32,
    raw: &str,
    field: impl Fn(usize) -> &'a str,
) -> Result<SettlementLine, LineError> {
    if field(0) != psp.as_str() {
        return Err(LineError::Field { field: "psp", message: format!("{:?} in a {psp} report", field(0)) });
    }
    let optional = |i: usize| Some(field(i).to_owned()).filter(|s| !s.is_empty());
    let transaction_id = required(optional(1), "transaction_id")?;
    let paid_out_date = optional(10).map(|d| Day::parse(&d)).transpose()?;
    Ok(SettlementLine {
        line_no,
        kind: LineKind::from_report(&required(optional(4), "type")?),
        transaction_id,
        payment_reference: optional(2),
        order_id: optional(3),
        refund_reference: None,
        amount_minor: integer(field(5), "amount_minor")?,
        fee_minor: integer(field(6), "fee_minor")?,
        net_minor: integer(field(7), "net_minor")?,
        currency: currency_code(field(8))?,
        sold_date: Day::parse(field(9))?,
        paid_out_date,
        raw: raw.to_owned(),
    })
}

/// Reads one page of Toss Payments' `GET /v1/settlements` answer (a JSON array). `first_line_no`
/// numbers the page's items after the earlier pages'. The fee is the sum of `fees[].fee` (the
/// documented shape) or the scalar `fee` (what live answers carry), plus `interestFee`.
pub fn parse_toss_settlements(body: &str, first_line_no: u32) -> Result<Vec<SettlementLine>, LineError> {
    let items: Vec<Value> = serde_json::from_str(body)
        .map_err(|e| LineError::Report(format!("Toss settlements: not a JSON array: {e}")))?;
    if items.len() > REPORT_LINES_MAX {
        return Err(LineError::Report(format!("more than {REPORT_LINES_MAX} lines")));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let line_no = first_line_no.saturating_add(u32::try_from(index).unwrap_or(u32::MAX));
            toss_line(item, line_no).map_err(|e| e.at(line_no))
        })
        .collect()
}

fn toss_line(item: &Value, line_no: u32) -> Result<SettlementLine, LineError> {
    let cancel = item.get("cancel").filter(|c| !c.is_null());
    let fee = match (item.get("fees"), item.get("fee")) {
        (Some(Value::Array(fees)), _) => {
            fees.iter().map(|f| json_integer(f, "fee", "fees[].fee")).try_fold(0_i64, |sum, fee| checked(sum, fee?))?
        }
        (_, Some(scalar)) if !scalar.is_null() => integer_value(scalar, "fee")?,
        _ => 0,
    };
    let interest = item.get("interestFee").filter(|v| !v.is_null()).map(|v| integer_value(v, "interestFee"));
    let fee = checked(fee, interest.transpose()?.unwrap_or(0))?;
    let amount = json_integer(item, "amount", "amount")?;
    let net = match item.get("payOutAmount").filter(|v| !v.is_null()) {
        Some(v) => integer_value(v, "payOutAmount")?,
        None => amount.checked_sub(fee).ok_or_else(|| overflow("payOutAmount"))?,
    };
    let paid_out_date = json_str(item, "paidOutDate").map(Day::parse).transpose()?;
    Ok(SettlementLine {
        line_no,
        kind: if cancel.is_some() { LineKind::Refund } else { LineKind::Charge },
        transaction_id: required(json_str(item, "transactionKey").map(str::to_owned), "transactionKey")?,
        payment_reference: json_str(item, "paymentKey").map(str::to_owned),
        order_id: json_str(item, "orderId").map(str::to_owned),
        refund_reference: cancel.and_then(|c| json_str(c, "transactionKey")).map(str::to_owned),
        amount_minor: amount,
        fee_minor: fee,
        net_minor: net,
        currency: currency_code(json_str(item, "currency").unwrap_or("KRW"))?,
        sold_date: Day::parse(json_str(item, "soldDate").ok_or_else(|| missing("soldDate"))?)?,
        paid_out_date,
        raw: item.to_string(),
    })
}

/// One page of Stripe's balance transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripePage {
    /// The page's lines.
    pub lines: Vec<SettlementLine>,
    /// Stripe's `has_more`.
    pub has_more: bool,
    /// The last item's id: the next page's `starting_after`.
    pub last_id: Option<String>,
}

/// Reads one page of `GET /v1/balance_transactions?expand[]=data.source`. The line's kind is
/// its `reporting_category` (`charge`, `refund`; anything else is kept by name); the expanded
/// `source` gives the payment intent, the order id (`metadata[payment_order_id]`) and a
/// refund's `re_...` id. The settlement day is the UTC day of `created`.
pub fn parse_stripe_balance_transactions(body: &str, first_line_no: u32) -> Result<StripePage, LineError> {
    let list: Value =
        serde_json::from_str(body).map_err(|e| LineError::Report(format!("Stripe list: not JSON: {e}")))?;
    let data = list
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| LineError::Report("Stripe list: no data array".into()))?;
    let lines = data
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let line_no = first_line_no.saturating_add(u32::try_from(index).unwrap_or(u32::MAX));
            stripe_line(item, line_no).map_err(|e| e.at(line_no))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let has_more = list.get("has_more").and_then(Value::as_bool).unwrap_or(false);
    let last_id = data.last().and_then(|item| json_str(item, "id")).map(str::to_owned);
    Ok(StripePage { lines, has_more, last_id })
}

fn stripe_line(item: &Value, line_no: u32) -> Result<SettlementLine, LineError> {
    let category = json_str(item, "reporting_category").or_else(|| json_str(item, "type")).unwrap_or("other");
    let kind = LineKind::from_report(category);
    let source = item.get("source").filter(|s| s.is_object());
    let from_source = |key: &str| source.and_then(|s| json_str(s, key)).map(str::to_owned);
    let order_id =
        source.and_then(|s| s.get("metadata")).and_then(|m| json_str(m, "payment_order_id")).map(str::to_owned);
    let day_of = |key: &'static str| -> Result<Option<Day>, LineError> {
        match item.get(key).filter(|v| !v.is_null()) {
            Some(v) => Ok(Some(Psp::Stripe.day_of_ms(integer_value(v, key)?.saturating_mul(1_000)))),
            None => Ok(None),
        }
    };
    Ok(SettlementLine {
        line_no,
        refund_reference: (kind == LineKind::Refund).then(|| from_source("id")).flatten(),
        kind,
        transaction_id: required(json_str(item, "id").map(str::to_owned), "id")?,
        payment_reference: from_source("payment_intent"),
        order_id,
        amount_minor: json_integer(item, "amount", "amount")?,
        fee_minor: json_integer(item, "fee", "fee")?,
        net_minor: json_integer(item, "net", "net")?,
        currency: currency_code(json_str(item, "currency").ok_or_else(|| missing("currency"))?)?,
        sold_date: day_of("created")?.ok_or_else(|| missing("created"))?,
        paid_out_date: day_of("available_on")?,
        raw: item.to_string(),
    })
}

fn json_str<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn json_integer(value: &Value, key: &str, field: &'static str) -> Result<i64, LineError> {
    integer_value(value.get(key).ok_or_else(|| missing(field))?, field)
}

fn integer_value(value: &Value, field: &'static str) -> Result<i64, LineError> {
    value.as_i64().ok_or_else(|| LineError::Field { field, message: format!("{value} is not an integer") })
}

fn integer(text: &str, field: &'static str) -> Result<i64, LineError> {
    text.parse::<i64>().map_err(|_| LineError::Field { field, message: format!("{text:?} is not an integer") })
}

fn required(value: Option<String>, field: &'static str) -> Result<String, LineError> {
    value.ok_or_else(|| missing(field))
}

fn missing(field: &'static str) -> LineError {
    LineError::Field { field, message: "missing".into() }
}

fn overflow(field: &'static str) -> LineError {
    LineError::Field { field, message: "out of range".into() }
}

fn checked(a: i64, b: i64) -> Result<i64, LineError> {
    a.checked_add(b).ok_or_else(|| overflow("fee"))
}

#[cfg(test)]
mod tests;
