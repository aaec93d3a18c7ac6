//! The HTML of the payment window: plain pages, minimal CSS, stable ids.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::request::{HOSTED_CARDS, PayRequest};
use super::{
    AMOUNT_ID, AUTHENTICATE_BUTTON_ID, CANCEL_BUTTON_ID, CARD_SUCCESS_ID, ERROR_ID, FAIL_AUTHENTICATION_BUTTON_ID,
    ORDER_NAME_ID, PAY_BUTTON_ID,
};
use crate::stripe::threeds::escape;
use crate::toss::payment::Payment;

/// Digits between thousands separators.
const DIGIT_GROUP_LEN: usize = 3;

/// The pages' shared style.
const STYLE: &str = "body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}\
    fieldset{margin:1rem 0}label{display:block;margin:.4rem 0}\
    button{font-size:1rem;padding:.5rem 1rem;margin-right:.5rem}\
    .error{color:#b00020}";

/// A whole page.
fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"ko\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>",
        title = escape(title),
    ))
}

/// An error page with `status` and the message in the [`ERROR_ID`] element.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = format!("<p id=\"{ERROR_ID}\" class=\"error\">{}</p>", escape(message));
    (status, page("결제 오류 (payment error)", &body)).into_response()
}

/// `15000` as `15,000`.
fn group_thousands(amount: u64) -> String {
    let digits = amount.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / DIGIT_GROUP_LEN);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(DIGIT_GROUP_LEN) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The order name and amount, shown on both pages.
fn order_summary(order_name: &str, amount: u64) -> String {
    format!(
        "<p>주문 (order): <strong id=\"{ORDER_NAME_ID}\">{name}</strong></p>\
         <p>결제 금액 (amount): <strong id=\"{AMOUNT_ID}\" data-amount=\"{amount}\">\
         {grouped} KRW</strong></p>",
        name = escape(order_name),
        grouped = group_thousands(amount),
    )
}

/// The pay page: summary, test cards, pay and cancel.
pub fn pay_page(request: &PayRequest) -> Response {
    let hidden: String = request
        .fields()
        .iter()
        .map(|(name, value)| format!("<input type=\"hidden\" name=\"{name}\" value=\"{}\">", escape(value)))
        .collect();
    let cards: String = HOSTED_CARDS
        .iter()
        .map(|(_, id, value, label)| {
            let checked = if *id == CARD_SUCCESS_ID { " checked" } else { "" };
            format!(
                "<label><input type=\"radio\" name=\"card\" id=\"{id}\" value=\"{value}\"\
                 {checked}> {label}</label>"
            )
        })
        .collect();
    let body = format!(
        "{summary}<form method=\"post\" action=\"pay\">{hidden}\
         <fieldset><legend>테스트 카드 (test card)</legend>{cards}</fieldset>\
         <button type=\"submit\" id=\"{PAY_BUTTON_ID}\" name=\"action\" value=\"pay\">\
         결제하기 (pay)</button>\
         <button type=\"submit\" id=\"{CANCEL_BUTTON_ID}\" name=\"action\" value=\"cancel\">\
         취소 (cancel)</button></form>",
        summary = order_summary(&request.order_name, request.amount),
    );
    page("토스페이먼츠 결제 (simulator)", &body).into_response()
}

/// The 3-D Secure challenge of `payment`.
pub fn challenge_page(payment: &Payment) -> Response {
    let body = format!(
        "{summary}<p>카드사 본인 인증이 필요합니다 (3-D Secure authentication required).</p>\
         <form method=\"post\">\
         <button type=\"submit\" id=\"{AUTHENTICATE_BUTTON_ID}\" name=\"result\" \
         value=\"authenticate\">인증 완료 (authenticate)</button>\
         <button type=\"submit\" id=\"{FAIL_AUTHENTICATION_BUTTON_ID}\" name=\"result\" \
         value=\"fail\">인증 실패 (fail authentication)</button></form>",
        summary = order_summary(&payment.order_name, payment.total_amount),
    );
    page("3-D Secure 인증 (simulator)", &body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thousands are grouped by three.
    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(15_000), "15,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }
}
