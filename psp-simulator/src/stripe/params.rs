//! Parsing and validation of Stripe's form-encoded parameters.
//!
//! Stripe bodies are `application/x-www-form-urlencoded` with bracketed keys
//! for hashes (`metadata[payment_order_id]=po_1`). We decode to ordered
//! `(name, value)` pairs first — that list is also what idempotency
//! fingerprints compare — and then interpret it per endpoint, rejecting any
//! name the endpoint does not know, as Stripe does.

use std::collections::{BTreeMap, HashMap};

use super::cards::TestCard;
use super::error::ApiError;

/// Largest `amount` accepted, in minor units (Stripe's 8-digit limit).
pub const AMOUNT_MAX: u64 = 99_999_999;
/// Most metadata keys on one object (Stripe's limit).
pub const METADATA_KEYS_MAX: usize = 50;
/// Longest metadata key, in characters (Stripe's limit).
pub const METADATA_KEY_LEN_MAX: usize = 40;
/// Longest metadata value, in characters (Stripe's limit).
pub const METADATA_VALUE_LEN_MAX: usize = 500;
/// Longest `description`, in characters.
pub const DESCRIPTION_LEN_MAX: usize = 1000;
/// Items per page of a list or search when `limit` is absent (Stripe's
/// default).
pub const LIST_LIMIT_DEFAULT: usize = 10;
/// Largest accepted `limit` of a list or search (Stripe's maximum).
pub const LIST_LIMIT_MAX: usize = 100;
/// Length of an ISO 4217 currency code.
const CURRENCY_CODE_LEN: usize = 3;

/// Decoded form parameters, in request order.
pub type Params = Vec<(String, String)>;

/// Decodes a form-encoded body (or query string).
pub fn parse_form(raw: &[u8]) -> Result<Params, ApiError> {
    serde_urlencoded::from_bytes(raw)
        .map_err(|error| ApiError::InvalidRequest { message: format!("Invalid request body: {error}.") })
}

/// A payment method given as a parameter, already resolved to a test card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethodParam {
    pub token: String,
    pub card: TestCard,
}

/// Validated parameters of `POST /v1/payment_intents`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateParams {
    /// Minor units of `currency`.
    pub amount: u64,
    /// Lowercase ISO 4217 code.
    pub currency: String,
    pub payment_method: Option<PaymentMethodParam>,
    pub confirm: bool,
    pub metadata: BTreeMap<String, String>,
    pub description: Option<String>,
    /// Where the 3-D Secure page sends the customer back to.
    pub return_url: Option<String>,
}

/// Validated parameters of `POST /v1/payment_intents/{id}/confirm`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmParams {
    pub payment_method: Option<PaymentMethodParam>,
    pub return_url: Option<String>,
}

/// Parameters split into known scalars and the `metadata[...]` hash.
pub(super) struct Split {
    pub(super) scalars: HashMap<&'static str, String>,
    pub(super) metadata: BTreeMap<String, String>,
}

