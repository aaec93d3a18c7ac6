//! Decoding and validating Toss's JSON request bodies, and the canonical
//! form of a body used to recognise "the same request" on key reuse.

use axum::body::Bytes;
use serde_json::{Map, Value};

use super::error::TossError;

/// Longest `orderId` Toss accepts.
pub const ORDER_ID_LEN_MAX: usize = 64;
/// Shortest `orderId` Toss accepts.
pub const ORDER_ID_LEN_MIN: usize = 6;
/// Longest `orderName` Toss accepts.
pub const ORDER_NAME_LEN_MAX: usize = 100;
/// Longest `cancelReason` Toss accepts.
pub const CANCEL_REASON_LEN_MAX: usize = 200;

/// A decoded JSON object body.
pub type Object = Map<String, Value>;

/// Decodes `body` as a JSON object.
pub fn parse(body: &Bytes) -> Result<Object, TossError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        _ => Err(TossError::invalid_request("요청 본문이 올바른 JSON 객체가 아닙니다.")),
    }
}

/// A required non-empty string of at most `len_max` characters.
pub fn required_string(object: &Object, name: &str, len_max: usize) -> Result<String, TossError> {
    match object.get(name) {
        Some(Value::String(text)) if !text.is_empty() && text.chars().count() <= len_max => Ok(text.clone()),
        Some(Value::String(text)) if !text.is_empty() => {
            Err(TossError::invalid_request(&format!("{name}은(는) 최대 {len_max}자입니다.")))
        }
        _ => Err(TossError::invalid_request(&format!("필수 파라미터 {name}이(가) 누락되었습니다."))),
    }
}

/// A required `orderId`: 6–64 characters of letters, digits, `-` and `_`.
pub fn order_id(object: &Object) -> Result<String, TossError> {
    let id = required_string(object, "orderId", ORDER_ID_LEN_MAX)?;
    let well_formed =
        id.len() >= ORDER_ID_LEN_MIN && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(TossError::invalid_request(
            "orderId는 영문 대소문자, 숫자, 특수문자 -, _ 로 이루어진 6자 이상 64자 이하의 문자열이어야 합니다.",
        ));
    }
    Ok(id)
}

/// An optional positive integer amount (won); floats and strings fail.
pub fn optional_amount(object: &Object, name: &str) -> Result<Option<u64>, TossError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(amount) if amount > 0 => Ok(Some(amount)),
            _ => Err(TossError::invalid_request(&format!("{name}은(는) 0보다 큰 정수여야 합니다."))),
        },
        Some(_) => Err(TossError::invalid_request(&format!("{name}은(는) 숫자여야 합니다."))),
    }
}

/// A required positive integer amount.
pub fn required_amount(object: &Object, name: &str) -> Result<u64, TossError> {
    optional_amount(object, name)?
        .ok_or_else(|| TossError::invalid_request(&format!("필수 파라미터 {name}이(가) 누락되었습니다.")))
}

/// Rejects any `currency` other than KRW (Toss card payments are in won).
pub fn krw_only(object: &Object) -> Result<(), TossError> {
    match object.get("currency") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(code)) if code == "KRW" => Ok(()),
        Some(_) => Err(TossError::invalid_request("카드 결제는 원화(KRW)만 지원합니다.")),
    }
}

/// `(path, JSON value)` pairs of every leaf of `body`, so two bodies with
/// the same content in a different key order compare equal.
pub fn canonical_pairs(body: &Object) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (name, value) in body {
        flatten(name.clone(), value, &mut pairs);
    }
    pairs
}

fn flatten(path: String, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) => {
            for (name, inner) in object {
                flatten(format!("{path}.{name}"), inner, out);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                flatten(format!("{path}[{index}]"), inner, out);
            }
        }
        leaf => out.push((path, leaf.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Object {
        parse(&Bytes::from(text.to_owned())).unwrap()
    }

    /// Amounts must be positive integers; order ids follow Toss's rules.
    #[test]
    fn validates_fields() {
        let body = object(r#"{"amount": 1000, "orderId": "order_123", "bad": 1.5}"#);
        assert_eq!(required_amount(&body, "amount"), Ok(1000));
        assert!(required_amount(&body, "bad").is_err());
        assert!(required_amount(&body, "missing").is_err());
        assert_eq!(order_id(&body).unwrap(), "order_123");
        assert!(order_id(&object(r#"{"orderId": "abc"}"#)).is_err());
        assert!(order_id(&object(r#"{"orderId": "order 1234"}"#)).is_err());
        assert!(krw_only(&object(r#"{"currency": "USD"}"#)).is_err());
        assert!(parse(&Bytes::from_static(b"[1]")).is_err());
    }

    /// `canonical_pairs` of `text`, sorted (the map's iteration order is
    /// serde_json's business; the fingerprint sorts too).
    fn sorted_pairs(text: &str) -> Vec<(String, String)> {
        let mut pairs = canonical_pairs(&object(text));
        pairs.sort();
        pairs
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(path, value)| ((*path).to_owned(), (*value).to_owned())).collect()
    }

    /// The canonical form is exactly every leaf as `(path, JSON text)`:
    /// nested keys joined with `.`, array items indexed, strings quoted.
    /// Key order does not change it; a changed value, a string for a
    /// number or a reordered array does.
    #[test]
    fn canonical_form_is_every_leaf_by_path() {
        let expected = pairs(&[("a", "1"), ("b.c", "\"x\""), ("b.d[0]", "true"), ("b.d[1]", "null")]);
        assert_eq!(sorted_pairs(r#"{"a": 1, "b": {"c": "x", "d": [true, null]}}"#), expected);
        assert_eq!(sorted_pairs(r#"{"b": {"d": [true, null], "c": "x"}, "a": 1}"#), expected);
        let changed = pairs(&[("a", "2"), ("b.c", "\"x\""), ("b.d[0]", "true"), ("b.d[1]", "null")]);
        assert_eq!(sorted_pairs(r#"{"a": 2, "b": {"c": "x", "d": [true, null]}}"#), changed);
        assert_eq!(sorted_pairs(r#"{"a": "1"}"#), pairs(&[("a", "\"1\"")]));
        assert_eq!(sorted_pairs(r#"{"d": [null, true]}"#), pairs(&[("d[0]", "null"), ("d[1]", "true")]));
    }
}
