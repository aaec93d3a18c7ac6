//! `GET /js/v1/tosspayments.js`: a small stand-in for Toss's JS SDK v1.
//!
//! It defines a global `TossPayments(clientKey)` whose
//! `requestPayment(method, params)` sends the browser to the pay page of
//! the simulator that served the script — found from the script's own
//! `src` (`document.currentScript`), so it works on any host, port and
//! path prefix — and answers a promise that never settles (the page
//! unloads). Parameters are checked by the pay page, not here.

use axum::http::header;
use axum::response::IntoResponse;

/// `Content-Type` of the script.
const CONTENT_TYPE_JAVASCRIPT: &str = "application/javascript";

/// The script. The two paths must match [`super::SDK_PATH`] and
/// [`super::PAY_PATH`] (checked by a unit test).
const SCRIPT: &str = r#"/* Toss Payments JS SDK v1 stand-in, served by psp-simulator. */
(function (global) {
  "use strict";
  var SDK_PATH = "/js/v1/tosspayments.js";
  var PAY_PATH = "/v1/pay";
  var FIELDS = ["amount", "orderId", "orderName", "successUrl", "failUrl", "customerName"];
  var script = document.currentScript;
  var src = script && script.src ? script.src : "";
  var at = src.indexOf(SDK_PATH);
  var base = at >= 0 ? src.slice(0, at) : (src ? new URL(src).origin : global.location.origin);

  function text(value) {
    return value === undefined || value === null ? "" : String(value);
  }

  function TossPayments(clientKey) {
    if (!(this instanceof TossPayments)) {
      return new TossPayments(clientKey);
    }
    this.clientKey = text(clientKey);
  }

  TossPayments.prototype.requestPayment = function (method, params) {
    var query = new URLSearchParams();
    var given = params || {};
    query.set("clientKey", this.clientKey);
    query.set("method", text(method));
    FIELDS.forEach(function (name) {
      if (given[name] !== undefined && given[name] !== null) {
        query.set(name, text(given[name]));
      }
    });
    global.location.assign(base + PAY_PATH + "?" + query.toString());
    return new Promise(function () {});
  };

  global.TossPayments = TossPayments;
})(window);
"#;

/// `GET /js/v1/tosspayments.js`
pub(super) async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE_JAVASCRIPT)], SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script's paths are the router's.
    #[test]
    fn script_paths_match_routes() {
        assert!(SCRIPT.contains(&format!("var SDK_PATH = \"{}\";", super::super::SDK_PATH)));
        assert!(SCRIPT.contains(&format!("var PAY_PATH = \"{}\";", super::super::PAY_PATH)));
        assert!(SCRIPT.contains("global.TossPayments = TossPayments;"));
    }
}
