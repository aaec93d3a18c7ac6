//! Card-number detection. Card data must never reach our storage (PCI DSS scope): requests
//! carry a PSP token, and any text holding a primary account number (PAN) is refused.
//!
//! A PAN is found anywhere inside a text, not only as the whole text: `"pan 4111111111111111"`,
//! `"4111.1111.1111.1111"`, `"4111111111111111 exp 12/27"`, full-width `"４１１１…"` and
//! `"chk-4111111111111111"` all hold one. How: the text is cut into *runs*, digits (any Unicode
//! decimal digit) with single separators between them; a run is split into *groups* at its
//! separators; every contiguous sequence of groups holding [`CARD_DIGITS_MIN`] to
//! [`CARD_DIGITS_MAX`] digits and grouped the way card numbers are written (one group; groups
//! of 4, 8 or 12 digits with a last group of at most 4 or a multiple of 4; American Express's
//! 4-6-5 and Diners Club's 4-6-4) is a candidate, and a candidate is a PAN when it starts with
//! an issuer prefix of a major network ([`ISSUER_PREFIXES`]) and passes the Luhn check.
//!
//! The prefix and grouping checks are what keep numeric ids out: a Luhn check alone flags one
//! number in ten, e.g. the timestamp `20261130123456789` or an id like `6803-12345678-0`.
//! Digits are never cut out of the middle of a group, so a run of more than [`CARD_DIGITS_MAX`]
//! digits without separators is never a card number, nor is a PAN glued to further digits
//! (`"04111111111111111"` is another number).

/// Fewest digits of a candidate. ISO/IEC 7812 allows 12, but every network in
/// [`ISSUER_PREFIXES`] issues 13 or more, and each digit less admits more ids and dates.
pub const CARD_DIGITS_MIN: usize = 13;
/// Most digits of a PAN (ISO/IEC 7812).
pub const CARD_DIGITS_MAX: usize = 19;

/// Issuer identification number (IIN) ranges of the major networks: `(first, last, digits)`
/// matches a number whose first `digits` digits, read as an integer, lie in `first..=last`.
/// Maestro is listed by its issued prefixes rather than the whole 50 and 56-69 space, which
/// would flag one numeric id in ten starting with 5 or 6.
pub const ISSUER_PREFIXES: &[(u32, u32, usize)] = &[
    (4, 4, 1),       // Visa
    (51, 55, 2),     // Mastercard
    (2221, 2720, 4), // Mastercard 2-series
    (34, 34, 2),     // American Express
    (37, 37, 2),     // American Express
    (6011, 6011, 4), // Discover
    (644, 649, 3),   // Discover
    (65, 65, 2),     // Discover
    (3528, 3589, 4), // JCB
    (300, 305, 3),   // Diners Club
    (36, 36, 2),     // Diners Club
    (38, 39, 2),     // Diners Club
    (62, 62, 2),     // UnionPay
    (5018, 5018, 4), // Maestro
    (5020, 5020, 4), // Maestro
    (5038, 5038, 4), // Maestro
    (5893, 5893, 4), // Maestro
    (6304, 6304, 4), // Maestro
    (6759, 6759, 4), // Maestro
    (6761, 6763, 4), // Maestro
];

/// The zero of every block of Unicode decimal digits (general category Nd); each block holds
/// its ten digits consecutively from its zero. `char::to_digit` knows ASCII only.
///
/// Generated once with Python 3.11 (`unicodedata.unidata_version` 14.0.0):
/// `[c for c in range(0x110000) if unicodedata.category(chr(c)) == "Nd" and unicodedata.digit(chr(c)) == 0]`
/// (66 zeros, 660 Nd code points, every block checked to be 0..=9 in order). Nd blocks added
/// after Unicode 14 (Kawi, Nag Mundari, Garay, ...) are not listed; regenerate with a newer
/// Python to add them.
const ND_ZEROS: [u32; 66] = [
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66, 0x0DE6,
    0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40,
    0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0,
    0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50,
    0x11DA0, 0x16A60, 0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950,
    0x1FBF0,
];

/// The value of a Unicode decimal digit (any script), or `None`.
fn decimal_digit(c: char) -> Option<u8> {
    let c = u32::from(c);
    // The block whose zero is the last one at or below `c`; `c` is one of its digits when it
    // lies within ten of that zero.
    let zero = match ND_ZEROS.binary_search(&c) {
        Ok(i) => ND_ZEROS[i],
        Err(0) => return None,
        Err(i) => ND_ZEROS[i - 1],
    };
    let value = c - zero;
    if value < 10 { u8::try_from(value).ok() } else { None }
}