impl Split {
    /// Splits `params`, accepting only the scalar names in `known` and, if
    /// `metadata_allowed`, `metadata[<key>]`. A repeated scalar keeps its
    /// last value, like Stripe's form decoder.
    pub(super) fn new(params: &Params, known: &[&'static str], metadata_allowed: bool) -> Result<Self, ApiError> {
        let mut split = Self { scalars: HashMap::new(), metadata: BTreeMap::new() };
        for (name, value) in params {
            if let Some(known_name) = known.iter().find(|k| **k == name) {
                split.scalars.insert(known_name, value.clone());
            } else if metadata_allowed && name == "metadata" && value.is_empty() {
                // `metadata=` unsets the whole hash.
                split.metadata.clear();
            } else if let Some(key) = metadata_allowed.then(|| metadata_key(name)).flatten() {
                split.insert_metadata(key, value)?;
            } else {
                return Err(ApiError::ParameterUnknown { param: name.clone() });
            }
        }
        Ok(split)
    }

    fn insert_metadata(&mut self, key: &str, value: &str) -> Result<(), ApiError> {
        let param = format!("metadata[{key}]");
        if key.chars().count() > METADATA_KEY_LEN_MAX {
            return Err(invalid(
                param,
                format!("Metadata keys can have a maximum length of {METADATA_KEY_LEN_MAX} characters."),
            ));
        }
        if value.chars().count() > METADATA_VALUE_LEN_MAX {
            return Err(invalid(
                param,
                format!("Metadata values can have a maximum length of {METADATA_VALUE_LEN_MAX} characters."),
            ));
        }
        if value.is_empty() {
            // An empty value unsets the key (Stripe semantics).
            self.metadata.remove(key);
            return Ok(());
        }
        self.metadata.insert(key.to_owned(), value.to_owned());
        if self.metadata.len() > METADATA_KEYS_MAX {
            return Err(invalid(
                "metadata".to_owned(),
                format!("You can specify up to {METADATA_KEYS_MAX} keys in metadata."),
            ));
        }
        Ok(())
    }

    /// The value of `name`; an empty string is an attempt to unset, which
    /// Stripe rejects for parameters that cannot be unset.
    pub(super) fn non_empty(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        match self.scalars.remove(name) {
            Some(value) if value.is_empty() => Err(ApiError::ParameterInvalid {
                param: name.to_owned(),
                code: Some("parameter_invalid_empty"),
                message: format!(
                    "You passed an empty string for '{name}'. We assume empty values are an \
                     attempt to unset a parameter; however '{name}' cannot be unset. You \
                     should remove '{name}' from your request or supply a non-empty value."
                ),
            }),
            other => Ok(other),
        }
    }

    pub(super) fn required(&mut self, name: &'static str) -> Result<String, ApiError> {
        self.non_empty(name)?.ok_or_else(|| ApiError::ParameterMissing { param: name.to_owned() })
    }

    fn payment_method(&mut self) -> Result<Option<PaymentMethodParam>, ApiError> {
        self.non_empty("payment_method")?
            .map(|token| match TestCard::from_token(&token) {
                Some(card) => Ok(PaymentMethodParam { token, card }),
                None => Err(ApiError::NoSuchPaymentMethod { token }),
            })
            .transpose()
    }
}

/// The key inside `metadata[<key>]`, if `name` has that shape. Nested
/// brackets are not a metadata key (metadata is a flat string map).
fn metadata_key(name: &str) -> Option<&str> {
    let key = name.strip_prefix("metadata[")?.strip_suffix(']')?;
    let flat = !key.is_empty() && !key.contains(['[', ']']);
    flat.then_some(key)
}

pub(super) fn invalid(param: String, message: String) -> ApiError {
    ApiError::ParameterInvalid { param, code: None, message }
}

/// A list or search `limit`: an integer in `1..=LIST_LIMIT_MAX`.
pub fn parse_limit(value: &str) -> Result<usize, ApiError> {
    match value.parse::<usize>() {
        Ok(limit) if (1..=LIST_LIMIT_MAX).contains(&limit) => Ok(limit),
        _ => Err(ApiError::ParameterInvalid {
            param: "limit".to_owned(),
            code: Some("parameter_invalid_integer"),
            message: format!("This value must be between 1 and {LIST_LIMIT_MAX}."),
        }),
    }
}

/// Validates the parameters of `POST /v1/payment_intents`.
pub fn create_params(params: &Params) -> Result<CreateParams, ApiError> {
    let known = ["amount", "currency", "payment_method", "confirm", "description", "return_url"];
    let mut split = Split::new(params, &known, true)?;
    let amount = parse_amount(&split.required("amount")?)?;
    let currency = parse_currency(&split.required("currency")?)?;
    let confirm = split.non_empty("confirm")?.map_or(Ok(false), |value| parse_bool("confirm", &value))?;
    let payment_method = split.payment_method()?;
    if confirm && payment_method.is_none() {
        return Err(ApiError::ParameterMissing { param: "payment_method".to_owned() });
    }
    // An empty description unsets it, which on create means "none".
    let description = split.scalars.remove("description").filter(|d| !d.is_empty());
    if let Some(text) = &description
        && text.chars().count() > DESCRIPTION_LEN_MAX
    {
        return Err(invalid(
            "description".to_owned(),
            format!("Invalid string: description must be at most {DESCRIPTION_LEN_MAX} characters."),
        ));
    }
    let return_url = split.non_empty("return_url")?;
    Ok(CreateParams { amount, currency, payment_method, confirm, metadata: split.metadata, description, return_url })
}

/// Validates the parameters of `POST /v1/payment_intents/{id}/confirm`.
pub fn confirm_params(params: &Params) -> Result<ConfirmParams, ApiError> {
    let mut split = Split::new(params, &["payment_method", "return_url"], false)?;
    Ok(ConfirmParams { payment_method: split.payment_method()?, return_url: split.non_empty("return_url")? })
}

/// A positive integer of minor units, at most [`AMOUNT_MAX`]. Only plain
/// decimal digits are accepted: money is never a float.
pub(super) fn parse_amount(value: &str) -> Result<u64, ApiError> {
    let integer_error = |message: String| ApiError::ParameterInvalid {
        param: "amount".to_owned(),
        code: Some("parameter_invalid_integer"),
        message,
    };
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(integer_error(format!("Invalid integer: {value}")));
    }
    let too_large = || ApiError::ParameterInvalid {
        param: "amount".to_owned(),
        code: Some("amount_too_large"),
        message: format!("Amount must be no more than {AMOUNT_MAX}."),
    };
    // Digits only, so the sole parse failure is overflow.
    let amount: u64 = digits.parse().map_err(|_| too_large())?;
    if value.starts_with('-') || amount == 0 {
        return Err(integer_error("This value must be greater than or equal to 1.".to_owned()));
    }
    if amount > AMOUNT_MAX {
        return Err(too_large());
    }
    Ok(amount)
}

