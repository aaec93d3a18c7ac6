//! The payout adapters (Toss payouts v2, Stripe Connect) against the simulator speaking both
//! providers' wire formats, on port 0: registration, payouts, idempotent repeats, lost
//! answers, faults, refusals, cancels, "paid then failed", and webhooks parsed back.

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use payments_activities::payout::stripe::{self, StripeConnectClient};
use payments_activities::payout::toss::{self, TossPayoutClient};
use payments_activities::payout::{
    BankAccount, PayoutOrder, PayoutProvider, ProviderEvent, ProviderPayout, ProviderPayoutStatus, ProviderSeller,
    ProviderSellerStatus, SellerRegistration,
};
use payments_activities::psp::{PspError, SecretKey};
use payments_domain::{Currency, Money, SellerAccount};
use psp_simulator::{STRIPE_WEBHOOK_SECRET_DEFAULT, SimConfig, TOSS_SECURITY_KEY_TEST, TOSS_WEBHOOK_SECRET_DEFAULT};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long a test waits for an asynchronous change (status, webhook).
const WAIT_MS: u64 = 5_000;

struct Sim {
    url: String,
    _stop: oneshot::Sender<()>,
}

async fn start(config: SimConfig) -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        psp_simulator::run(listener, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Sim { url, _stop: tx }
}

fn toss_client(sim: &Sim) -> TossPayoutClient {
    let security = SecretKey::new(TOSS_SECURITY_KEY_TEST);
    TossPayoutClient::new(&sim.url, SecretKey::new("test_sk_payouts"), &security, Duration::from_secs(5)).unwrap()
}

fn stripe_client(sim: &Sim) -> StripeConnectClient {
    StripeConnectClient::new(&sim.url, SecretKey::new("sk_test_payouts"), Duration::from_secs(5)).unwrap()
}

fn registration(seller: &str, country: &str) -> SellerRegistration {
    SellerRegistration {
        seller: SellerAccount::parse(seller).unwrap(),
        name: "김토스".into(),
        email: format!("{seller}@example.com"),
        country: country.into(),
        bank_account: BankAccount {
            bank_code: if country == "KR" { "004".into() } else { "110000000".into() },
            account_number: "000123456789".into(),
            holder_name: "김토스".into(),
        },
    }
}

fn order(seller: &ProviderSeller, amount: &str, currency: &str) -> PayoutOrder {
    PayoutOrder {
        reference: format!("payout-{}-{currency}-2026-11", seller.seller),
        destination: seller.provider_ref.clone(),
        amount: Money::parse(amount, Currency::parse(currency).unwrap()).unwrap(),
        description: "마켓정산".into(),
    }
}

async fn scenario(sim: &Sim, body: Value) {
    let response =
        reqwest::Client::new().post(format!("{}/_sim/payouts/scenario", sim.url)).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
}

/// What the simulator paid out under `reference`.
async fn made(sim: &Sim, reference: &str) -> Vec<Value> {
    let url = format!("{}/_sim/payouts?reference={reference}", sim.url);
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    body["payouts"].as_array().unwrap().clone()
}

