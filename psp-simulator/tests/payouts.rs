//! Black-box tests of the payout dialects' wire details: Toss payouts v2 encryption and
//! `refPayoutId` uniqueness, Stripe Connect idempotency, balances and lists, the scenario
//! admin and the lost-answer fault.

mod common;

use common::{API_KEY, Sim, json, toss_auth};
use psp_simulator::TOSS_SECURITY_KEY_TEST;
use psp_simulator::toss_payout_jwe::{self as jwe, SecurityKey};
use serde_json::{Value, json};

fn key() -> SecurityKey {
    SecurityKey::from_hex(TOSS_SECURITY_KEY_TEST).unwrap()
}

/// An encrypted Toss POST; answers the status and the (decrypted when encrypted) body.
async fn toss_encrypted(sim: &Sim, path: &str, body: &Value, idempotency_key: Option<&str>) -> (u16, Value) {
    let token = jwe::encrypt(&key(), body.to_string().as_bytes());
    let mut request = sim
        .client
        .post(format!("{}{path}", sim.base))
        .header("Authorization", toss_auth())
        .header("TossPayments-api-security-mode", "ENCRYPTION")
        .header("Content-Type", "text/plain")
        .body(token);
    if let Some(idempotency_key) = idempotency_key {
        request = request.header("Idempotency-Key", idempotency_key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let plain =
        if text.starts_with('{') { text.into_bytes() } else { jwe::decrypt_request(&key(), text.as_bytes()).unwrap() };
    (status, serde_json::from_slice(&plain).unwrap())
}

fn seller_body(reference: &str) -> Value {
    json!({
        "refSellerId": reference, "businessType": "INDIVIDUAL",
        "individual": {"name": "김토스", "email": "toss@example.com", "phone": "01012345678"},
        "account": {"bankCode": "004", "accountNumber": "049210482003", "holderName": "김토스"},
    })
}

fn item(reference: &str, destination: &str, value: u64) -> Value {
    json!({"refPayoutId": reference, "destination": destination, "scheduleType": "EXPRESS",
        "amount": {"currency": "KRW", "value": value}, "transactionDescription": "정산"})
}

async fn made(sim: &Sim) -> Vec<Value> {
    json(sim.get("/_sim/payouts").await).await["payouts"].as_array().unwrap().clone()
}

/// Answers are encrypted under the security key; a `refPayoutId` is paid once whatever the
/// idempotency key; a batch with one bad item makes nothing; lists page newest first.
#[tokio::test]
async fn toss_payouts_wire() {
    let sim = Sim::start().await;
    let (status, seller) = toss_encrypted(&sim, "/v2/sellers", &seller_body("seller-1"), None).await;
    assert_eq!(status, 200, "{seller}");
    assert_eq!((seller["version"].as_str(), seller["entityType"].as_str()), (Some("2022-11-16"), Some("seller")));
    let id = seller["entityBody"]["id"].as_str().unwrap().to_owned();
    assert_eq!(seller["entityBody"]["status"], "PARTIALLY_APPROVED");
    assert_eq!(seller["entityBody"]["account"]["accountNumber"], "********2003");
    let (status, again) = toss_encrypted(&sim, "/v2/sellers", &seller_body("seller-1"), None).await;
    assert_eq!((status, again["error"]["code"].as_str()), (400, Some("DUPLICATED_REF_SELLER_ID")));

    let (status, first) = toss_encrypted(&sim, "/v2/payouts", &json!([item("ref-1", &id, 5_000)]), None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["entityBody"]["items"][0]["refPayoutId"], "ref-1");
    let (status, dup) =
        toss_encrypted(&sim, "/v2/payouts", &json!([item("ref-1", &id, 5_000)]), Some("other-key")).await;
    assert_eq!((status, dup["error"]["code"].as_str()), (400, Some("DUPLICATED_REF_PAYOUT_ID")));
    let batch = json!([item("ref-2", &id, 1_000), item("ref-3", "seller_unknown", 1_000)]);
    let (status, _) = toss_encrypted(&sim, "/v2/payouts", &batch, None).await;
    assert_eq!(status, 404);
    let (status, _) = toss_encrypted(&sim, "/v2/payouts", &json!([item("ref-4", &id, 2_000)]), None).await;
    assert_eq!(status, 200);
    let references: Vec<Value> = made(&sim).await.iter().map(|p| p["reference"].clone()).collect();
    assert_eq!(references, [json!("ref-1"), json!("ref-4")]);

    let page = json(sim.toss_get("/v2/payouts?limit=1").await).await;
    assert_eq!(page["entityBody"]["items"][0]["refPayoutId"], "ref-4");
    assert_eq!(page["entityBody"]["hasNext"], true);
    let cursor = page["entityBody"]["lastCursor"].as_str().unwrap();
    let next = json(sim.toss_get(&format!("/v2/payouts?limit=1&startingAfter={cursor}")).await).await;
    assert_eq!(next["entityBody"]["items"][0]["refPayoutId"], "ref-1");
    assert_eq!(next["entityBody"]["hasNext"], false);
}

/// Plain bodies, a missing security mode, another key and a header without `iat` are
/// refused in Toss's envelope; nothing is made.
#[tokio::test]
async fn toss_refuses_unencrypted_requests() {
    let sim = Sim::start().await;
    let plain = sim.toss_post("/v2/sellers", &seller_body("seller-1"), None).await;
    assert_eq!(plain.status(), 400);
    assert_eq!(json(plain).await["error"]["code"], "INVALID_REQUEST");
    let send = async |token: String| {
        let response = sim
            .client
            .post(format!("{}/v2/sellers", sim.base))
            .header("Authorization", toss_auth())
            .header("TossPayments-api-security-mode", "ENCRYPTION")
            .body(token)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let body = seller_body("seller-1").to_string();
    let other = SecurityKey::from_hex(&"1f".repeat(32)).unwrap();
    let (status, refused) = send(jwe::encrypt(&other, body.as_bytes())).await;
    let refused: Value = serde_json::from_str(&refused).unwrap();
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("INVALID_REQUEST")));
    let bare = jwe::encrypt_with_header(&key(), &json!({"alg": "dir", "enc": "A256GCM"}), body.as_bytes());
    assert_eq!(send(bare).await.0, 400);
    let (status, answer) = send(jwe::encrypt(&key(), body.as_bytes())).await;
    assert_eq!(status, 200);
    let opened: Value = serde_json::from_slice(&jwe::decrypt_request(&key(), answer.as_bytes()).unwrap()).unwrap();
    assert_eq!(opened["entityBody"]["refSellerId"], "seller-1");
    let unauthenticated = sim.client.get(format!("{}/v2/balances", sim.base)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

/// Stripe Connect: key replays and misuse, payouts need `Stripe-Account` and a balance, the
/// lists filter by transfer group and account.
#[tokio::test]
async fn stripe_connect_wire() {
    let sim = Sim::start().await;
    let form = "type=custom&country=US&email=a%40example.com&capabilities[transfers][requested]=true\
        &external_account[object]=bank_account&external_account[country]=US&external_account[currency]=usd\
        &external_account[routing_number]=110000000&external_account[account_number]=000123456789\
        &metadata[seller_account]=seller-1";
    let account = json(sim.post("/v1/accounts", form, Some("seller-seller-1")).await).await;
    let acct = account["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (account["payouts_enabled"].as_bool(), account["external_accounts"]["data"][0]["last4"].as_str()),
        (Some(true), Some("6789"))
    );
    let transfer = "amount=2500&currency=usd&destination=".to_owned() + &acct + "&transfer_group=ref-1";
    assert_eq!(sim.post("/v1/transfers", &transfer, Some("ref-1:transfer")).await.status(), 200);
    let replay = sim.post("/v1/transfers", &transfer, Some("ref-1:transfer")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let misuse = sim.post("/v1/transfers", &transfer.replace("2500", "2501"), Some("ref-1:transfer")).await;
    assert_eq!(misuse.status(), 400);
    assert_eq!(json(misuse).await["error"]["type"], "idempotency_error");
    let listed = json(sim.get("/v1/transfers?transfer_group=ref-1").await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    let payout = async |form: &str, account: Option<&str>| {
        let mut request =
            sim.client.post(format!("{}/v1/payouts", sim.base)).bearer_auth(API_KEY).body(form.to_owned());
        if let Some(account) = account {
            request = request.header("Stripe-Account", account);
        }
        let response = request.header("Content-Type", "application/x-www-form-urlencoded").send().await.unwrap();
        (response.status().as_u16(), json(response).await)
    };
    assert_eq!(payout("amount=2500&currency=usd", None).await.0, 400);
    let (status, too_much) = payout("amount=2501&currency=usd", Some(&acct)).await;
    assert_eq!((status, too_much["error"]["code"].as_str()), (400, Some("balance_insufficient")));
    let (status, po) = payout("amount=2500&currency=usd&metadata[payout_reference]=ref-1", Some(&acct)).await;
    assert_eq!((status, po["status"].as_str()), (200, Some("pending")));
    let (status, again) = payout("amount=1&currency=usd", Some(&acct)).await;
    assert_eq!((status, again["error"]["code"].as_str()), (400, Some("balance_insufficient")));
    let list = sim
        .client
        .get(format!("{}/v1/payouts", sim.base))
        .bearer_auth(API_KEY)
        .header("Stripe-Account", &acct)
        .send()
        .await
        .unwrap();
    assert_eq!(json(list).await["data"][0]["id"], po["id"]);
    assert_eq!(json(sim.get("/v1/payouts").await).await["data"].as_array().unwrap().len(), 0);
    let records = made(&sim).await;
    assert_eq!(
        (records.len(), records[0]["amount"].as_u64(), records[0]["currency"].as_str()),
        (1, Some(2500), Some("USD"))
    );
}

/// A scripted lost answer closes the connection after the payout was made; the retry with the
/// same key replays it. Scenarios refuse unknown fields.
#[tokio::test]
async fn scripted_lost_answer_and_scenario_validation() {
    let sim = Sim::start().await;
    let typo = sim.post_admin("/_sim/payouts/scenario", &json!({"seller": "seller-1", "lost": true})).await;
    assert_eq!(typo.status(), 400);
    let set = sim.post_admin("/_sim/payouts/scenario", &json!({"seller": "seller-1", "fault": "lost_response"})).await;
    assert_eq!(json(set).await["fault"], "lost_response");
    let (_, seller) = toss_encrypted(&sim, "/v2/sellers", &seller_body("seller-1"), None).await;
    let id = seller["entityBody"]["id"].as_str().unwrap();
    let token = jwe::encrypt(&key(), json!([item("ref-lost", id, 7_000)]).to_string().as_bytes());
    let auth = toss_auth();
    let headers = [
        ("Authorization", auth.as_str()),
        ("TossPayments-api-security-mode", "ENCRYPTION"),
        ("Idempotency-Key", "ref-lost"),
    ];
    assert!(sim.raw_post("/v2/payouts", &headers, &token).await.is_empty(), "the answer was lost");
    assert_eq!(made(&sim).await.len(), 1, "the payout was made");
    let (status, replayed) =
        toss_encrypted(&sim, "/v2/payouts", &json!([item("ref-lost", id, 7_000)]), Some("ref-lost")).await;
    assert_eq!((status, replayed["entityBody"]["items"][0]["refPayoutId"].as_str()), (200, Some("ref-lost")));
    assert_eq!(made(&sim).await.len(), 1);
    assert_eq!(sim.outcomes("ref-lost").await, ["dropped", "replayed"]);
}
