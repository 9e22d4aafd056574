//! Worker threads that live as long as one import, one per core, at a lower priority than the
//! thread that feeds them and the store's writer.
//!
//! Starting threads for every batch, as a plain `thread::scope` per batch would, also gave
//! every batch fresh allocator heaps: the kernel then zeroed new pages for each batch's
//! buffers. Threads kept for the whole import reuse theirs.
//!
//! The single writer thread is an import's critical path: it inserts and commits one batch
//! while the workers parse and seal the next ones. With a worker per core, the scheduler gave
//! the writer a third to a half of a core while the workers ran; at a nice value
//! [`WORKER_NICENESS`] above their caller's, the workers take only the CPU time that the
//! writer and the checkpointer leave (measured: the writer's batch took a quarter less time,
//! the import went 10 to 20 % faster; `cargo bench --bench import`).

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use crate::error::{Error, Result};

/// How much lower the workers' scheduling priority is than their caller's (a nice increment).
const WORKER_NICENESS: i32 = 10;

/// One worker per core, mapping a function over chunks of items. Several batches may be in
/// flight: [`Workers::send`] queues one, [`Workers::receive`] returns the oldest, in order.
pub(crate) struct Workers<'scope, T, R> {
    jobs: Vec<mpsc::Sender<Vec<T>>>,
    results: Vec<mpsc::Receiver<Vec<R>>>,
    handles: Vec<ScopedJoinHandle<'scope, ()>>,
    /// Per batch in flight, oldest first: how many workers were given a chunk of it.
    in_flight: VecDeque<usize>,
}

impl<'scope, T: Send + 'scope, R: Send + 'scope> Workers<'scope, T, R> {
    /// Starts the workers in `scope`; each applies `f` to the items it is given.
    pub(crate) fn start<'env, F>(scope: &'scope Scope<'scope, 'env>, f: &'scope F) -> Self
    where
        F: Fn(&T) -> R + Sync,
    {
        let count = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(1);
        let mut workers = Workers {
            jobs: Vec::with_capacity(count),
            results: Vec::with_capacity(count),
            handles: Vec::with_capacity(count),
            in_flight: VecDeque::new(),
        };
        for _ in 0..count {
            let (job, jobs) = mpsc::channel::<Vec<T>>();
            let (result, results) = mpsc::channel::<Vec<R>>();
            workers.handles.push(scope.spawn(move || {
                lower_priority();
                for chunk in jobs {
                    if result.send(chunk.iter().map(f).collect()).is_err() {
                        return;
                    }
                }
            }));
            workers.jobs.push(job);
            workers.results.push(results);
        }
        workers
    }

    /// Maps `f` over `items` on every worker, keeping their order. Call it with no batch in
    /// flight (or [`Workers::receive`] returns the older batches first).
    pub(crate) fn map(&mut self, items: Vec<T>) -> Result<Vec<R>> {
        self.send(items)?;
        self.receive()
    }

    /// Queues a batch: its items are split among the workers, who start on it once they are
    /// done with the batches queued before.
    pub(crate) fn send(&mut self, items: Vec<T>) -> Result<()> {
        let per_worker = items.len().div_ceil(self.jobs.len().max(1)).max(1);
        let mut items = items.into_iter();
        let mut sent = 0;
        for job in &self.jobs {
            let chunk: Vec<T> = items.by_ref().take(per_worker).collect();
            if chunk.is_empty() {
                break;
            }
            job.send(chunk).map_err(|_| failed())?;
            sent += 1;
        }
        self.in_flight.push_back(sent);
        Ok(())
    }

    /// Waits for the oldest batch in flight and returns its results in item order (nothing
    /// when no batch is in flight).
    pub(crate) fn receive(&mut self) -> Result<Vec<R>> {
        let sent = self.in_flight.pop_front().unwrap_or(0);
        let mut out = Vec::new();
        // INVARIANT: each worker returns its chunks in the order it was given them, and every
        // batch gave chunks to its first `sent` workers, so these are this batch's results.
        for results in self.results.iter().take(sent) {
            out.extend(results.recv().map_err(|_| failed())?);
        }
        Ok(out)
    }

    /// Batches sent and not yet received.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

impl<T, R> Drop for Workers<'_, T, R> {
    /// Ends the workers and waits for them (a worker that panicked is joined here, not left
    /// for the scope to re-raise).
    fn drop(&mut self) {
        self.jobs.clear();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Lowers the calling thread's scheduling priority by [`WORKER_NICENESS`]. On Linux a nice
/// value belongs to the thread, not the process; elsewhere nothing is changed. Failing to
/// lower it costs speed, never correctness.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::nice(WORKER_NICENESS) {
        tracing::debug!(error = %e, "import workers run at normal priority");
    }
}

fn failed() -> Error {
    Error::Corrupt {
        what: "a worker thread of the import failed",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn map_keeps_the_order_for_every_size_and_reuses_the_workers() {
        let double = |n: &u64| n * 2;
        std::thread::scope(|scope| {
            let mut workers = Workers::start(scope, &double);
            for size in [0u64, 1, 2, 3, 7, 1000] {
                let out = workers.map((0..size).collect()).unwrap();
                assert_eq!(out, (0..size).map(|n| n * 2).collect::<Vec<_>>());
            }
        });
    }

    #[test]
    fn batches_in_flight_come_back_whole_and_in_the_order_sent() {
        let double = |n: &u64| n * 2;
        std::thread::scope(|scope| {
            let mut workers = Workers::start(scope, &double);
            let sizes = [5u64, 0, 1, 1000, 3];
            for (n, size) in sizes.iter().enumerate() {
                workers
                    .send((0..*size).map(|i| i + 10_000 * n as u64).collect())
                    .unwrap();
            }
            assert_eq!(workers.in_flight(), sizes.len());
            for (n, size) in sizes.iter().enumerate() {
                let expected: Vec<u64> = (0..*size).map(|i| (i + 10_000 * n as u64) * 2).collect();
                assert_eq!(workers.receive().unwrap(), expected);
            }
            assert_eq!(workers.in_flight(), 0);
            assert!(workers.receive().unwrap().is_empty());
        });
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn workers_run_at_a_lower_priority_than_their_caller() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        let own = |_: &u8| rustix::process::getpriority_process(None).unwrap();
        std::thread::scope(|scope| {
            let mut workers = Workers::start(scope, &own);
            let seen = workers.map(vec![0]).unwrap();
            assert_eq!(seen, vec![(caller + WORKER_NICENESS).min(19)]);
        });
        assert_eq!(
            rustix::process::getpriority_process(None).unwrap(),
            caller,
            "the caller's own priority is unchanged"
        );
    }
}
