//! Trying again what failed: one policy (a doubling backoff with jitter, bounded by a number of
//! attempts, a time budget, or both) for every retry loop of the crate: the Overlord and event
//! receiver clients, the ZooKeeper connection and coordinator, and the source driver's retry of
//! failed events.
//!
//! ```text
//!  attempt 1 fails ─ wait ~initial ─ attempt 2 fails ─ wait ~2×initial ─ ... ─ wait ~max ─ ...
//!  each wait is its base × a random factor in [0.5, 1.5), so clients failing together spread out;
//!  no attempt starts after `period`, and waits are cut so the last one starts right at its end.
//! ```
//!
//! A loop that needs to act between attempts (forget a cached address, check a task) keeps a
//! [`Retry`] and asks it after each failure how long to wait; a plain one calls [`retry`] with a
//! classifier saying which errors are worth another attempt.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How often and how long something that failed is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the second attempt (before jitter); doubled after each failure.
    pub initial_backoff: Duration,
    /// Upper bound of the doubling wait (before jitter).
    pub max_backoff: Duration,
    /// Attempts in all, the first included; `None` = as many as the period allows.
    pub max_attempts: Option<u32>,
    /// Time from the first attempt after which no new attempt starts; `None` = no limit.
    pub period: Option<Duration>,
}

impl Default for RetryPolicy {
    /// One second doubling to one minute, for as long as the error is worth retrying: what
    /// the source driver does with a failed event (one minute is the original's
    /// `druidBeam.firehoseRetryPeriod` default).
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_attempts: None,
            period: None,
        }
    }
}

impl RetryPolicy {
    /// The Overlord's: 15 s doubling to 60 s, for `druidBeam.indexRetryPeriod` (PT1M).
    pub fn overlord() -> Self {
        Self {
            initial_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(60),
            max_attempts: None,
            period: Some(Duration::from_secs(60)),
        }
    }

    /// The event receiver's: 100 ms doubling to 30 s, for `druidBeam.firehoseRetryPeriod`
    /// (PT1M).
    pub fn receiver() -> Self {
        Self {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_attempts: None,
            period: Some(Duration::from_secs(60)),
        }
    }

    /// ZooKeeper's: 50 ms doubling to 1 s within `period`; short waits, because the client
    /// reconnects by itself and an operation only waits for that.
    pub fn zookeeper(period: Duration) -> Self {
        Self {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            max_attempts: None,
            period: Some(period),
        }
    }

    /// The same policy with a single attempt: no retry at all.
    pub fn once(self) -> Self {
        Self {
            max_attempts: Some(1),
            ..self
        }
    }

    /// The wait after `failures` failed attempts (`failures >= 1`): the doubled base, capped,
    /// with jitter.
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let base = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff.max(self.initial_backoff));
        jitter(base)
    }

    /// Starts counting the attempts of one operation, now.
    pub fn start(&self) -> Retry {
        Retry {
            policy: *self,
            started: Instant::now(),
            attempts: 0,
        }
    }
}

/// The attempts of one operation under a [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct Retry {
    policy: RetryPolicy,
    started: Instant,
    attempts: u32,
}

impl Retry {
    /// Attempts that failed so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the operation started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// When the period ends, if the policy has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.policy.period.map(|p| self.started + p)
    }

    /// Counts a failed attempt; returns the wait before the next one, or `None` when the
    /// policy allows no more.
    pub fn failed(&mut self) -> Option<Duration> {
        let elapsed = self.elapsed();
        self.failed_after(elapsed)
    }

    fn failed_after(&mut self, elapsed: Duration) -> Option<Duration> {
        self.attempts = self.attempts.saturating_add(1);
        if self
            .policy
            .max_attempts
            .is_some_and(|max| self.attempts >= max)
        {
            return None;
        }
        let wait = self.policy.backoff(self.attempts);
        match self.policy.period {
            None => Some(wait),
            Some(period) => {
                let remaining = period.checked_sub(elapsed).filter(|r| !r.is_zero())?;
                Some(wait.min(remaining))
            }
        }
    }
}

