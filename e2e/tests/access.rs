//! Access control at the gateway's edges: every REST route and gRPC method has a decision
//! (public, `payments` or `admin`) and enforces it; keys are issued, listed, revoked and rolled
//! through the AdminService; Idempotency-Keys are scoped to the key that sent them.
//!
//! The walks take the routes from the gateway's own route table and the methods from the
//! compiled descriptor set, so a route or method added without a decision fails here.

use payments_gateway::GatewayConfig;
use payments_gateway::auth::{Access, Authenticator, grpc_access};
use payments_gateway::service::PaymentsService;
use payments_proto::payments_v1 as pb;
use payments_store::{ApiKeyDraft, ApiKeyMode, ApiScope};
use payments_testkit::http_client;
use payments_testkit::{Db, Stack, StackOptions, unique};
use payments_workflows::messages::WaitLimits;
use paymentsctl::commands::keys;
use prost::Message as _;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use tonic::Code;

/// The routes that need no key, and why each may be public.
const PUBLIC_ROUTES: [(&str, &str); 6] = [
    ("GET", "/healthz"),                        // readiness probe
    ("GET", "/livez"),                          // liveness probe
    ("GET", "/checkout/{checkout_id}"),         // the buyer's hosted page
    ("GET", "/checkout/{checkout_id}/success"), // the PSP redirects the buyer here
    ("GET", "/checkout/{checkout_id}/fail"),    // and here
    ("POST", "/webhooks/{psp}"),                // PSPs: signed, or checked at the PSP
];

async fn stack(db: Db) -> Option<Stack> {
    let url = db.url().await?;
    Some(Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await)
}

async fn issue(stack: &Stack, scopes: &[ApiScope], mode: ApiKeyMode) -> String {
    let draft = ApiKeyDraft { name: unique("access"), scopes: scopes.to_vec(), mode };
    stack.store.create_api_key(&draft).await.unwrap().secret
}

/// Sends `method path` with `key` (or none); answers the status and the JSON body (Null when
/// it is not JSON).
async fn call(stack: &Stack, method: &Method, path: &str, key: Option<&str>) -> (StatusCode, Value) {
    let http = http_client(key);
    let url = format!("{}{path}", stack.rest_url);
    let mut request = http.request(method.clone(), url);
    if *method == Method::POST {
        request = request.header("content-type", "application/json").body("{}");
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Every route of the gateway's route table: public ones answer without a key and were meant
/// to be public; guarded ones answer 401 (Stripe-shaped, with `WWW-Authenticate`) without a
/// key or with an unknown, revoked or live key, 403 with a key of the other scope, and pass
/// with the right one.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_route_enforces_its_decision(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let temporal = payments_worker::temporal::connect(&stack.temporal_address, "default").await.unwrap();
    let service = PaymentsService::new(stack.store.clone(), temporal, stack.task_queue.clone(), WaitLimits::DEFAULT);
    let auth = Authenticator::new(stack.store.clone(), ApiKeyMode::Test);
    let hints = payments_gateway::limits::Limits::new(GatewayConfig::defaults().rates()).hints;
    let table = payments_gateway::routes(&GatewayConfig::defaults(), service, auth, hints);
    assert!(table.entries().len() >= 12, "{:?}", table.entries());

    let revoked = issue(&stack, &[ApiScope::Payments, ApiScope::Admin], ApiKeyMode::Test).await;
    let revoked_id = stack.store.authenticate_api_key(&revoked).await.unwrap().unwrap().key_id;
    stack.store.revoke_api_key(&revoked_id).await.unwrap();
    let live = issue(&stack, &[ApiScope::Payments, ApiScope::Admin], ApiKeyMode::Live).await;
    let unknown = format!("sk_test_{}", "x".repeat(40));

    for entry in table.entries() {
        let path = entry.path.replace("{psp}", "stripe").replace(['{', '}'], "").replace('_', "-");
        let what = format!("{} {}", entry.method, entry.path);
        let (status, body) = call(&stack, &entry.method, &path, None).await;
        match entry.access {
            Access::Public => {
                assert!(
                    PUBLIC_ROUTES.contains(&(entry.method.as_str(), entry.path)),
                    "{what} is public but not in the list of routes meant to be"
                );
                // The webhook route answers 401 to a bad signature: its own rule, not a key's.
                let code = body["error"]["code"].as_str().unwrap_or("");
                assert!(status != 403 && !code.starts_with("api_key"), "{what} without a key: {status} {body}");
            }
            Access::Scope(scope) => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} without a key: {body}");
                assert_eq!(body["error"]["type"], "invalid_request_error", "{what}: {body}");
                assert_eq!(body["error"]["code"], "api_key_missing", "{what}: {body}");
                for (key, code) in
                    [(&revoked, "api_key_invalid"), (&unknown, "api_key_invalid"), (&live, "api_key_mode_mismatch")]
                {
                    let (status, body) = call(&stack, &entry.method, &path, Some(key)).await;
                    assert_eq!(
                        (status, body["error"]["code"].as_str()),
                        (StatusCode::UNAUTHORIZED, Some(code)),
                        "{what}"
                    );
                }
                let (right, wrong) = match scope {
                    ApiScope::Payments => (&stack.payments_key, &stack.admin_key),
                    ApiScope::Admin => (&stack.admin_key, &stack.payments_key),
                };
                let (status, body) = call(&stack, &entry.method, &path, Some(wrong)).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{what} with the other scope: {body}");
                assert_eq!(body["error"]["code"], "api_key_scope_missing", "{what}: {body}");
                assert!(!body.to_string().contains(wrong.as_str()), "the key is never echoed: {body}");
                let (status, body) = call(&stack, &entry.method, &path, Some(right)).await;
                assert!(![401, 403].contains(&status.as_u16()), "{what} with its scope: {status} {body}");
            }
        }
    }
    // A 401 tells the client how to authenticate.
    let response = http_client(None).get(format!("{}/v1/checkouts/x", stack.rest_url)).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"payments\"");
    stack.shutdown().await;
}

