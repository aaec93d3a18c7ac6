//! The gateway's hardened edges: JSON endpoints accept only `application/json`; oversized
//! bodies are 413, webhooks included; hosted pages carry a Content-Security-Policy and friends
//! and render hosted checkouts only; an undecodable gRPC message is INVALID_ARGUMENT.

use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};
use tonic::Code;

async fn stack(db: Db) -> Option<Stack> {
    let url = db.url().await?;
    Some(Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await)
}

fn payment(checkout_id: &str) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": "seller-a", "amount": "10.00", "currency": "USD",
            "payment_order_id": format!("{checkout_id}-1")}]
    })
}

/// The status the gateway answers to a JSON POST of `path` declaring a body of `length` bytes,
/// sent over a raw connection without the body.
async fn status_of_declared_body(stack: &Stack, path: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = stack.rest_url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nConnection: close\r\n\r\n",
        stack.payments_key
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 64];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer[..read.expect("an answer within 10 s").unwrap()]).into_owned();
    text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status line: {text:?}"))
}

/// A cross-site form or `text/plain` post is refused (415) before anything is stored; the
/// same body as JSON is taken; a body over the limit is 413 on the JSON routes and on the
/// webhooks.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_json_bodies_within_the_limits(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let id = unique("chk");
    let url = format!("{}/v1/payments", stack.rest_url);
    for content_type in
        [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")]
    {
        let mut request = stack.http.post(&url).body(payment(&id).to_string());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "content_type_unsupported", "{body}");
    }
    assert!(
        stack.store.checkout(&payments_domain::CheckoutId::parse(id.clone()).unwrap()).await.unwrap().is_none(),
        "nothing stored"
    );
    let response =
        stack.http.post(&url).header("content-type", "application/json; charset=utf-8").body(payment(&id).to_string());
    assert_eq!(response.send().await.unwrap().status(), 202);
    stack.wait_done(&id).await;

    // 300 KiB declared: the gateway answers from the header, before reading the body. (Sending
    // the body as well races the answer: the server closes the connection on the unread rest,
    // and the client, still writing, may lose the 413 to the reset.)
    let big = 300 * 1024;
    assert_eq!(status_of_declared_body(&stack, "/v1/payments", big).await, 413);
    for psp in ["stripe", "toss"] {
        let status = status_of_declared_body(&stack, &format!("/webhooks/{psp}"), big).await;
        assert_eq!(status, 413, "webhook {psp}: a PSP stops redelivering a 413");
    }
    stack.shutdown().await;
}

/// The hosted page carries a CSP whose script nonce is the page's inline script's, framing is
/// denied, no referrer leaves, nothing is cached; a direct checkout has no page (404), so its
/// sellers and amounts are not shown to whoever knows its id.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_pages_carry_security_headers_and_show_hosted_checkouts_only(
    #[values(Db::Sqlite, Db::Postgres)] db: Db,
) {
    let Some(stack) = stack(db).await else { return };
    let hosted = unique("hosted");
    stack.create_hosted_two_sellers(&hosted).await;
    let response = reqwest::get(format!("{}/checkout/{hosted}", stack.rest_url)).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let html = response.text().await.unwrap();
    let csp = headers["content-security-policy"].to_str().unwrap().to_owned();
    let nonce = csp.split("'nonce-").nth(1).and_then(|rest| rest.split('\'').next()).expect("a script nonce");
    assert!(html.contains(&format!("<script nonce=\"{nonce}\">")), "the inline script carries the nonce");
    for part in ["default-src 'none'", "frame-ancestors 'none'", "form-action 'self'", "base-uri 'none'"] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("'unsafe-inline'"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    let again = reqwest::get(format!("{}/checkout/{hosted}", stack.rest_url)).await.unwrap();
    assert_ne!(again.headers()["content-security-policy"], csp.as_str(), "a nonce per page");

    let direct = unique("direct");
    let (status, _) = stack.post_payment(&payment(&direct)).await;
    assert_eq!(status, 202);
    for path in ["", "/success?paymentKey=k&orderId=x&amount=1", "/fail"] {
        let response = reqwest::get(format!("{}/checkout/{direct}{path}", stack.rest_url)).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.headers().contains_key("content-security-policy"));
        assert!(!response.text().await.unwrap().contains("seller-a"), "nothing of the checkout shown");
    }
    stack.wait_done(&direct).await;
    stack.shutdown().await;
}

