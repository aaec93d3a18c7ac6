//! The stack's workflows in Temporal: a client, and questions answered from the executions
//! themselves (strongly consistent), never from one read of the lagging visibility index.

use crate::stack::Stack;
use std::time::Duration;
use temporalio_client::errors::WorkflowInteractionError;
use temporalio_client::{UntypedWorkflow, WorkflowDescribeOptions};

/// How long visibility may lag behind an execution before a count gives up.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

impl Stack {
    /// A Temporal client on the stack's server (directly, not through any proxy).
    pub async fn temporal(&self) -> temporalio_client::Client {
        payments_worker::temporal::connect(&self.temporal_address, "default").await.expect("temporal")
    }

    /// Deletes a workflow's execution and history, as namespace retention does after its
    /// period; waits until Temporal no longer knows it. (The server deletes asynchronously, and
    /// by default only after visibility has processed the close, which can take minutes under
    /// load: `scripts/test.sh` starts its dev server without that wait. The request is repeated
    /// until the execution is gone.)
    pub async fn delete_workflow(&self, workflow_id: &str) {
        use temporalio_client::tonic::IntoRequest;
        use temporalio_common::protos::temporal::api::common::v1::WorkflowExecution;
        use temporalio_common::protos::temporal::api::workflowservice::v1::DeleteWorkflowExecutionRequest;
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(workflow_id.to_owned());
        self.poll_until(&format!("{workflow_id} to be deleted"), Duration::from_secs(180), || async {
            let request = DeleteWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: workflow_id.to_owned(),
                    run_id: String::new(),
                }),
            };
            let _ = client.connection().workflow_service().delete_workflow_execution(request.into_request()).await;
            // Describe reads the execution itself (visibility lags behind it).
            for _ in 0..10 {
                if handle.describe(Default::default()).await.is_err() {
                    return Some(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        })
        .await;
    }

    /// Whether Temporal has an execution with this id (describe reads the execution itself,
    /// not the lagging visibility index).
    pub async fn workflow_exists(&self, workflow_id: &str) -> bool {
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(workflow_id.to_owned());
        handle.describe(Default::default()).await.is_ok()
    }

    /// Terminates a running workflow (as an operator might by mistake).
    pub async fn terminate_workflow(&self, workflow_id: &str) {
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(workflow_id.to_owned());
        handle.terminate(Default::default()).await.expect("terminate workflow");
    }

    /// How many runs Temporal holds under this workflow id. None at all is known at once:
    /// describing the id reads the execution itself. When one exists, visibility is polled
    /// (bounded) until it lists the run the description named, and its count is answered: a
    /// second run is then counted too, never missed because the index lagged.
    pub async fn workflow_runs(&self, workflow_id: &str) -> usize {
        let client = self.temporal().await;
        let handle = client.get_workflow_handle::<UntypedWorkflow>(workflow_id.to_owned());
        let latest = match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(description) => description.run_id().to_owned(),
            Err(WorkflowInteractionError::NotFound(_)) => return 0,
            Err(e) => panic!("describe {workflow_id}: {e}"),
        };
        let count = |query: String| {
            let client = client.clone();
            async move { client.count_workflows(query, Default::default()).await.expect("count workflows").count() }
        };
        let listed = format!("WorkflowId = '{workflow_id}' AND RunId = '{latest}'");
        self.poll_until(&format!("visibility to list {workflow_id}"), VISIBILITY_TIMEOUT, || async {
            (count(listed.clone()).await == 1).then_some(())
        })
        .await;
        count(format!("WorkflowId = '{workflow_id}'")).await
    }
}