/// Calls a gRPC method with an empty message (valid for every proto3 message) and `key`;
/// answers the status code (`Ok` when it succeeded).
async fn grpc_call(stack: &Stack, path: &str, key: Option<&str>) -> Code {
    let channel = stack.grpc_channel().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(key) = key {
        request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = path.parse().unwrap();
    match grpc.unary(request, path, codec).await {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Every method of every service in the descriptor set, and health and reflection, has a
/// decision; guarded unary methods answer UNAUTHENTICATED without a key, PERMISSION_DENIED
/// with the other scope's key, and something else with the right one; methods nobody decided
/// on are refused.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grpc_method_enforces_its_decision(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let set = prost_types::FileDescriptorSet::decode(payments_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut walked = 0;
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            for method in &service.method {
                let path = format!("/{full}/{}", method.name());
                let access = grpc_access(&path).unwrap_or_else(|| panic!("{path} has no access decision"));
                let Access::Scope(scope) = access else { panic!("{path} is public") };
                walked += 1;
                assert_eq!(grpc_call(&stack, &path, None).await, Code::Unauthenticated, "{path}");
                let (right, wrong) = match scope {
                    ApiScope::Payments => (&stack.payments_key, &stack.admin_key),
                    ApiScope::Admin => (&stack.admin_key, &stack.payments_key),
                };
                assert_eq!(grpc_call(&stack, &path, Some(wrong)).await, Code::PermissionDenied, "{path}");
                let code = grpc_call(&stack, &path, Some(right)).await;
                assert!(![Code::Unauthenticated, Code::PermissionDenied].contains(&code), "{path}: {code:?}");
            }
        }
    }
    assert!(walked >= 16, "every method of PaymentService and AdminService: {walked}");
    for public in ["/grpc.health.v1.Health/Check", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] {
        assert_eq!(grpc_access(public), Some(Access::Public), "{public}");
    }
    assert_eq!(grpc_call(&stack, "/grpc.health.v1.Health/Check", None).await, Code::Ok);
    assert_eq!(
        grpc_call(&stack, "/payments.v1.AdminService/DropTables", Some(&stack.admin_key)).await,
        Code::PermissionDenied
    );
    stack.shutdown().await;
}

fn payment(checkout_id: &str, amount: &str) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": "seller-a", "amount": amount, "currency": "USD",
            "payment_order_id": format!("{checkout_id}-1")}]
    })
}

