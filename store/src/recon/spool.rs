//! A settlement report on its way in, spooled to a temporary file as it arrives (an HTTP body
//! chunk by chunk, an API's pages item by item, a gRPC stream), hashed as it is written: the
//! import then reads it back line by line, so a day of any size is never held in memory. The
//! file is deleted when the spool is dropped.

use crate::StoreError;
use payments_recon::parse::{CsvLines, api_item_line};
use payments_recon::{LineError, Psp, SettlementLine};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};

/// How a spooled report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFormat {
    /// A settlement CSV, byte for byte as received.
    Csv,
    /// An API's items (Toss settlements, Stripe balance transactions), one JSON object a line.
    ApiItems,
}

/// The lines of a spooled report, read back one at a time.
pub type SpooledLines = Box<dyn Iterator<Item = Result<SettlementLine, LineError>> + Send>;

/// A report being received.
pub struct ReportSpool {
    psp: Psp,
    format: SpoolFormat,
    file: tempfile::NamedTempFile,
    writer: Option<BufWriter<File>>,
    hasher: Sha256,
    bytes: u64,
    items: u64,
}

impl ReportSpool {
    /// An empty spool of `psp`'s report in `format`, in the system's temporary directory.
    pub fn new(psp: Psp, format: SpoolFormat) -> Result<Self, StoreError> {
        let file = tempfile::NamedTempFile::new().map_err(spool_error)?;
        let writer = BufWriter::new(file.reopen().map_err(spool_error)?);
        Ok(ReportSpool { psp, format, file, writer: Some(writer), hasher: Sha256::new(), bytes: 0, items: 0 })
    }

    /// Whose report.
    pub fn psp(&self) -> Psp {
        self.psp
    }

    /// Appends received bytes (a CSV).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let writer = self.writer.as_mut().ok_or_else(|| StoreError::Precondition("the spool was read".into()))?;
        writer.write_all(bytes).map_err(spool_error)?;
        self.hasher.update(bytes);
        self.bytes += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        Ok(())
    }

    /// Appends one API item (its raw JSON, on one line).
    pub fn push_item(&mut self, raw: &str) -> Result<(), StoreError> {
        if raw.contains('\n') {
            return Err(StoreError::Precondition("an API item spans lines".into()));
        }
        self.write(raw.as_bytes())?;
        self.write(b"\n")?;
        self.items += 1;
        Ok(())
    }

    /// Bytes received.
    pub fn len(&self) -> u64 {
        self.bytes
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Hex SHA-256 of everything received.
    pub fn sha256(&self) -> String {
        self.hasher.clone().finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The report's lines, read from the start of the file (writing ends at the first read).
    pub fn lines(&mut self) -> Result<SpooledLines, StoreError> {
        if let Some(mut writer) = self.writer.take() {
            writer.flush().map_err(spool_error)?;
        }
        let psp = self.psp;
        match self.format {
            SpoolFormat::Csv => {
                let lines = CsvLines::new(
                    psp,
                    self.file.reopen().map_err(spool_error)?,
                    self.file.reopen().map_err(spool_error)?,
                )
                .map_err(|e| StoreError::Precondition(format!("settlement report: {e}")))?;
                Ok(Box::new(lines))
            }
            SpoolFormat::ApiItems => {
                let reader = BufReader::new(self.file.reopen().map_err(spool_error)?);
                Ok(Box::new(reader.lines().enumerate().map(move |(index, line)| {
                    let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
                    let raw = line.map_err(|e| LineError::Report(format!("spooled report: {e}")))?;
                    api_item_line(psp, &raw, line_no)
                })))
            }
        }
    }
}

fn spool_error(e: std::io::Error) -> StoreError {
    StoreError::Precondition(format!("spooling the report: {e}"))
}
