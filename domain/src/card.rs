//! Card-number detection. Card data must never reach our storage (PCI DSS scope): requests
//! carry a PSP token, and anything that looks like a primary account number is refused.

/// True when `text`, ignoring spaces and dashes, is 12 to 19 digits passing the Luhn check:
/// the shape of a card number (PAN).
pub fn looks_like_card_number(text: &str) -> bool {
    let mut digits = Vec::with_capacity(19);
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            ' ' | '-' => {}
            _ => return false,
        }
        if digits.len() > 19 {
            return false;
        }
    }
    digits.len() >= 12 && luhn_valid(&digits)
}

/// Whether any string inside a JSON value looks like a card number.
pub fn json_contains_card_number(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => looks_like_card_number(s),
        serde_json::Value::Number(n) => looks_like_card_number(&n.to_string()),
        serde_json::Value::Array(items) => items.iter().any(json_contains_card_number),
        serde_json::Value::Object(map) => map.values().any(json_contains_card_number),
        _ => false,
    }
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

    #[test]
    fn detects_test_card_numbers() {
        assert!(looks_like_card_number("4242424242424242"));
        assert!(looks_like_card_number("4242 4242 4242 4242"));
        assert!(looks_like_card_number("5555-5555-5555-4444"));
        assert!(!looks_like_card_number("4242424242424241"));
        assert!(!looks_like_card_number("pm_card_visa"));
        assert!(!looks_like_card_number("12345"));
        let v = serde_json::json!({"a": {"b": ["x", "4111 1111 1111 1111"]}});
        assert!(json_contains_card_number(&v));
    }
}
