//! Extract quotas per principal: at most `extracts` admitted attempts in any sliding window of
//! `window_seconds` (policy/limits.toml `[extract]`).
//!
//! Every attempt counts, whatever its outcome (a 404 counts: probing ids is the attack).
//! Attempts refused by the quota itself do not count, so `Retry-After` tells the truth: after
//! that many seconds one slot is free. The log per principal counts attempts per slice of a
//! 3,600th of the window, so it is at most 3,601 slices whatever the limit (a limit of
//! millions an hour used to keep millions of timestamps). On SQLite the state is in memory:
//! a restart starts every window afresh (SECURITY.md). On PostgreSQL it is in the database,
//! so that every node of the vault counts the same attempts ([`SharedQuota`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::PrincipalId;
use crate::settings::Quota;
use crate::store::{Location, Readers};

/// The outcome of asking for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; the attempt was counted.
    Admit,
    /// Refused; one slot frees in this many seconds (at least 1).
    Refuse {
        /// Seconds until a slot is free.
        retry_after_secs: u64,
    },
}

/// Sliding-window logs of admitted attempts, per principal.
pub struct QuotaTracker {
    limit: usize,
    window: Duration,
    origin: Instant,
    logs: Mutex<HashMap<PrincipalId, Log>>,
    shared: Option<SharedQuota>,
}

/// Slices a window is counted in: the memory of a principal's log is bounded by this, not
/// by its limit.
const SLICES: u32 = 3_600;

/// One principal's admitted attempts in the window, counted per slice.
#[derive(Default)]
struct Log {
    /// Oldest first.
    slices: VecDeque<Slice>,
    /// The sum of the slices' counts.
    admitted: usize,
}

/// The attempts admitted in one slice of time, and the latest of them.
struct Slice {
    index: u128,
    latest: Duration,
    count: usize,
}

/// The quota's logs in the PostgreSQL store, shared by every node (a few connections of
/// its own: one principal's attempts are decided one at a time anyway).
pub struct SharedQuota {
    pool: Readers,
}

/// Most connections a node opens for the quota's one-statement transactions.
const MAX_QUOTA_CONNECTIONS: usize = 8;

impl SharedQuota {
    fn admit(
        &self,
        principal: &PrincipalId,
        window: Duration,
        limit: usize,
    ) -> crate::Result<Admission> {
        let wait_ms = self.pool.autocommit(|db| {
            crate::store::postgres::quota_admit(
                db,
                principal.as_str(),
                i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
                i64::try_from(limit).unwrap_or(i64::MAX),
            )
        })?;
        Ok(match u64::try_from(wait_ms) {
            Ok(0) => Admission::Admit,
            Ok(ms) => Admission::Refuse {
                retry_after_secs: ms.div_ceil(1000).max(1),
            },
            Err(_) => Admission::Refuse {
                retry_after_secs: 1,
            },
        })
    }
}