/// A three-letter ISO 4217 code; Stripe accepts any case and answers in
/// lowercase.
fn parse_currency(value: &str) -> Result<String, ApiError> {
    let well_formed = value.len() == CURRENCY_CODE_LEN && value.bytes().all(|b| b.is_ascii_alphabetic());
    if !well_formed {
        return Err(invalid(
            "currency".to_owned(),
            format!("Invalid currency: {value}. Currencies are three-letter ISO codes, e.g. usd."),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

fn parse_bool(param: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(param.to_owned(), format!("Invalid boolean: {value}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Params {
        parse_form(body.as_bytes()).expect("test body is valid form encoding")
    }

    fn create(body: &str) -> Result<CreateParams, ApiError> {
        create_params(&form(body))
    }

    /// A full Stripe-style body decodes, including percent-encoded bracket
    /// keys, and the currency is normalized to lowercase.
    #[test]
    fn parses_full_create_body() {
        let params = create(
            "amount=1000&currency=KRW&payment_method=pm_card_visa&confirm=true\
             &metadata%5Bpayment_order_id%5D=po_1&metadata[note]=a%20b&description=hi",
        )
        .unwrap();
        assert_eq!(params.amount, 1000);
        assert_eq!(params.currency, "krw");
        assert!(params.confirm);
        assert_eq!(params.payment_method.unwrap().card, TestCard::Visa);
        assert_eq!(params.metadata["payment_order_id"], "po_1");
        assert_eq!(params.metadata["note"], "a b");
        assert_eq!(params.description.as_deref(), Some("hi"));
    }

    /// `confirm` defaults to false and then no payment method is needed.
    #[test]
    fn confirm_defaults_to_false() {
        let params = create("amount=5&currency=usd").unwrap();
        assert!(!params.confirm);
        assert!(params.payment_method.is_none());
        assert!(params.metadata.is_empty());
    }

    /// Unknown names, including nested metadata, are `parameter_unknown`.
    #[test]
    fn rejects_unknown_parameters() {
        for body in ["amount=5&currency=usd&foo=1", "amount=5&currency=usd&metadata[a][b]=1"] {
            match create(body) {
                Err(ApiError::ParameterUnknown { param }) => {
                    assert!(body.ends_with(&format!("{param}=1")))
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    /// Required parameters are reported by name.
    #[test]
    fn reports_missing_parameters() {
        assert!(matches!(create("currency=usd"), Err(ApiError::ParameterMissing { param }) if param == "amount"));
        assert!(matches!(create("amount=5"), Err(ApiError::ParameterMissing { param }) if param == "currency"));
        assert!(matches!(
            create("amount=5&currency=usd&confirm=true"),
            Err(ApiError::ParameterMissing { param }) if param == "payment_method"
        ));
    }

    /// Amounts are positive integers within the limit; floats and signs fail.
    #[test]
    fn validates_amounts() {
        for bad in ["0", "-5", "1.5", "1e3", "abc", "+5", "100000000", "99999999999999999999999"] {
            let result = create(&format!("amount={bad}&currency=usd"));
            assert!(
                matches!(&result, Err(ApiError::ParameterInvalid { param, .. }) if param == "amount"),
                "{bad}: {result:?}"
            );
        }
        assert_eq!(create("amount=99999999&currency=usd").unwrap().amount, AMOUNT_MAX);
    }

    /// Currencies must be three letters; booleans must be true/false.
    #[test]
    fn validates_currency_and_confirm() {
        assert!(create("amount=5&currency=usdx").is_err());
        assert!(create("amount=5&currency=u1d").is_err());
        assert!(create("amount=5&currency=usd&confirm=yes").is_err());
        assert!(matches!(
            create("amount=5&currency=&confirm=false"),
            Err(ApiError::ParameterInvalid { code: Some("parameter_invalid_empty"), .. })
        ));
    }

    /// Unknown tokens are `resource_missing`, even without `confirm`.
    #[test]
    fn resolves_payment_method_tokens() {
        assert!(matches!(
            create("amount=5&currency=usd&payment_method=pm_nope"),
            Err(ApiError::NoSuchPaymentMethod { token }) if token == "pm_nope"
        ));
        let confirm = confirm_params(&form("payment_method=pm_card_chargeDeclined")).unwrap();
        assert_eq!(confirm.payment_method.unwrap().card, TestCard::ChargeDeclined);
        assert!(confirm_params(&form("")).unwrap().payment_method.is_none());
        assert!(matches!(confirm_params(&form("amount=5")), Err(ApiError::ParameterUnknown { .. })));
    }

    /// Metadata limits are enforced and empty values unset keys.
    #[test]
    fn enforces_metadata_limits() {
        let long_key = "k".repeat(METADATA_KEY_LEN_MAX + 1);
        assert!(create(&format!("amount=5&currency=usd&metadata[{long_key}]=v")).is_err());
        let long_value = "v".repeat(METADATA_VALUE_LEN_MAX + 1);
        assert!(create(&format!("amount=5&currency=usd&metadata[k]={long_value}")).is_err());
        let many: String = (0..=METADATA_KEYS_MAX).map(|i| format!("&metadata[k{i}]=v")).collect();
        assert!(create(&format!("amount=5&currency=usd{many}")).is_err());
        let unset = create("amount=5&currency=usd&metadata[a]=1&metadata[b]=2&metadata[a]=").unwrap();
        assert_eq!(unset.metadata.keys().collect::<Vec<_>>(), ["b"]);
    }

    /// Form decoding follows the HTML rules Stripe clients rely on: `+` is a
    /// space and a bare name has an empty value (here: an unset attempt).
    #[test]
    fn decodes_form_conventions() {
        let params = create("amount=5&currency=usd&description=two+words").unwrap();
        assert_eq!(params.description.as_deref(), Some("two words"));
        assert!(matches!(
            create("amount&currency=usd"),
            Err(ApiError::ParameterInvalid { code: Some("parameter_invalid_empty"), .. })
        ));
    }
}