async fn post_payment(stack: &Stack, key: &str, idempotency_key: &str, body: &Value) -> (StatusCode, bool, Value) {
    let response = http_client(Some(key))
        .post(format!("{}/v1/payments", stack.rest_url))
        .header("Idempotency-Key", idempotency_key)
        .json(body)
        .send()
        .await
        .unwrap();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    (response.status(), replayed, response.json().await.unwrap())
}

/// Two callers using the same Idempotency-Key never collide nor see each other's answer; a
/// caller's own retry replays, also after its key was rolled.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_scoped_to_the_caller(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let a = issue(&stack, &[ApiScope::Payments], ApiKeyMode::Test).await;
    let b = issue(&stack, &[ApiScope::Payments], ApiKeyMode::Test).await;
    let (ca, cb) = (unique("chk-a"), unique("chk-b"));
    let (status, replayed, first_a) = post_payment(&stack, &a, "shared-key", &payment(&ca, "10.00")).await;
    assert_eq!((status, replayed), (StatusCode::ACCEPTED, false), "{first_a}");
    let (status, replayed, first_b) = post_payment(&stack, &b, "shared-key", &payment(&cb, "20.00")).await;
    assert_eq!((status, replayed), (StatusCode::ACCEPTED, false), "B's own request, not A's answer: {first_b}");
    assert_eq!(first_b["checkout_id"], cb.as_str());
    let (status, replayed, again_b) = post_payment(&stack, &b, "shared-key", &payment(&cb, "20.00")).await;
    assert_eq!((status, replayed, &again_b), (StatusCode::ACCEPTED, true, &first_b));
    // A rolls its key; the retry with the new key still finds A's first answer.
    let a_id = stack.store.authenticate_api_key(&a).await.unwrap().unwrap().key_id;
    let rolled = keys::roll(&stack.admin_target(), &a_id, 0).await.unwrap();
    let (status, replayed, again_a) = post_payment(&stack, &rolled.secret, "shared-key", &payment(&ca, "10.00")).await;
    assert_eq!((status, replayed, &again_a), (StatusCode::ACCEPTED, true, &first_a));
    let (status, _, _) = post_payment(&stack, &a, "shared-key", &payment(&ca, "10.00")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the rolled key stopped at once (no grace asked)");
    stack.wait_done(&ca).await;
    stack.wait_done(&cb).await;
    stack.shutdown().await;
}