/// Runs `op` until it succeeds, fails with an error `retriable` refuses, or `policy` allows no
/// more attempts (the last error is returned then). `on_retry` sees each error that is tried
/// again and the wait before the next attempt, to log it.
pub async fn retry<T, E, Fut>(
    policy: &RetryPolicy,
    mut op: impl FnMut() -> Fut,
    retriable: impl Fn(&E) -> bool,
    mut on_retry: impl FnMut(&E, Duration),
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempts = policy.start();
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(e) if retriable(&e) => e,
            Err(e) => return Err(e),
        };
        let Some(wait) = attempts.failed() else {
            return Err(error);
        };
        on_retry(&error, wait);
        tokio::time::sleep(wait).await;
    }
}

/// `base` scaled by a random factor in [0.5, 1.5), so clients waiting together spread out.
pub fn jitter(base: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(0.5..1.5);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within_jitter(d: Duration, base_ms: u64) -> bool {
        let (d, base) = (d.as_secs_f64() * 1000.0, base_ms as f64);
        d >= base * 0.5 && d < base * 1.5
    }

    #[test]
    fn waits_are_cut_to_the_period_and_end_with_it() {
        let policy = RetryPolicy {
            period: Some(Duration::from_secs(2)),
            ..RetryPolicy::overlord()
        };
        let mut retry = policy.start();
        assert_eq!(
            retry.failed_after(Duration::from_millis(500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry.failed_after(Duration::from_secs(2)), None);
        assert_eq!(retry.failed_after(Duration::from_secs(3)), None);
        assert_eq!(retry.attempts(), 3);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..RetryPolicy::default()
        };
        let mut retry = policy.start();
        for base in [100, 200, 400, 400, 400] {
            let d = retry.failed_after(Duration::ZERO).unwrap();
            assert!(
                within_jitter(d, base),
                "{d:?} not within jitter of {base} ms"
            );
        }
        assert!(within_jitter(policy.backoff(u32::MAX), 400));
    }

    #[test]
    fn attempts_are_bounded_when_the_policy_says_so() {
        let policy = RetryPolicy {
            max_attempts: Some(3),
            ..RetryPolicy::default()
        };
        let mut retry = policy.start();
        assert!(retry.failed_after(Duration::ZERO).is_some());
        assert!(retry.failed_after(Duration::ZERO).is_some());
        assert_eq!(
            retry.failed_after(Duration::ZERO),
            None,
            "the third attempt was the last"
        );
        let mut once = RetryPolicy::receiver().once().start();
        assert_eq!(once.failed_after(Duration::ZERO), None);
        let mut forever = RetryPolicy::default().start();
        for _ in 0..1000 {
            assert!(forever.failed_after(Duration::from_secs(1 << 20)).is_some());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retry_classifies_and_gives_up() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
            max_attempts: Some(4),
            period: None,
        };
        let mut calls = 0;
        let mut retried = Vec::new();
        let out: Result<(), &str> = retry(
            &policy,
            || {
                calls += 1;
                async move { Err(if calls < 3 { "transient" } else { "fatal" }) }
            },
            |e| *e == "transient",
            |e, _| retried.push(*e),
        )
        .await;
        assert_eq!(out, Err("fatal"), "a refused error ends it at once");
        assert_eq!(retried, ["transient", "transient"]);

        let mut calls = 0;
        let out: Result<u32, &str> = retry(
            &policy,
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err("transient")
                    } else {
                        Ok(n)
                    }
                }
            },
            |_| true,
            |_, _| {},
        )
        .await;
        assert_eq!(out, Ok(3));

        let out: Result<(), &str> =
            retry(&policy, || async { Err("transient") }, |_| true, |_, _| {}).await;
        assert_eq!(out, Err("transient"), "out of attempts: the last error");
    }
}
