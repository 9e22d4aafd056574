//! Worker threads that live as long as one import, one per core.
//!
//! Starting threads for every batch, as a plain `thread::scope` per batch would, also gave
//! every batch fresh allocator heaps: the kernel then zeroed new pages for each batch's
//! buffers. Threads kept for the whole import reuse theirs.

use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

use crate::error::{Error, Result};

/// One worker per core, mapping a function over chunks of items.
pub(crate) struct Workers<'scope, T, R> {
    jobs: Vec<mpsc::Sender<Vec<T>>>,
    results: Vec<mpsc::Receiver<Vec<R>>>,
    handles: Vec<ScopedJoinHandle<'scope, ()>>,
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
        };
        for _ in 0..count {
            let (job, jobs) = mpsc::channel::<Vec<T>>();
            let (result, results) = mpsc::channel::<Vec<R>>();
            workers.handles.push(scope.spawn(move || {
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

    /// Maps `f` over `items` on every worker, keeping their order.
    pub(crate) fn map(&self, items: Vec<T>) -> Result<Vec<R>> {
        let total = items.len();
        let per_worker = total.div_ceil(self.jobs.len().max(1)).max(1);
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
        let mut out = Vec::with_capacity(total);
        for results in self.results.iter().take(sent) {
            out.extend(results.recv().map_err(|_| failed())?);
        }
        Ok(out)
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
            let workers = Workers::start(scope, &double);
            for size in [0u64, 1, 2, 3, 7, 1000] {
                let out = workers.map((0..size).collect()).unwrap();
                assert_eq!(out, (0..size).map(|n| n * 2).collect::<Vec<_>>());
            }
        });
    }
}