/// `paymentsctl keys`: a key created through the AdminService works at once and is shown only
/// then; the list never holds a key; a revoked key is refused at once; a roll with a grace
/// period keeps the old key working and makes a new one; only admin keys manage keys.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_revoked_and_rolled(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db).await else { return };
    let admin = stack.admin_target();
    let request = pb::CreateApiKeyRequest { name: "checkout-service".into(), scopes: vec!["payments".into()] };
    let issued = keys::create(&admin, request).await.unwrap();
    let key = issued.api_key.clone().unwrap();
    assert!(issued.secret.starts_with("sk_test_"), "mode prefix");
    assert_eq!((key.scopes.clone(), key.status.as_str()), (vec!["payments".to_owned()], "active"));
    let get = |secret: String| {
        let stack = &stack;
        async move { call(stack, &Method::GET, "/v1/checkouts/nope", Some(&secret)).await.0 }
    };
    assert_eq!(get(issued.secret.clone()).await, StatusCode::NOT_FOUND, "authenticated: the checkout is unknown");

    let listed = keys::list(&admin).await.unwrap();
    let text = format!("{listed:?}");
    assert!(listed.iter().any(|k| k.key_id == key.key_id), "{text}");
    for secret in [&issued.secret, &stack.payments_key, &stack.admin_key] {
        assert!(!text.contains(secret.as_str()), "the list holds no key");
    }

    // Roll with an hour of grace: both work; the old one is marked with its successor.
    let rolled = keys::roll(&admin, &key.key_id, 3600).await.unwrap();
    assert_eq!(get(issued.secret.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(get(rolled.secret.clone()).await, StatusCode::NOT_FOUND);
    let old = keys::list(&admin).await.unwrap().into_iter().find(|k| k.key_id == key.key_id).unwrap();
    assert_eq!(old.rolled_to, rolled.api_key.as_ref().unwrap().key_id);
    assert!(old.expires_at_ms > 0);
    let again = keys::roll(&admin, &key.key_id, 3600).await.unwrap_err();
    assert!(format!("{again:#}").contains("only an active key can be rolled"), "{again:#}");

    // Revoked: refused at once.
    let revoked = keys::revoke(&admin, &key.key_id).await.unwrap();
    assert_eq!(revoked.status, "revoked");
    assert_eq!(get(issued.secret.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(rolled.secret.clone()).await, StatusCode::NOT_FOUND, "the successor is a key of its own");

    // Only admin keys manage keys; a payments key cannot mint an admin key.
    let escalate = pb::CreateApiKeyRequest { name: "escalate".into(), scopes: vec!["admin".into()] };
    let refused = keys::create(&paymentsctl::admin::AdminTarget::new(&stack.grpc_url, &stack.payments_key), escalate)
        .await
        .unwrap_err();
    assert!(format!("{refused:#}").contains("needs an admin key"), "{refused:#}");
    let bad = pb::CreateApiKeyRequest { name: "x".into(), scopes: vec!["root".into()] };
    assert!(keys::create(&admin, bad).await.is_err());
    stack.shutdown().await;
}

/// `PAYMENTS_ENV=production` with this repository's defaults: the gateway and the worker
/// refuse to start, naming every offending variable, before they touch the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_to_start_with_test_defaults() {
    use payments_worker::config::PaymentsEnv;
    let mut gateway = GatewayConfig::defaults();
    gateway.shared.env = PaymentsEnv::Production;
    gateway.shared.database_url = "postgres://payments:payments@127.0.0.1:1/payments".into();
    let rest = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = payments_gateway::run(gateway, rest, grpc, std::future::pending()).await.unwrap_err().to_string();
    for var in [
        "PAYMENT_TOKEN_KEYS",
        "DATABASE_URL",
        "STRIPE_WEBHOOK_SECRET",
        "TOSS_WEBHOOK_SECRET",
        "TOSS_CLIENT_KEY",
        "TOSS_JS_URL",
        "GATEWAY_PUBLIC_URL",
    ] {
        assert!(err.contains(var), "{var} not named: {err}");
    }
    let mut worker = payments_worker::WorkerConfig::defaults();
    worker.shared.env = PaymentsEnv::Production;
    let err = payments_worker::run(worker, std::future::pending()).await.unwrap_err().to_string();
    for var in ["PAYMENT_TOKEN_KEYS", "PSP_SECRET_KEY", "PSP_BASE_URL"] {
        assert!(err.contains(var), "{var} not named: {err}");
    }
}

/// Fee rates through the AdminService (`paymentsctl fees`): set with an admin key, recorded
/// with that key's id as author, listed with the fixed part as a decimal string; a payments
/// key is refused; a start in the past and a bad percentage are refused naming the field.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fee_rates_are_set_and_listed_by_admins(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    use paymentsctl::commands::fees;
    let Some(stack) = stack(db).await else { return };
    let admin = stack.admin_target();
    let request = |bps, fixed: &str, seller: &str, from: i64| pb::SetFeeRateRequest {
        currency: "USD".into(),
        seller_account: seller.into(),
        bps,
        fixed: fixed.into(),
        effective_from_ms: from,
    };
    let set = fees::set(&admin, request(290, "0.30", "", 0)).await.unwrap();
    assert_eq!((set.bps, set.fixed.as_str(), set.seller_account.as_str()), (290, "0.30", ""));
    assert!(set.created_by.starts_with("key_"), "the author is the calling key: {}", set.created_by);
    fees::set(&admin, request(100, "0", "seller-vip", 0)).await.unwrap();
    let listed = fees::list(&admin).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");

    let as_payments = paymentsctl::admin::AdminTarget::new(&stack.grpc_url, &stack.payments_key);
    let refused = fees::set(&as_payments, request(1, "0", "", 0)).await.unwrap_err();
    assert!(format!("{refused:#}").contains("needs an admin key"), "{refused:#}");
    let past = fees::set(&admin, request(290, "0.30", "", 1_000)).await.unwrap_err();
    assert!(format!("{past:#}").contains("past"), "{past:#}");
    let too_high = fees::set(&admin, request(10_001, "0", "", 0)).await.unwrap_err();
    assert!(format!("{too_high:#}").contains("bps"), "{too_high:#}");
    let too_precise = fees::set(&admin, request(10, "0.305", "", 0)).await.unwrap_err();
    assert!(format!("{too_precise:#}").contains("fixed"), "{too_precise:#}");
    stack.shutdown().await;
}
