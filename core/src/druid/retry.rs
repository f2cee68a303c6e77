//! Exponential backoff with jitter, shared by the Overlord and receiver clients.

use std::time::Duration;

use rand::Rng;

/// How long and how often a call is retried on transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total time from the first attempt after which no new attempt starts.
    pub period: Duration,
    /// Delay before the second attempt (before jitter).
    pub initial_backoff: Duration,
    /// Upper bound of the doubling delay (before jitter).
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The Overlord's policy: 15 s doubling to 60 s, for `druidBeam.indexRetryPeriod` (PT1M).
    pub fn overlord_default() -> Self {
        RetryPolicy {
            period: Duration::from_secs(60),
            initial_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(60),
        }
    }

    /// The push policy: 100 ms doubling to 30 s, for `druidBeam.firehoseRetryPeriod` (PT1M).
    pub fn receiver_default() -> Self {
        RetryPolicy {
            period: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
        }
    }

    /// The wait before the next attempt of a call that started `elapsed` ago: the next
    /// backoff delay, cut short so the last attempt starts at the end of the period; `None`
    /// once the period is over.
    pub fn next_wait(&self, backoff: &mut Backoff, elapsed: Duration) -> Option<Duration> {
        let remaining = self.period.checked_sub(elapsed).filter(|r| !r.is_zero())?;
        Some(backoff.next_delay().min(remaining))
    }

    /// A fresh backoff sequence for one call.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            next: self.initial_backoff,
            max: self.max_backoff.max(self.initial_backoff),
        }
    }
}

/// A doubling delay sequence; each delay is jittered to between 50 % and 150 % of its base.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// The next delay to sleep before retrying.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(self.max);
        jitter(base)
    }
}

/// `base` scaled by a random factor in [0.5, 1.5), so clients retrying together spread out.
pub fn jitter(base: Duration) -> Duration {
    let factor: f64 = rand::rng().random_range(0.5..1.5);
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_cut_to_the_period_and_end_with_it() {
        let policy = RetryPolicy {
            period: Duration::from_secs(2),
            initial_backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(60),
        };
        let mut backoff = policy.backoff();
        assert_eq!(
            policy.next_wait(&mut backoff, Duration::from_millis(500)),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(policy.next_wait(&mut backoff, Duration::from_secs(2)), None);
        assert_eq!(policy.next_wait(&mut backoff, Duration::from_secs(3)), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let policy = RetryPolicy {
            period: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
        };
        let mut backoff = policy.backoff();
        let bases = [100, 200, 400, 400, 400];
        for base in bases {
            let d = backoff.next_delay().as_secs_f64() * 1000.0;
            let base = base as f64;
            assert!(
                d >= base * 0.5 && d < base * 1.5,
                "{d} ms not within jitter of {base}"
            );
        }
    }
}
