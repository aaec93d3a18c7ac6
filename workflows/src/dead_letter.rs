//! Dead letters: a step that failed past its retries, or with an error nothing classifies,
//! parks its workflow instead of failing it. The step is recorded for operators (store row,
//! `PaymentStatus = DEAD_LETTER` in the Temporal UI) and the workflow waits for an operator's
//! `dead_letter` update: *retry* runs the step again (same idempotency keys, fresh retries);
//! *resolve* closes it without running the step (the operator settled it by hand).

use crate::contract::{CloseDeadLetter, DeadLetterClose, DeadLetterOpen, OpenDeadLetter, OperatorNote};
use crate::failures::StepError;
use crate::messages::{DeadLetterAction, DeadLetterVerb, PAYMENT_STATUS_ATTRIBUTE};
use crate::persist::persist_always;
use crate::versions;
use payments_domain::CheckoutId;
use std::collections::BTreeMap;
use std::future::{Future, Ready};
use std::time::Duration;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

/// The search attribute value of a parked workflow.
pub const DEAD_LETTER_STATUS: &str = "DEAD_LETTER";

/// A workflow's open dead letters and the operator actions that arrived for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetters {
    open: BTreeMap<String, Option<DeadLetterAction>>,
}

impl DeadLetters {
    /// Whether any dead letter is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Refuses an action for a dead letter this workflow is not parked on, or one already
    /// acted on (the gateway then answers the stored record: retry and resolve stay idempotent).
    pub fn validate(&self, action: &DeadLetterAction) -> Result<(), String> {
        if action.operator.trim().is_empty() || action.reason.trim().is_empty() {
            return Err("operator and reason are required".into());
        }
        match self.open.get(&action.dead_letter_id) {
            Some(None) => Ok(()),
            Some(Some(_)) => Err(format!("dead letter {} is already being handled", action.dead_letter_id)),
            None => Err(format!("dead letter {} is not open in this workflow", action.dead_letter_id)),
        }
    }

    /// Takes a validated action.
    pub fn accept(&mut self, action: DeadLetterAction) {
        if let Some(slot) = self.open.get_mut(&action.dead_letter_id) {
            *slot = Some(action);
        }
    }

    fn action(&self, id: &str) -> Option<&DeadLetterAction> {
        self.open.get(id).and_then(Option::as_ref)
    }
}

/// A workflow that can park on dead letters.
pub trait DeadLetterHost: 'static {
    /// Its board.
    fn dead_letters(&self) -> &DeadLetters;
    /// Its board, to change.
    fn dead_letters_mut(&mut self) -> &mut DeadLetters;
    /// The `PaymentStatus` value to show again once no dead letter is open.
    fn status_value(&self) -> &'static str;
    /// Attempts of one run of a database step (its [`crate::messages::WaitLimits`]).
    fn store_attempts_max(&self) -> u32;
}

/// The step being guarded.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// Payment order or refund id.
    pub(crate) subject: String,
    /// Activity name, e.g. `psp.refund`.
    pub(crate) step: &'static str,
    /// Its checkout, when there is one.
    pub(crate) checkout_id: Option<CheckoutId>,
    /// The retry policy's attempts per run (recorded when retries ran out).
    pub(crate) attempts_max: u32,
}

impl Step {
    fn id(&self) -> String {
        format!("{}:{}", self.subject, self.step)
    }
}

/// Runs `run` until it succeeds (`Some`) or an operator resolves its dead letter (`None`).
/// `run` is one full run of the step with its own retry policy.
pub(crate) async fn guarded<W, T, F, Fut>(ctx: &WorkflowContext<W>, step: &Step, run: F) -> WorkflowResult<Option<T>>
where
    W: DeadLetterHost,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
{
    type NoCheck<T> = fn() -> Ready<Result<Option<T>, StepError>>;
    guarded_checked(ctx, step, run, None::<NoCheck<T>>).await
}

