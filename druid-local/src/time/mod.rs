//! Time on Druid's terms: ISO-8601 parsing and printing, intervals, periods and granularities.
//!
//! This follows Joda-Time as Druid uses it, over every instant an `i64` of millis holds
//! (Druid's own `Intervals.ETERNITY` runs from `-146136543-09-08T08:23:32.096Z` to
//! `146140482-04-24T15:36:27.903Z`). It is written apart from the client's time code on
//! purpose: druid-local plays the other side of the wire, and its answers check the client's.

mod calendar;
mod granularity;
mod iso;
mod period;

pub use calendar::iso;
pub use granularity::Granularity;
pub use iso::{parse_auto, parse_iso, strip_quotes};
pub use period::Period;

use chrono::Utc;
use serde_json::Value;

/// Milliseconds since the epoch, UTC.
pub type Millis = i64;

/// Current wall-clock time in milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Parses a JSON date-time as Druid's Jackson module does: a number of epoch millis, or an ISO
/// string (trimmed, then Joda's `dateTimeParser`).
pub fn parse_instant(v: &Value) -> Option<Millis> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_iso(s.trim()).ok(),
        _ => None,
    }
}

/// A half-open time interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    /// Inclusive start.
    pub start: Millis,
    /// Exclusive end.
    pub end: Millis,
}

/// Druid's `Intervals.ETERNITY`: Joda's `MIN_INSTANT` to `MAX_INSTANT`, half of `i64` each way.
pub const ETERNITY: Interval = Interval {
    start: i64::MIN / 2,
    end: i64::MAX / 2,
};

impl Interval {
    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: Millis) -> bool {
        t >= self.start && t < self.end
    }

    /// Whether the two intervals share any instant.
    pub fn overlaps(&self, o: &Interval) -> bool {
        self.start < o.end && o.start < self.end
    }

    /// Parses `start/end`, `start/period` or `period/end`, as Joda's `new Interval(String,
    /// ISOChronology.getInstanceUTC())` (Druid's `Intervals.of`) does.
    pub fn parse(s: &str) -> Result<Interval, String> {
        let bad = |why: String| format!("Invalid interval [{s}]: {why}");
        let (a, b) = s
            .split_once('/')
            .ok_or_else(|| bad("Format requires a '/' separator".into()))?;
        if a.is_empty() || b.is_empty() {
            return Err(bad("Format invalid: both sides of '/' are needed".into()));
        }
        let is_period = |t: &str| t.starts_with(['P', 'p']);
        let utc = chrono_tz::Tz::UTC;
        let iv = match (is_period(a), is_period(b)) {
            (true, true) => return Err(bad("Interval composed of two durations".into())),
            (true, false) => {
                let end = parse_iso(b).map_err(bad)?;
                let period = Period::parse(a).map_err(bad)?;
                Interval {
                    start: period.add_to(end, -1, utc).map_err(bad)?,
                    end,
                }
            }
            (false, true) => {
                let start = parse_iso(a).map_err(bad)?;
                let period = Period::parse(b).map_err(bad)?;
                Interval {
                    start,
                    end: period.add_to(start, 1, utc).map_err(bad)?,
                }
            }
            (false, false) => Interval {
                start: parse_iso(a).map_err(bad)?,
                end: parse_iso(b).map_err(bad)?,
            },
        };
        if iv.end < iv.start {
            return Err(bad(
                "The end instant must be greater than the start instant".into(),
            ));
        }
        Ok(iv)
    }
}

impl std::fmt::Display for Interval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", iso(self.start), iso(self.end))
    }
}

#[cfg(test)]
mod tests;