impl QuotaTracker {
    /// A tracker for `quota`.
    pub fn new(quota: &Quota) -> QuotaTracker {
        QuotaTracker {
            limit: usize::try_from(quota.extracts).unwrap_or(usize::MAX),
            window: Duration::from_secs(quota.window_seconds),
            origin: Instant::now(),
            logs: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// A tracker for `quota` whose logs are in the vault's store when it is PostgreSQL (shared
    /// by every node), in memory otherwise.
    pub fn for_store(quota: &Quota, location: &Location) -> QuotaTracker {
        let mut tracker = QuotaTracker::new(quota);
        if location.is_postgres() {
            tracker.shared = Some(SharedQuota {
                pool: Readers::bounded(location, MAX_QUOTA_CONNECTIONS),
            });
        }
        tracker
    }

    /// Asks for a slot now. With the logs in PostgreSQL, a store that does not answer
    /// refuses (fail closed): an attempt that cannot be counted is not admitted.
    pub fn admit(&self, principal: &PrincipalId) -> Admission {
        if let Some(shared) = &self.shared {
            return shared
                .admit(principal, self.window, self.limit)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "the extract quota could not be counted in PostgreSQL; the attempt is refused");
                    Admission::Refuse {
                        retry_after_secs: 1,
                    }
                });
        }
        self.admit_at(principal, self.origin.elapsed())
    }

    /// Asks for a slot at `now` (time since the tracker started; tests pass it explicitly).
    pub fn admit_at(&self, principal: &PrincipalId, now: Duration) -> Admission {
        let mut logs = match self.logs.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let log = logs.entry(principal.clone()).or_default();
        // Forget slices that left the window: all of a slice's attempts are forgotten when
        // its latest leaves (at `latest + window` or later). An attempt is thus counted at
        // least as long as the window, and at most one slice longer: never more than
        // `limit` are admitted in any window.
        while let Some(oldest) = log.slices.front() {
            if oldest.latest + self.window > now {
                break;
            }
            log.admitted -= oldest.count;
            log.slices.pop_front();
        }
        if log.admitted < self.limit {
            let width = (self.window / SLICES).max(Duration::from_micros(1));
            let index = now.as_nanos() / width.as_nanos();
            match log.slices.back_mut() {
                Some(slice) if slice.index == index => {
                    slice.count += 1;
                    slice.latest = slice.latest.max(now);
                }
                _ => log.slices.push_back(Slice {
                    index,
                    latest: now,
                    count: 1,
                }),
            }
            log.admitted += 1;
            return Admission::Admit;
        }
        // When the oldest slice leaves, its attempts (at least one) free their slots.
        let frees_at = log
            .slices
            .front()
            .map_or(now + self.window, |oldest| oldest.latest + self.window);
        let wait = frees_at.saturating_sub(now);
        // Round up: retrying after the advertised seconds must succeed.
        let mut retry_after_secs = wait.as_secs();
        if wait.subsec_nanos() > 0 || retry_after_secs == 0 {
            retry_after_secs += 1;
        }
        Admission::Refuse { retry_after_secs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(extracts: u32, window_seconds: u64) -> QuotaTracker {
        QuotaTracker::new(&Quota {
            extracts,
            window_seconds,
        })
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn admits_up_to_the_quota_then_refuses_until_the_oldest_leaves_the_window() {
        let quota = tracker(3, 60);
        let emp: PrincipalId = "emp".parse().unwrap();
        assert_eq!(quota.admit_at(&emp, secs(0.0)), Admission::Admit);
        assert_eq!(quota.admit_at(&emp, secs(10.0)), Admission::Admit);
        assert_eq!(quota.admit_at(&emp, secs(20.0)), Admission::Admit);
        assert_eq!(
            quota.admit_at(&emp, secs(30.0)),
            Admission::Refuse {
                retry_after_secs: 30
            }
        );
        // Refused attempts do not push the window: the advertised time is honest.
        assert_eq!(
            quota.admit_at(&emp, secs(59.5)),
            Admission::Refuse {
                retry_after_secs: 1
            }
        );
        assert_eq!(quota.admit_at(&emp, secs(60.0)), Admission::Admit);
        assert_eq!(
            quota.admit_at(&emp, secs(60.0)),
            Admission::Refuse {
                retry_after_secs: 10
            }
        );
        assert_eq!(quota.admit_at(&emp, secs(70.0)), Admission::Admit);
    }

    #[test]
    fn principals_have_separate_windows() {
        let quota = tracker(1, 3600);
        let a: PrincipalId = "a".parse().unwrap();
        let b: PrincipalId = "b".parse().unwrap();
        assert_eq!(quota.admit_at(&a, secs(1.0)), Admission::Admit);
        assert_eq!(quota.admit_at(&b, secs(1.0)), Admission::Admit);
        assert_eq!(
            quota.admit_at(&a, secs(2.0)),
            Admission::Refuse {
                retry_after_secs: 3599
            }
        );
    }

    #[test]
    fn a_high_limit_keeps_a_few_thousand_slices_not_a_timestamp_per_attempt() {
        // Before: one timestamp per admitted attempt, so a limit of millions an hour grew the
        // server by 16 bytes per extract for the first hour (the soak's memory growth).
        let quota = tracker(u32::MAX, 3600);
        let a: PrincipalId = "a".parse().unwrap();
        for n in 0..2_000_000u64 {
            // 2 million attempts over 1.5 windows.
            let at = Duration::from_micros(n * 2_700);
            assert_eq!(quota.admit_at(&a, at), Admission::Admit);
        }
        let logs = quota.logs.lock().unwrap();
        let log = &logs[&a];
        assert!(
            log.slices.len() <= SLICES as usize + 1,
            "{}",
            log.slices.len()
        );
        // The attempts still in the window are counted, none forgotten early.
        let in_window = 2_000_000 - (2_000_000 * 2_700 - 3_600_000_000u64) / 2_700;
        assert!(
            log.admitted as u64 >= in_window,
            "{} < {in_window}",
            log.admitted
        );
        assert!(log.admitted as u64 <= in_window + 2_000_000 / 5_400 + 1);
    }

    #[test]
    fn attempts_in_one_slice_never_let_more_than_the_limit_through_a_window() {
        // Three attempts in one slice (a 3,600th of 60 s is 16.7 ms), then the window moves
        // on: the slice is forgotten only when its latest attempt has left the window.
        let quota = tracker(3, 60);
        let a: PrincipalId = "a".parse().unwrap();
        for at in [0.000, 0.005, 0.010] {
            assert_eq!(quota.admit_at(&a, secs(at)), Admission::Admit);
        }
        // The first attempt left the window at 60.000, the slice's latest at 60.010.
        assert_eq!(
            quota.admit_at(&a, secs(60.005)),
            Admission::Refuse {
                retry_after_secs: 1
            }
        );
        for _ in 0..3 {
            assert_eq!(quota.admit_at(&a, secs(60.010)), Admission::Admit);
        }
        assert!(matches!(
            quota.admit_at(&a, secs(60.011)),
            Admission::Refuse { .. }
        ));
    }

    #[test]
    fn a_zero_quota_refuses_everything_for_a_whole_window() {
        let quota = tracker(0, 120);
        let a: PrincipalId = "a".parse().unwrap();
        assert_eq!(
            quota.admit_at(&a, secs(5.0)),
            Admission::Refuse {
                retry_after_secs: 120
            }
        );
    }
}
