//! Every change to workflow code must replay the histories of workflows already running, or
//! the next deploy breaks them with a nondeterminism error. These histories were written by
//! the code before the money-safety change (`histories/before-money-safety/`, see its README):
//! finished ones and ones still waiting (janitor, 3-D Secure, review, hosted payment, a parked
//! refund). Each is replayed with the SDK's workflow replayer against today's workflows.

use payments_workflows::{CheckoutWorkflow, RefundWorkflow};
use std::path::Path;
use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<CheckoutWorkflow>()
        .and_then(|o| o.register_workflow::<RefundWorkflow>())
        .expect("register workflows")
        .build();
    WorkflowReplayer::new(options).expect("replayer")
}

/// Every captured history replays without a nondeterminism error.
#[tokio::test]
async fn histories_from_before_the_money_safety_change_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories/before-money-safety");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("histories")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "histories missing: {files:?}");
    let replayer = replayer();
    let mut failures = Vec::new();
    for file in &files {
        let history = WorkflowHistory::from_json(&std::fs::read(file).expect("read")).expect("history json");
        if let Err(e) = replayer.replay_workflow(history).await {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "histories that no longer replay:\n{}", failures.join("\n"));
}
