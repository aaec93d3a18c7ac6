//! Bad input is refused at the edge: 400 (REST) or INVALID_ARGUMENT (gRPC) naming the field,
//! with nothing stored and no workflow started.

mod common;

use payments_domain::CheckoutId;
use payments_proto::payments_v1 as pb;
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};

fn valid(checkout_id: &str) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [
            {"seller_account": "seller-a", "amount": "10.00", "currency": "USD", "payment_order_id": format!("{checkout_id}-1")},
            {"seller_account": "seller-b", "amount": "5000", "currency": "KRW", "payment_order_id": format!("{checkout_id}-2")}
        ]
    })
}

/// Asserts the request was refused naming `param`, and that the checkout left no trace.
async fn assert_refused(stack: &Stack, checkout_id: &str, status: u16, answer: &Value, param: &str) {
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    assert_eq!(answer["error"]["param"], param, "{answer}");
    if let Ok(id) = CheckoutId::parse(checkout_id) {
        assert!(stack.store.checkout(&id).await.unwrap().is_none(), "row stored for {checkout_id}");
        assert_eq!(stack.workflow_runs(&id.workflow_id()).await, 0, "workflow started for {checkout_id}");
    }
}

/// Every bad input of the issue gets 400 naming the field and leaves no row and no workflow.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_without_side_effects(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    type Mutation = fn(&mut Value);
    let cases: Vec<(&str, Mutation)> = vec![
        ("payment_orders", |v| v["payment_orders"] = json!([])),
        ("payment_orders", |v| {
            v.as_object_mut().unwrap().remove("payment_orders");
        }),
        ("checkout_id", |v| {
            v.as_object_mut().unwrap().remove("checkout_id");
        }),
        ("buyer_info.buyer_id", |v| v["buyer_info"] = json!({"name": "x"})),
        ("credit_card_info", |v| {
            v.as_object_mut().unwrap().remove("credit_card_info");
        }),
        ("payment_orders[1].payment_order_id", |v| {
            v["payment_orders"][1]["payment_order_id"] = v["payment_orders"][0]["payment_order_id"].clone()
        }),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!("10.005")),
        ("payment_orders[1].amount", |v| v["payment_orders"][1]["amount"] = json!("1.5")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!("-1")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!("0")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!("1e3")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!("NaN")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!(" 10")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!("100000000000000000000")),
        ("payment_orders[0].amount", |v| v["payment_orders"][0]["amount"] = json!(10)),
        ("payment_orders[0].currency", |v| v["payment_orders"][0]["currency"] = json!("XYZ")),
        ("payment_orders[0].seller_account", |v| v["payment_orders"][0]["seller_account"] = json!("")),
        ("credit_card_info.token", |v| v["credit_card_info"]["token"] = json!("4242 4242 4242 4242")),
        ("credit_card_info.number", |v| v["credit_card_info"]["number"] = json!("4242424242424242")),
        ("buyer_info", |v| v["buyer_info"]["card"] = json!("4000056655665556")),
    ];
    for (param, mutate) in cases {
        let id = unique("bad");
        let mut body = valid(&id);
        mutate(&mut body);
        let (status, answer) = stack.post_payment(&body).await;
        assert_refused(&stack, &id, status, &answer, param).await;
    }
    for raw in ["{", "not json", "[]", ""] {
        let (status, answer) = stack.post_payment_raw(raw.to_owned()).await;
        assert_eq!(status, 400, "{raw:?}: {answer}");
        assert_eq!(answer["error"]["param"], "body");
    }
    stack.shutdown().await;
}

/// An order id already owned by another checkout is refused (400, nothing of the new checkout
/// stored); a checkout id reused with different orders is refused too.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_cannot_be_reused_across_checkouts(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let first = unique("chk");
    assert_eq!(stack.post_payment(&valid(&first)).await.0, 202);
    let second = unique("chk");
    let mut body = valid(&second);
    body["payment_orders"][1]["payment_order_id"] = json!(format!("{first}-2"));
    let (status, answer) = stack.post_payment(&body).await;
    assert_refused(&stack, &second, status, &answer, "payment_orders[1].payment_order_id").await;
    assert_eq!(answer["error"]["code"], "payment_order_id_taken");

    let mut changed = valid(&first);
    changed["payment_orders"][0]["amount"] = json!("11.00");
    let (status, answer) = stack.post_payment(&changed).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("checkout_id_reused")), "{answer}");
    stack.wait_done(&first).await;
    assert_eq!(stack.captures(&format!("{first}-1")).await[0]["amount"], 1000, "the original amount was charged");
    stack.shutdown().await;
}

/// The gRPC API validates with the same rules (INVALID_ARGUMENT naming the field, nothing
/// started), creates a checkout that completes, and serves reads.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_api_mirrors_rest(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let mut client = stack.payments_grpc().await;
    let id = unique("grpc");
    let request = |amount: &str| common::grpc_one_order(&id, amount);
    let err = client.create_payment(request("10.005")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("payment_orders[0].amount"), "{}", err.message());
    assert_eq!(stack.workflow_runs(&format!("checkout-{id}")).await, 0);

    let created = client.create_payment(request("10.00")).await.unwrap().into_inner();
    assert_eq!(created.payment_orders[0].amount, "10.00");
    stack.wait_done(&id).await;
    let order = client
        .get_payment_order(pb::GetPaymentOrderRequest { payment_order_id: format!("{id}-1") })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.status(), pb::PaymentOrderStatus::Success);
    assert!(order.wallet_updated && order.ledger_updated);
    let missing = client.get_checkout(pb::GetCheckoutRequest { checkout_id: "no-such".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    stack.shutdown().await;
}

/// The gRPC server reports SERVING for the payment service and lists it through server
/// reflection, so grpcurl and load balancers work without the proto files.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_and_reflection(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    // These generated clients are built without tonic's transport feature: give them a channel.
    let channel = tonic::transport::Endpoint::from_shared(stack.grpc_url.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    let status = health
        .check(HealthCheckRequest { service: "payments.v1.PaymentService".into() })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection.server_reflection_info(tokio_stream_once(request)).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"payments.v1.PaymentService"), "{names:?}");
    stack.shutdown().await;
}

fn tokio_stream_once<T: Send + 'static>(item: T) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::iter([item])
}