/// Characters that may sit, one at a time, between the digits of a written card number:
/// spaces, dashes and dots, with their no-break, typographic and full-width forms.
const SEPARATORS: &[char] = &[
    ' ', '\u{00A0}', // no-break space
    '\u{2007}', // figure space
    '\u{202F}', // narrow no-break space
    '\u{3000}', // ideographic (full-width) space
    '-', '\u{00AD}', // soft hyphen
    '\u{2010}', // hyphen
    '\u{2011}', // non-breaking hyphen
    '\u{2012}', // figure dash
    '\u{2013}', // en dash
    '\u{2014}', // em dash
    '\u{2015}', // horizontal bar
    '\u{2212}', // minus sign
    '\u{FE58}', // small em dash
    '\u{FE63}', // small hyphen-minus
    '\u{FF0D}', // full-width hyphen-minus
    '.', '\u{FF0E}', // full-width full stop
];

/// True when `text` holds a card number anywhere (see the module docs for the rules).
///
/// Work is linear in the length of `text` and memory is bounded: a candidate holds at most
/// [`CARD_DIGITS_MAX`] digits and every group at least one, so when a group ends only the
/// sequences ending with it (at most [`CARD_DIGITS_MAX`] groups back) are examined, and only
/// the groups that could still start a candidate are kept.
pub fn contains_card_number(text: &str) -> bool {
    let mut scanner = Scanner::default();
    text.chars().any(|c| scanner.step(c)) || scanner.end_run()
}

/// Former name of [`contains_card_number`], which it now calls: a text that is itself a card
/// number also contains one.
pub fn looks_like_card_number(text: &str) -> bool {
    contains_card_number(text)
}

/// Whether any key, string or number anywhere inside a JSON value holds a card number.
pub fn json_contains_card_number(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => contains_card_number(s),
        serde_json::Value::Number(n) => contains_card_number(&n.to_string()),
        serde_json::Value::Array(items) => items.iter().any(json_contains_card_number),
        serde_json::Value::Object(map) => {
            map.iter().any(|(key, value)| contains_card_number(key) || json_contains_card_number(value))
        }
        serde_json::Value::Bool(_) | serde_json::Value::Null => false,
    }
}

/// The state of a scan through one run.
#[derive(Default)]
struct Scanner {
    /// Digits of `groups` followed by those of the group being read (up to
    /// [`CARD_DIGITS_MAX`] of it): at most `2 * CARD_DIGITS_MAX` digits.
    digits: Vec<u8>,
    /// Lengths of the finished groups of this run that may still start a candidate.
    groups: Vec<usize>,
    /// Digits in the group being read (counted past [`CARD_DIGITS_MAX`], not stored).
    current: usize,
}

impl Scanner {
    /// Takes the next character; true when a card number has been found.
    fn step(&mut self, c: char) -> bool {
        if let Some(d) = decimal_digit(c) {
            self.current = self.current.saturating_add(1);
            if self.current <= CARD_DIGITS_MAX {
                self.digits.push(d);
            }
            return false;
        }
        if self.current > 0 && SEPARATORS.contains(&c) {
            return self.end_group();
        }
        // Any other character, a second separator in a row, or a separator with no digit
        // before it ends the run.
        self.end_run()
    }

    /// Ends the run: checks its last group and starts afresh.
    fn end_run(&mut self) -> bool {
        let found = self.end_group();
        self.digits.clear();
        self.groups.clear();
        found
    }

    /// Ends the group being read and checks every candidate ending with it.
    fn end_group(&mut self) -> bool {
        let len = std::mem::replace(&mut self.current, 0);
        if len == 0 {
            return false;
        }
        if len > CARD_DIGITS_MAX {
            // No candidate can hold this group, so none can span it either.
            self.digits.clear();
            self.groups.clear();
            return false;
        }
        self.groups.push(len);
        let mut digits_in = 0;
        for first in (0..self.groups.len()).rev() {
            digits_in += self.groups[first];
            if digits_in > CARD_DIGITS_MAX {
                break;
            }
            if digits_in >= CARD_DIGITS_MIN
                && is_card_grouping(&self.groups[first..])
                && is_card_number(&self.digits[self.digits.len() - digits_in..])
            {
                return true;
            }
        }
        // A group starting CARD_DIGITS_MAX or more kept digits can start no later candidate,
        // since the group that would end it holds at least one more digit.
        while self.digits.len() >= CARD_DIGITS_MAX {
            let first = self.groups.remove(0);
            self.digits.drain(..first);
        }
        false
    }
}

