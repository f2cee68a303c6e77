//! The current time, injectable so tests can move it.

use std::fmt;

use chrono::Utc;

/// The current time, injectable so tests can move it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in epoch millis.
    fn now_millis(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}
