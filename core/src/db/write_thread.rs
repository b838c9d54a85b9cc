//! SQLite's write thread: where the purchase writer and the other hot write transactions run.
//!
//! SQLite has one writer connection; sqlx runs it on a thread of its own and hands every
//! statement to it and every result back through a channel. On the server's runtime the task
//! that waits for a result is woken from outside the runtime, so it queues behind whatever the
//! request tasks have made ready on the two workers before it sends the next statement; a
//! group of purchases is about ten statements, an enrolment or a redemption about as many,
//! and the connection, which every write transaction needs, sat idle between them (its
//! thread was on a CPU 40 % of the time, BENCHMARKS.md). Here those transactions run on a
//! thread with a single-threaded runtime of its own, which runs nothing else: a result wakes
//! the one task that waits for it.
//!
//! Only SQLite: its connection is driven by its own thread, not by a runtime's I/O driver, so
//! a second runtime can use it. PostgreSQL's sockets belong to the server's runtime, where its
//! transactions stay.

use std::future::Future;
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The thread and its runtime. It stops when this is dropped with the last [`super::Db`]
/// that holds it; a transaction running on it holds one, so none is cut short.
#[derive(Debug)]
pub(crate) struct WriteThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl WriteThread {
    pub(crate) fn start() -> std::io::Result<Self> {
        let runtime = Builder::new_current_thread()
            .enable_all()
            .thread_name("loyalty-writes")
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("loyalty-writes".into())
            .spawn(move || {
                runtime.block_on(async {
                    // An error: the sender is gone, which is the signal.
                    let _ = stopped.await;
                });
            })?;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    /// Runs `task` on the thread.
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }
}