/// Whether groups of these lengths are how a card number is written: one group; every group
/// but the last a multiple of 4 digits (4-4-4-4, 8-8, 12-4; a separator may be left out), the
/// last a multiple of 4 or at most 4 (4-4-4-4-3); or 4-6-5 (American Express) and 4-6-4
/// (Diners Club).
fn is_card_grouping(groups: &[usize]) -> bool {
    match groups {
        [] => false,
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [rest @ .., last] => rest.iter().all(|g| g % 4 == 0) && (last % 4 == 0 || *last <= 4),
    }
}

/// A known issuer prefix and a valid Luhn check digit.
fn is_card_number(digits: &[u8]) -> bool {
    has_issuer_prefix(digits) && luhn_valid(digits)
}

fn has_issuer_prefix(digits: &[u8]) -> bool {
    ISSUER_PREFIXES.iter().any(|&(first, last, len)| {
        let prefix = digits.iter().take(len).fold(0_u32, |acc, &d| acc * 10 + u32::from(d));
        // Candidates hold 13 digits or more, so the prefix is always complete.
        (first..=last).contains(&prefix)
    })
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// `text` with its ASCII digits written from the Nd block starting at `zero`.
    fn in_script(text: &str, zero: u32) -> String {
        text.chars()
            .map(|c| match c.to_digit(10) {
                Some(d) => char::from_u32(zero + d).unwrap(),
                None => c,
            })
            .collect()
    }

    /// The digit table is sorted (the lookup is a binary search) and every entry is a digit.
    #[test]
    fn the_digit_table_is_sorted_and_numeric() {
        assert!(ND_ZEROS.windows(2).all(|w| w[0] + 10 <= w[1]));
        for zero in ND_ZEROS {
            for d in 0..10 {
                let c = char::from_u32(zero + d).unwrap();
                assert!(c.is_numeric(), "{c:?}");
                assert_eq!(decimal_digit(c), Some(d as u8), "{c:?}");
            }
        }
        // A letter, the characters either side of '0'..='9' and of full-width '０'..='９',
        // superscript two and circled one (numeric, but not Nd) are not digits.
        for c in ['a', '/', ':', '\u{FF0F}', '\u{FF1A}', '\u{00B2}', '\u{2460}'] {
            assert_eq!(decimal_digit(c), None, "{c:?}");
        }
    }

    /// The texts a whole-string check missed (found by the audit) hold a card number.
    #[test]
    fn finds_card_numbers_inside_text() {
        for text in [
            "4111111111111111",
            "pan 4111111111111111",
            "4111.1111.1111.1111",
            "4111111111111111 exp 12/27",
            "card: 4111-1111-1111-1111, cvc 123",
            "chk-4111111111111111",
            "４１１１１１１１１１１１１１１１",
            "４１１１－１１１１－１１１１－１１１１",
            "４１１１．１１１１．１１１１．１１１１",
            "4111\u{A0}1111\u{A0}1111\u{A0}1111",
            "4111\u{2013}1111\u{2013}1111\u{2013}1111",
            "ref 12 4111 1111 1111 1111 99",
            "(4111111111111111)",
        ] {
            assert!(contains_card_number(text), "{text:?}");
        }
        assert!(contains_card_number(&in_script("pan 4111 1111 1111 1111", 0x0660)), "Arabic-Indic");
        assert!(contains_card_number(&in_script("4111-1111-1111-1111", 0x0966)), "Devanagari");
    }

    /// Each major network's test number is found; a bad check digit or an unknown issuer is not.
    #[test]
    fn knows_the_major_networks() {
        for pan in [
            "4242424242424242", // Visa
            "5555555555554444", // Mastercard
            "2223003122003222", // Mastercard 2-series
            "378282246310005",  // American Express
            "6011111111111117", // Discover
            "3530111333300000", // JCB
            "30569309025904",   // Diners Club
            "6200000000000005", // UnionPay
            "6759649826438453", // Maestro
            "5018000000000009", // Maestro
        ] {
            assert!(contains_card_number(pan), "{pan}");
        }
        assert!(!contains_card_number("4111111111111112"), "Luhn");
        assert!(!contains_card_number("1012345678123459"), "Luhn-valid, no issuer");
    }

    /// Ids, timestamps, phone numbers, dates and amounts are not card numbers.
    #[test]
    fn leaves_ids_dates_and_amounts_alone() {
        for text in [
            "po-1",
            "chk-1001-1",
            "seller-alice",
            "order-20261130-000123",
            "demo-1764501234-a1b2c3-2",
            "order-6803-12345678-0", // Luhn-valid, but not how a card number is grouped
            "order-6503-123456789-0",
            "20261130123456789", // Luhn-valid: only the issuer check tells it apart
            "1764501234567",
            "2026-11-30T12:34:56.789123Z",
            "2026-11-30",
            "010-1234-5678",
            "+82 10-1234-5678",
            "+1 415-555-0123",
            "9999999999999.99",
            "USD 12,345.67",
            "KRW 50000000",
            "12345",
            "pm_card_visa",
            "",
        ] {
            assert!(!contains_card_number(text), "{text:?}");
        }
    }

    /// Documented limits: digits are never cut out of a group, and two separators end a run.
    #[test]
    fn runs_and_groups_follow_the_documented_rules() {
        assert!(!contains_card_number("41111111111111111111"), "20 digits, no separator");
        assert!(!contains_card_number("04111111111111111"), "glued to another digit");
        assert!(!contains_card_number("4111  1111  1111  1111"), "two separators in a row");
        assert!(!contains_card_number("4111 -1111- 1111 -1111"), "two separators in a row");
        assert!(contains_card_number("41111111111111111111 4111111111111111"));
        assert!(contains_card_number("4111111111111111.1"));
        assert!(contains_card_number("3782 822463 10005"), "American Express 4-6-5");
        assert!(contains_card_number("3056 930902 5904"), "Diners Club 4-6-4");
        assert!(!contains_card_number("4111-11111111111-1"), "4-11-1 is not a card grouping");
    }

    /// Keys count as much as values, at any depth, and so do numbers.
    #[test]
    fn json_keys_values_and_numbers_are_checked() {
        assert!(json_contains_card_number(&json!({"a": {"b": ["x", "4111 1111 1111 1111"]}})));
        assert!(json_contains_card_number(&json!({"4111111111111111": "x"})));
        assert!(json_contains_card_number(&json!({"a": [{"note 4111.1111.1111.1111": true}]})));
        assert!(json_contains_card_number(&json!({"n": 4111111111111111_u64})));
        assert!(!json_contains_card_number(&json!({"buyer_id": "b-1", "age": 30, "ok": true, "x": null})));
    }

    /// A Luhn-valid Visa number built from 15 random digits after the leading 4.
    fn visa() -> impl Strategy<Value = String> {
        proptest::collection::vec(0_u32..10, 14).prop_map(|rest| {
            let body: String = std::iter::once(4).chain(rest).map(|d| char::from_digit(d, 10).unwrap()).collect();
            (0..10)
                .map(|d| format!("{body}{d}"))
                .find(|n| luhn_valid(&n.bytes().map(|b| b - b'0').collect::<Vec<_>>()))
                .unwrap()
        })
    }

    proptest! {
        /// Any Visa number, in ASCII or full-width digits, with any of none, ' ', '-' or '.'
        /// between its 4-digit groups, is found inside any text, as long as no digit touches
        /// it (a touching digit makes it another number).
        #[test]
        fn finds_a_visa_number_anywhere(
            pan in visa(),
            seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-"), Just(".")], 3),
            full_width in any::<bool>(),
            before in "\\PC{0,24}",
            left in "[^\\p{Nd}]",
            right in "[^\\p{Nd}]",
            after in "\\PC{0,24}",
        ) {
            let groups: Vec<&str> = (0..4).map(|i| &pan[i * 4..i * 4 + 4]).collect();
            let mut written = groups[0].to_owned();
            for (sep, group) in seps.iter().zip(&groups[1..]) {
                written.push_str(sep);
                written.push_str(group);
            }
            let written = if full_width { in_script(&written, 0xFF10) } else { written };
            let text = format!("{before}{left}{written}{right}{after}");
            prop_assert!(contains_card_number(&text), "{:?}", text);
        }

        /// Scanning never panics, whatever the input.
        #[test]
        fn never_panics(s in "\\PC{0,80}") {
            let _ = contains_card_number(&s);
        }
    }
}
