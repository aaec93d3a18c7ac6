//! The stack's services, each on a thread and a runtime of its own, and what went wrong in them.
//!
//! A service's threads are named `{stack id}/{service}`. A process-wide panic hook records a
//! panic on such a thread against its stack (a panic inside a spawned task — a request
//! handler, an activity — is otherwise swallowed by tokio and the test may still pass), and a
//! service whose `run` fails, or returns before it was told to stop, is recorded too.
//! [`Health::failures`] is what the stack checks while a test waits and again at shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError, Weak};
use tokio::sync::oneshot;

/// Runtime threads per service (each service is mostly idle; two keep a slow request from
/// holding up the others).
const SERVICE_THREADS: usize = 2;

/// The future that resolves when a service is told to stop gracefully.
pub type Stop = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Live stacks by id, for the panic hook (weak: a dropped stack leaves on its own).
static STACKS: Mutex<Option<HashMap<String, Weak<Health>>>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// What went wrong inside one stack's services.
pub struct Health {
    id: String,
    failures: Mutex<Vec<String>>,
    /// Services whose `run` returned after a graceful stop and whose runtime is being torn
    /// down: a task there that unwraps the `JoinError::Cancelled` of a task the teardown
    /// cancelled (the Temporal SDK core's poller does) is not a crash of the service.
    torn_down: Mutex<Vec<String>>,
}

impl Health {
    /// A new stack's record, known to the panic hook.
    pub fn register(id: String) -> Arc<Health> {
        HOOK.call_once(install_hook);
        let health =
            Arc::new(Health { id: id.clone(), failures: Mutex::new(Vec::new()), torn_down: Mutex::new(Vec::new()) });
        let mut stacks = STACKS.lock().unwrap_or_else(PoisonError::into_inner);
        stacks.get_or_insert_with(HashMap::new).insert(id, Arc::downgrade(&health));
        health
    }

    /// Records a failure.
    pub fn fail(&self, what: String) {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).push(what);
    }

    /// Everything recorded so far.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn thread_name(&self, service: &str) -> String {
        format!("{}/{service}", self.id)
    }
}

impl Drop for Health {
    fn drop(&mut self) {
        let mut stacks = STACKS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stacks) = stacks.as_mut() {
            stacks.remove(&self.id);
        }
    }
}

/// Records panics on a stack's threads, then reports them as before (the default hook prints
/// them; the test harness shows that output for failed tests).
fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        if let Some((stack, service)) = thread.name().and_then(|n| n.split_once('/')) {
            let health = STACKS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .and_then(|s| s.get(stack))
                .and_then(Weak::upgrade);
            if let Some(health) = health {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string panic payload)".to_owned());
                let at = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
                let teardown = message.contains("JoinError::Cancelled")
                    && health.torn_down.lock().unwrap_or_else(PoisonError::into_inner).iter().any(|s| s == service);
                if !teardown {
                    health.fail(format!("{service} panicked: {message}{at}"));
                }
            }
        }
        previous(info);
    }));
}

/// One running service.
pub struct Service {
    stopping: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    kill: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Runs `make(stop)` on a new thread with its own multi-threaded runtime; its outcome is
    /// checked against whether it was asked to stop.
    pub fn start<F, Fut>(health: &Arc<Health>, name: &'static str, make: F) -> Service
    where
        F: FnOnce(Stop) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + 'static,
    {
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let stopping = Arc::new(AtomicBool::new(false));
        let thread_name = health.thread_name(name);
        let (health, told) = (health.clone(), stopping.clone());
        let thread = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(SERVICE_THREADS)
                    .thread_name(thread_name)
                    .enable_all()
                    .build()
                    .expect("service runtime");
                let stop: Stop = Box::pin(async move {
                    let _ = stop_rx.await;
                });
                let outcome = rt.block_on(async move {
                    tokio::select! {
                        result = make(stop) => Some(result),
                        // Killed (or the stack dropped): everything in flight is abandoned.
                        _ = kill_rx => None,
                    }
                });
                if matches!(outcome, Some(Ok(()))) && told.load(Ordering::SeqCst) {
                    health.torn_down.lock().unwrap_or_else(PoisonError::into_inner).push(name.to_owned());
                }
                rt.shutdown_background();
                match outcome {
                    Some(Err(e)) => health.fail(format!("{name} failed: {e:#}")),
                    Some(Ok(())) if !told.load(Ordering::SeqCst) => {
                        health.fail(format!("{name} stopped on its own while the test was running"))
                    }
                    _ => {}
                }
            })
            .expect("spawn service thread");
        Service { stopping, stop: Some(stop_tx), kill: Some(kill_tx), thread: Some(thread) }
    }

    /// Asks the service to stop gracefully and waits until it has.
    pub async fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join().await;
    }

    /// Stops the service at once, as a crash would: its runtime is dropped with every request
    /// and task in flight.
    pub async fn kill(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(tx) = self.kill.take() {
            let _ = tx.send(());
        }
        self.join().await;
    }

    async fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Service {
    /// Without [`Service::stop`]: a kill, not waited for (the test is over or failing).
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(tx) = self.kill.take() {
            let _ = tx.send(());
        }
    }
}