/// [`guarded`], and before acting on an operator's retry or resolve, `check` finds out whether
/// the step's effect already happened (a PSP refund whose answer was lost): `Some` is taken as
/// the step's result whatever the operator asked (never done twice, never dropped when done);
/// `None` lets the action go ahead; an error parks the step again.
pub(crate) async fn guarded_checked<W, T, F, Fut, C, CFut>(
    ctx: &WorkflowContext<W>,
    step: &Step,
    mut run: F,
    mut check: Option<C>,
) -> WorkflowResult<Option<T>>
where
    W: DeadLetterHost,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StepError>>,
    C: FnMut() -> CFut,
    CFut: Future<Output = Result<Option<T>, StepError>>,
{
    let id = step.id();
    let mut err = match run().await {
        Ok(value) => return Ok(Some(value)),
        Err(err) => err,
    };
    loop {
        let action = park(ctx, step, &id, &err).await?;
        let checked = match check.as_mut() {
            // Histories from before the check replay the operator's action directly.
            Some(check) if ctx.patched(versions::REFUND_ASKS_PSP_FIRST) => Some(check().await),
            _ => None,
        };
        let note = OperatorNote { operator: action.operator, reason: action.reason };
        match (action.verb, checked) {
            // Could not find out: ask the operator again rather than guess.
            (_, Some(Err(e))) => err = e,
            (DeadLetterVerb::Retry, Some(Ok(Some(value)))) => {
                close(ctx, &id, None).await?;
                return Ok(Some(value));
            }
            (DeadLetterVerb::Resolve, Some(Ok(Some(value)))) => {
                let reason = format!("{} (found done at the PSP: booked as such)", note.reason);
                close(ctx, &id, Some(OperatorNote { reason, ..note })).await?;
                return Ok(Some(value));
            }
            (DeadLetterVerb::Retry, _) => match run().await {
                Ok(value) => {
                    close(ctx, &id, None).await?;
                    return Ok(Some(value));
                }
                Err(e) => err = e,
            },
            (DeadLetterVerb::Resolve, _) => {
                close(ctx, &id, Some(note)).await?;
                return Ok(None);
            }
        }
    }
}

/// Closes the dead letter: its step succeeded (`None`), or an operator resolved it.
async fn close<W: DeadLetterHost>(
    ctx: &WorkflowContext<W>,
    id: &str,
    resolved: Option<OperatorNote>,
) -> WorkflowResult<()> {
    persist_always(ctx, CloseDeadLetter, DeadLetterClose { dead_letter_id: id.to_owned(), resolved }).await
}

/// Records the dead letter, shows it in the Temporal UI and waits for an operator's action.
async fn park<W: DeadLetterHost>(
    ctx: &WorkflowContext<W>,
    step: &Step,
    id: &str,
    err: &StepError,
) -> WorkflowResult<DeadLetterAction> {
    let kind = err.type_name.as_deref().unwrap_or("unclassified error");
    let (reason, attempts) = if err.non_retryable {
        (format!("{} failed: {kind} (not retryable)", step.step), 1)
    } else {
        (format!("{} failed after {} attempts: {kind}", step.step, step.attempts_max), step.attempts_max)
    };
    let open = DeadLetterOpen {
        dead_letter_id: id.to_owned(),
        workflow_id: ctx.workflow_id().to_owned(),
        checkout_id: step.checkout_id.clone(),
        subject: step.subject.clone(),
        step: step.step.to_owned(),
        reason,
        last_error: err.message.clone(),
        attempts,
    };
    // On the board before the row exists: an operator acts only on a stored row, so by then
    // the validator already accepts the action.
    ctx.state_mut(|s| s.dead_letters_mut().open.insert(id.to_owned(), None));
    persist_always(ctx, OpenDeadLetter, open).await?;
    ctx.upsert_search_attributes([PAYMENT_STATUS_ATTRIBUTE.value_set(DEAD_LETTER_STATUS.to_owned())]);
    let wanted = id.to_owned();
    ctx.wait_condition(move |s| s.dead_letters().action(&wanted).is_some()).await?;
    // The action came as an update (a speculative workflow task): complete that task before
    // local activities run again.
    ctx.timer(Duration::from_millis(1)).await;
    let (action, status) = ctx.state_mut(|s| {
        let action = s.dead_letters_mut().open.remove(id).flatten();
        let status = if s.dead_letters().is_empty() { Some(s.status_value()) } else { None };
        (action, status)
    });
    if let Some(status) = status {
        ctx.upsert_search_attributes([PAYMENT_STATUS_ATTRIBUTE.value_set(status.to_owned())]);
    }
    Ok(action.unwrap_or_else(|| unreachable!("waited for the action above")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(id: &str, verb: DeadLetterVerb) -> DeadLetterAction {
        DeadLetterAction { dead_letter_id: id.into(), verb, operator: "ops".into(), reason: "checked".into() }
    }

    /// An action is taken only for a dead letter the workflow is parked on, once; a second
    /// action (a retried CLI call) is refused, so the gateway answers the stored record instead.
    #[test]
    fn actions_are_accepted_once_and_only_for_open_letters() {
        let mut board = DeadLetters::default();
        assert!(board.validate(&action("a:psp.refund", DeadLetterVerb::Retry)).is_err(), "not open");
        board.open.insert("a:psp.refund".into(), None);
        let mut blank = action("a:psp.refund", DeadLetterVerb::Resolve);
        blank.reason = " ".into();
        assert!(board.validate(&blank).is_err(), "a reason is required");
        let retry = action("a:psp.refund", DeadLetterVerb::Retry);
        assert!(board.validate(&retry).is_ok());
        board.accept(retry.clone());
        assert_eq!(board.action("a:psp.refund"), Some(&retry));
        assert!(board.validate(&action("a:psp.refund", DeadLetterVerb::Resolve)).is_err(), "already handled");
        board.accept(action("b:other", DeadLetterVerb::Retry));
        assert!(board.action("b:other").is_none(), "an unknown letter is ignored");
    }
}