/// A message whose string field is not UTF-8 does not decode: INVALID_ARGUMENT, not INTERNAL.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_grpc_message_is_invalid_argument(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    /// Field 1 as bytes: where `CreatePaymentRequest.checkout_id` is a string.
    #[derive(Clone, PartialEq, prost::Message)]
    struct NotUtf8 {
        #[prost(bytes = "vec", tag = "1")]
        checkout_id: Vec<u8>,
    }
    let Some(stack) = stack(db).await else { return };
    let mut grpc = tonic::client::Grpc::new(stack.grpc_channel().await);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(NotUtf8 { checkout_id: vec![0xff, 0xfe, 0x80] });
    request.metadata_mut().insert("authorization", format!("Bearer {}", stack.payments_key).parse().unwrap());
    let codec = tonic_prost::ProstCodec::<NotUtf8, ()>::default();
    let path = "/payments.v1.PaymentService/CreatePayment".parse().unwrap();
    let status = grpc.unary(request, path, codec).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("failed to decode"), "{status:?}");
    stack.shutdown().await;
}

/// Per API key and per client IP: past the rate (2/s, bursts of 4, here) a REST call is 429
/// with `Retry-After` and a Stripe-shaped body, a gRPC call RESOURCE_EXHAUSTED; another key is
/// not affected by the first one's limit.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_with_retry_after(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options = StackOptions {
        database_url: Some(url),
        gateway: Some(|c| {
            c.rate_limit_per_key = 2;
            c.rate_limit_per_ip = 0;
        }),
        ..StackOptions::new()
    };
    let stack = Stack::start(options).await;
    let get = |key: String| {
        let url = format!("{}/v1/checkouts/nope", stack.rest_url);
        async move { payments_testkit::http_client(Some(&key)).get(url).send().await.unwrap() }
    };
    let mut limited = None;
    for _ in 0..20 {
        let response = get(stack.payments_key.clone()).await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), 404);
    }
    let response = limited.expect("the key was limited within 20 calls");
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(get(stack.admin_key.clone()).await.status(), 403, "another key has its own budget");

    let mut grpc = stack.payments_grpc().await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        let request = payments_proto::payments_v1::GetCheckoutRequest { checkout_id: "nope".into() };
        codes.push(grpc.get_checkout(request).await.unwrap_err().code());
    }
    assert!(codes.contains(&Code::ResourceExhausted), "{codes:?}");
    stack.shutdown().await;
}

/// Per client IP, public routes too.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_covers_public_routes(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options =
        StackOptions { database_url: Some(url), gateway: Some(|c| c.rate_limit_per_ip = 2), ..StackOptions::new() };
    let stack = Stack::start(options).await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(reqwest::get(format!("{}/livez", stack.rest_url)).await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // The budget refills: the same client is let through again (and the end-of-test checks,
    // which call the gateway, are not refused).
    stack
        .poll_until("the per-IP budget to refill", std::time::Duration::from_secs(30), || async {
            let status = reqwest::get(format!("{}/livez", stack.rest_url)).await.ok()?.status();
            (status == 200).then_some(())
        })
        .await;
    stack.shutdown().await;
}

/// A client that sends its headers too slowly is disconnected after the header-read timeout
/// (1 s here): no connection is held forever.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(url) = db.url().await else { return };
    let options = StackOptions {
        database_url: Some(url),
        gateway: Some(|c| c.header_read_timeout_secs = 1),
        ..StackOptions::new()
    };
    let stack = Stack::start(options).await;
    let addr = stack.rest_url.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was still open after 10 s");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    let text = String::from_utf8_lossy(&buf);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    stack.shutdown().await;
}
