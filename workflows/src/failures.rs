//! Reading activity failures: the application failure type name, its message, and whether
//! the activity said no retry could fix it.

use temporalio_common::error::{ApplicationFailure, IncomingError};
use temporalio_common::protos::temporal::api::failure::v1::Failure;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_sdk::{ActivityExecutionError, WorkflowTermination};

/// A step's failure, as the workflow sees it after the activity's own retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepError {
    /// The application failure type (`PspUnavailable`, `StoreWalletBlocked`, ...), if any.
    pub(crate) type_name: Option<String>,
    /// The failure's message.
    pub(crate) message: String,
    /// The activity marked it non-retryable (a fact about the data, not a fault): no attempt
    /// after it was made.
    pub(crate) non_retryable: bool,
}

impl StepError {
    /// A failure the workflow itself decides on (e.g. the PSP refused a compensation refund).
    pub(crate) fn decided(type_name: &str, message: String) -> Self {
        StepError { type_name: Some(type_name.to_owned()), message, non_retryable: true }
    }

    /// Whether it is of this type.
    pub(crate) fn is(&self, type_name: &str) -> bool {
        self.type_name.as_deref() == Some(type_name)
    }

    /// Fails the workflow with it (only where histories from before a change did so).
    pub(crate) fn into_termination(self) -> WorkflowTermination {
        let failure = ApplicationFailure::builder(self.message).maybe_type_name(self.type_name).build();
        WorkflowTermination::failed_application(failure)
    }
}

impl From<ActivityExecutionError> for StepError {
    /// A regular activity's failure wraps the application failure as its cause; a local
    /// activity's failure *is* the application failure (the SDK does not wrap it), so both
    /// shapes are read.
    fn from(err: ActivityExecutionError) -> Self {
        let ActivityExecutionError::Failed(f) = &err else {
            return StepError { type_name: None, message: err.to_string(), non_retryable: false };
        };
        if let Some(cause) = f.cause() {
            let mut step = from_failure(cause.failure());
            if let IncomingError::Timeout(_) = cause {
                step.type_name = Some("Timeout".to_owned());
            }
            return step;
        }
        from_failure(f.failure())
    }
}

fn from_failure(failure: &Failure) -> StepError {
    let (type_name, non_retryable) = match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => {
            ((!info.r#type.is_empty()).then(|| info.r#type.clone()), info.non_retryable)
        }
        Some(FailureInfo::TimeoutFailureInfo(_)) => (Some("Timeout".to_owned()), false),
        _ => (None, false),
    };
    StepError { type_name, message: failure.message.clone(), non_retryable }
}