/// Polls the provider until the payout reaches `status`.
async fn wait_for_status(
    provider: &dyn PayoutProvider,
    order: &PayoutOrder,
    status: ProviderPayoutStatus,
) -> ProviderPayout {
    let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
    loop {
        let found = provider.find_payout(order).await.unwrap().expect("the payout is listed");
        if found.status == status || Instant::now() > deadline {
            assert_eq!(found.status, status, "{found:?}");
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn register(provider: &dyn PayoutProvider, seller: &str, country: &str) -> ProviderSeller {
    provider.register_seller(&registration(seller, country)).await.unwrap()
}

async fn expire_keys(sim: &Sim) {
    reqwest::Client::new().post(format!("{}/_sim/idempotency/expire", sim.url)).send().await.unwrap();
}

/// Register → payable; pay → one payout; the same reference again (by key replay, and after
/// the keys were forgotten, by what the provider says) → the same payout; it ends paid.
async fn pay_once(sim: &Sim, provider: &dyn PayoutProvider, country: &str, amount: &str, currency: &str) {
    let seller = register(provider, "seller-alice", country).await;
    assert!(seller.status.is_payable(), "{seller:?}");
    assert_eq!(provider.seller(&seller.provider_ref).await.unwrap(), seller);
    assert_eq!(register(provider, "seller-alice", country).await.provider_ref, seller.provider_ref);
    let order = order(&seller, amount, currency);
    let first = provider.create_payout(&order).await.unwrap();
    assert_eq!((first.reference.as_str(), first.amount), (order.reference.as_str(), order.amount));
    assert!(matches!(first.status, ProviderPayoutStatus::Requested | ProviderPayoutStatus::InTransit), "{first:?}");
    assert_eq!(provider.create_payout(&order).await.unwrap().provider_payout_id, first.provider_payout_id);
    expire_keys(sim).await;
    assert_eq!(provider.create_payout(&order).await.unwrap().provider_payout_id, first.provider_payout_id);
    let paid = wait_for_status(provider, &order, ProviderPayoutStatus::Paid).await;
    assert_eq!(paid.provider_payout_id, first.provider_payout_id);
    let made = made(sim, &order.reference).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0]["amount"], order.amount.amount_minor());
    assert_eq!(made[0]["currency"], currency);
    assert_eq!(made[0]["destination"], seller.provider_ref);
    // Another amount under the same reference is a different payout: refused, nothing paid.
    let other = PayoutOrder {
        amount: Money::from_minor(order.amount.amount_minor() + 1, order.amount.currency()),
        ..order.clone()
    };
    assert!(matches!(provider.create_payout(&other).await, Err(PspError::IdempotencyMismatch(_))));
    assert_eq!(self::made(sim, &order.reference).await.len(), 1);
}

#[tokio::test]
async fn toss_pays_once_per_reference() {
    let sim = start(SimConfig::new()).await;
    let toss = toss_client(&sim);
    pay_once(&sim, &toss, "KR", "50000", "KRW").await;
    // Toss refuses a `refSellerId` used before (the keys are forgotten by now): the seller it
    // holds is the answer.
    let again = register(&toss, "seller-alice", "KR").await;
    assert_eq!(again, toss.seller(&again.provider_ref).await.unwrap());
    let body: Value = reqwest::Client::new()
        .get(format!("{}/v2/sellers?limit=100", sim.url))
        .basic_auth("test_sk_payouts", Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["entityBody"]["items"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test]
async fn stripe_pays_once_per_reference() {
    let sim = start(SimConfig::new()).await;
    pay_once(&sim, &stripe_client(&sim), "US", "25.00", "USD").await;
}

/// The payout is made but its answer lost: the outcome is unknown, the payout is found, and
/// sending again answers it without paying twice.
async fn lost_answer(sim: &Sim, provider: &dyn PayoutProvider, country: &str, amount: &str, currency: &str) {
    scenario(sim, json!({"seller": "seller-bob", "fault": "lost_response"})).await;
    let seller = register(provider, "seller-bob", country).await;
    let order = order(&seller, amount, currency);
    let lost = provider.create_payout(&order).await;
    assert!(matches!(lost, Err(PspError::OutcomeUnknown(_))), "{lost:?}");
    let found = provider.find_payout(&order).await.unwrap().expect("the payout was made");
    assert_eq!((found.reference.as_str(), found.amount), (order.reference.as_str(), order.amount));
    assert_eq!(provider.create_payout(&order).await.unwrap().provider_payout_id, found.provider_payout_id);
    assert_eq!(made(sim, &order.reference).await.len(), 1);
}

#[tokio::test]
async fn toss_lost_answer_is_found_not_repaid() {
    let sim = start(SimConfig::new()).await;
    lost_answer(&sim, &toss_client(&sim), "KR", "70000", "KRW").await;
}

#[tokio::test]
async fn stripe_lost_answer_is_found_not_repaid() {
    let sim = start(SimConfig::new()).await;
    lost_answer(&sim, &stripe_client(&sim), "US", "12.34", "USD").await;
}

/// 429 carries Retry-After; server errors are retryable; the retry pays once.
async fn faults_retry(sim: &Sim, provider: &dyn PayoutProvider, country: &str, amount: &str, currency: &str) {
    scenario(sim, json!({"seller": "seller-carol", "fault": "rate_limited"})).await;
    scenario(sim, json!({"seller": "seller-dave", "fault": "server_error_twice"})).await;
    let carol = register(provider, "seller-carol", country).await;
    let limited = order(&carol, amount, currency);
    match provider.create_payout(&limited).await {
        Err(PspError::Unavailable { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(2))),
        other => panic!("not rate limited: {other:?}"),
    }
    assert!(made(sim, &limited.reference).await.is_empty());
    provider.create_payout(&limited).await.unwrap();
    let dave = register(provider, "seller-dave", country).await;
    let failing = order(&dave, amount, currency);
    for _ in 0..2 {
        assert!(matches!(provider.create_payout(&failing).await, Err(PspError::Unavailable { .. })));
    }
    provider.create_payout(&failing).await.unwrap();
    assert_eq!(made(sim, &limited.reference).await.len(), 1);
    assert_eq!(made(sim, &failing.reference).await.len(), 1);
}

#[tokio::test]
async fn toss_faults_are_retryable() {
    let sim = start(SimConfig::new()).await;
    faults_retry(&sim, &toss_client(&sim), "KR", "1000", "KRW").await;
}

#[tokio::test]
async fn stripe_faults_are_retryable() {
    let sim = start(SimConfig::new()).await;
    faults_retry(&sim, &stripe_client(&sim), "US", "10.00", "USD").await;
}

/// A seller the provider does not pay: refused, nothing made.
async fn not_payable(
    sim: &Sim,
    provider: &dyn PayoutProvider,
    country: &str,
    amount: &str,
    currency: &str,
    code: &str,
) {
    scenario(sim, json!({"seller": "seller-erin", "not_payable": true})).await;
    let seller = register(provider, "seller-erin", country).await;
    assert!(!seller.status.is_payable(), "{seller:?}");
    let order = order(&seller, amount, currency);
    match provider.create_payout(&order).await {
        Err(PspError::InvalidRequest(message)) => assert!(message.contains(code), "{message}"),
        other => panic!("not refused: {other:?}"),
    }
    assert!(made(sim, &order.reference).await.is_empty());
    assert_eq!(provider.find_payout(&order).await.unwrap(), None);
}

#[tokio::test]
async fn toss_refuses_unpayable_sellers() {
    let sim = start(SimConfig::new()).await;
    let toss = toss_client(&sim);
    not_payable(&sim, &toss, "KR", "1000", "KRW", toss::FORBIDDEN_SELLER_PAYOUT).await;
    let seller = toss.seller(&register(&toss, "seller-erin-2", "KR").await.provider_ref).await.unwrap();
    assert_eq!(seller.status, ProviderSellerStatus::PartiallyApproved);
}

#[tokio::test]
async fn stripe_refuses_unpayable_sellers() {
    let sim = start(SimConfig::new()).await;
    let client = stripe_client(&sim);
    not_payable(&sim, &client, "US", "5.00", "USD", "insufficient_capabilities_for_transfer").await;
    let erin = client.seller(&register(&client, "seller-erin", "US").await.provider_ref).await;
    // Registering again answers the same account (the key replays), still not payable.
    assert_eq!(erin.unwrap().status, ProviderSellerStatus::KycRequired);
}

/// A held payout is cancelled while requested; a paid one answers its state.
async fn cancel(sim: &Sim, provider: &dyn PayoutProvider, country: &str, amount: &str, currency: &str) {
    scenario(sim, json!({"seller": "seller-frank", "hold": true})).await;
    let frank = register(provider, "seller-frank", country).await;
    let held = order(&frank, amount, currency);
    let payout = provider.create_payout(&held).await.unwrap();
    assert_eq!(payout.status, ProviderPayoutStatus::Requested);
    let canceled = provider.cancel_payout(&held, &payout.provider_payout_id).await.unwrap();
    assert_eq!(
        (canceled.status, canceled.provider_payout_id.as_str()),
        (ProviderPayoutStatus::Canceled, payout.provider_payout_id.as_str())
    );
    let again = provider.cancel_payout(&held, &payout.provider_payout_id).await.unwrap();
    assert_eq!(again.status, ProviderPayoutStatus::Canceled);
    let made = made(sim, &held.reference).await;
    assert_eq!(made.len(), 1);
    assert!(made[0]["status"].as_str().unwrap().eq_ignore_ascii_case("canceled"), "{made:?}");
    let grace = register(provider, "seller-grace", country).await;
    let paid_order = order(&grace, amount, currency);
    let paid = provider.create_payout(&paid_order).await.unwrap();
    wait_for_status(provider, &paid_order, ProviderPayoutStatus::Paid).await;
    let late = provider.cancel_payout(&paid_order, &paid.provider_payout_id).await.unwrap();
    assert_eq!(late.status, ProviderPayoutStatus::Paid);
}

#[tokio::test]
async fn toss_cancels_while_requested() {
    let sim = start(SimConfig::new()).await;
    cancel(&sim, &toss_client(&sim), "KR", "3000", "KRW").await;
}

#[tokio::test]
async fn stripe_cancels_while_requested() {
    let sim = start(SimConfig::new()).await;
    cancel(&sim, &stripe_client(&sim), "US", "3.00", "USD").await;
}

/// Webhooks received by a tiny endpoint.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, String)>>>);

impl Received {
    async fn start() -> (String, Received) {
        async fn hook(State(received): State<Received>, headers: HeaderMap, body: String) {
            received.0.lock().unwrap().push((headers, body));
        }
        let received = Received::default();
        let app = Router::new().route("/hook", post(hook)).with_state(received.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, received)
    }

    /// The first received webhook whose parsed event satisfies `wanted`.
    async fn wait(
        &self,
        parse: fn(&str) -> Result<ProviderEvent, String>,
        wanted: impl Fn(&ProviderEvent) -> bool,
    ) -> (HeaderMap, ProviderEvent, String) {
        let deadline = Instant::now() + Duration::from_millis(WAIT_MS);
        loop {
            let all = self.0.lock().unwrap().clone();
            for (headers, body) in all {
                let event = parse(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
                if wanted(&event) {
                    return (headers, event, body);
                }
            }
            assert!(Instant::now() < deadline, "no such webhook");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn failed_with(code: &'static str) -> impl Fn(&ProviderEvent) -> bool {
    move |e| matches!(e, ProviderEvent::Payout(p) if p.status == ProviderPayoutStatus::Failed && p.failure_code.as_deref() == Some(code))
}

/// Slow KYC (not payable, then payable with `seller.changed`), then a payout that is paid and
/// later fails (`ACCOUNT_CLOSED`), each reported by a signed `payout.changed`.
#[tokio::test]
async fn toss_slow_kyc_and_paid_then_failed_webhooks() {
    let (url, received) = Received::start().await;
    let mut config = SimConfig::new();
    config.toss_webhook_url = Some(url);
    config.payout_step_ms = 50;
    let sim = start(config).await;
    let toss = toss_client(&sim);
    scenario(&sim, json!({"seller": "seller-hana", "slow_kyc_ms": 300, "paid_then_failed": true})).await;
    let seller = register(&toss, "seller-hana", "KR").await;
    assert_eq!(seller.status, ProviderSellerStatus::ApprovalRequired);
    let order = order(&seller, "80000", "KRW");
    assert!(matches!(toss.create_payout(&order).await, Err(PspError::InvalidRequest(_))));
    let (_, event, _) = received.wait(toss::parse_webhook, |e| matches!(e, ProviderEvent::Seller(_))).await;
    let ProviderEvent::Seller(changed) = event else { unreachable!() };
    assert_eq!(
        (changed.status, &changed.provider_ref),
        (ProviderSellerStatus::PartiallyApproved, &seller.provider_ref)
    );
    assert_eq!(toss.seller(&seller.provider_ref).await.unwrap().status, ProviderSellerStatus::PartiallyApproved);
    toss.create_payout(&order).await.unwrap();
    let paid = received
        .wait(toss::parse_webhook, |e| matches!(e, ProviderEvent::Payout(p) if p.status == ProviderPayoutStatus::Paid))
        .await;
    let (headers, event, body) = received.wait(toss::parse_webhook, failed_with("ACCOUNT_CLOSED")).await;
    let ProviderEvent::Payout(failed) = event else { unreachable!() };
    assert_eq!((failed.reference.as_str(), failed.amount), (order.reference.as_str(), order.amount));
    assert!(matches!(paid.1, ProviderEvent::Payout(p) if p.provider_payout_id == failed.provider_payout_id));
    let time = headers["tosspayments-webhook-transmission-time"].to_str().unwrap();
    let signature = psp_simulator::toss_payout_signature(TOSS_WEBHOOK_SECRET_DEFAULT, &body, time);
    assert!(headers["tosspayments-webhook-signature"].to_str().unwrap().split(',').any(|s| s == signature));
    let found = toss.find_payout(&order).await.unwrap().unwrap();
    assert_eq!((found.status, found.failure_code.as_deref()), (ProviderPayoutStatus::Failed, Some("ACCOUNT_CLOSED")));
}

/// The same for Stripe: `account.updated` when identified; `payout.paid` then `payout.failed`
/// (`account_closed`), Connect events naming the account, signed.
#[tokio::test]
async fn stripe_slow_kyc_and_paid_then_failed_events() {
    let (url, received) = Received::start().await;
    let mut config = SimConfig::new();
    config.stripe_webhook_url = Some(url);
    config.payout_step_ms = 50;
    let sim = start(config).await;
    let client = stripe_client(&sim);
    scenario(&sim, json!({"seller": "seller-ivan", "slow_kyc_ms": 300, "paid_then_failed": true})).await;
    let seller = register(&client, "seller-ivan", "US").await;
    assert_eq!(seller.status, ProviderSellerStatus::KycRequired);
    let (_, event, _) = received.wait(stripe::parse_event, |e| matches!(e, ProviderEvent::Seller(_))).await;
    let ProviderEvent::Seller(updated) = event else { unreachable!() };
    assert_eq!((updated.status, &updated.seller), (ProviderSellerStatus::Approved, &seller.seller));
    let order = order(&seller, "99.99", "USD");
    client.create_payout(&order).await.unwrap();
    received
        .wait(stripe::parse_event, |e| matches!(e, ProviderEvent::Payout(p) if p.status == ProviderPayoutStatus::Paid))
        .await;
    let (headers, event, body) = received.wait(stripe::parse_event, failed_with("account_closed")).await;
    let ProviderEvent::Payout(failed) = event else { unreachable!() };
    assert_eq!((failed.reference.as_str(), failed.amount.amount_minor()), (order.reference.as_str(), 9_999));
    let envelope: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(envelope["account"], seller.provider_ref);
    let header = headers["stripe-signature"].to_str().unwrap();
    let t: u64 = header.split(',').find_map(|p| p.strip_prefix("t=")).unwrap().parse().unwrap();
    assert_eq!(header, psp_simulator::stripe_signature_header(STRIPE_WEBHOOK_SECRET_DEFAULT, t, &body));
    let found = wait_for_status(&client, &order, ProviderPayoutStatus::Failed).await;
    assert_eq!(found.failure_code.as_deref(), Some("account_closed"));
}

/// Encryption is enforced: a client with another security key is refused, and so is a plain
/// JSON body; the balance answers won.
#[tokio::test]
async fn toss_requires_the_security_key() {
    let sim = start(SimConfig::new()).await;
    let wrong = SecretKey::new("ab".repeat(32));
    let stranger =
        TossPayoutClient::new(&sim.url, SecretKey::new("test_sk_payouts"), &wrong, Duration::from_secs(5)).unwrap();
    let refused = stranger.register_seller(&registration("seller-jin", "KR")).await;
    assert!(matches!(refused, Err(PspError::InvalidRequest(_))), "{refused:?}");
    let plain = reqwest::Client::new()
        .post(format!("{}/v2/payouts", sim.url))
        .basic_auth("test_sk_payouts", Some(""))
        .json(&json!([{"refPayoutId": "p-1"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    let body: Value = plain.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_REQUEST");
    assert!(
        TossPayoutClient::new(&sim.url, SecretKey::new("test_sk_x"), &SecretKey::new("abc"), Duration::from_secs(1))
            .is_err()
    );
    let balance = toss_client(&sim).balance().await.unwrap();
    assert_eq!(balance.available.currency().code(), "KRW");
}
