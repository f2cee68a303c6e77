//! Time: granularities, ISO-8601 periods, interval bucketing and the window rules.
//!
//! Instants are epoch milliseconds (`i64`, UTC) everywhere for speed. Calendar arithmetic
//! follows Joda-Time, which Druid and the original Tranquility use, so buckets, periods and
//! printed times match what Druid computes and prints.

mod civil;
mod clock;
mod granularity;
mod iso;
mod period;
pub mod window;
mod zone;

use std::fmt;
use std::str::FromStr;

pub use clock::{Clock, SystemClock};
pub use granularity::{
    DurationGranularity, Granularity, GranularityError, NamedGranularity, PeriodGranularity,
};
pub use iso::{format_iso_millis, parse_iso_datetime};
pub use period::{Period, PeriodParseError};
pub use zone::{Zone, ZoneParseError};

/// A half-open time interval `[start, end)` in epoch millis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

impl Interval {
    /// The interval `[start, end)`.
    pub fn new(start: i64, end: i64) -> Self {
        Self { start, end }
    }

    /// Whether `ts` lies in `[start, end)`.
    pub fn contains(&self, ts: i64) -> bool {
        self.start <= ts && ts < self.end
    }

    /// Whether the two intervals share at least one instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Length in millis (saturating).
    pub fn duration_millis(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }
}

impl fmt::Display for Interval {
    /// Druid's form: `2019-01-01T03:00:00.000Z/2019-01-01T04:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            format_iso_millis(self.start),
            format_iso_millis(self.end)
        )
    }
}

/// Error for a string that is not an ISO-8601 interval.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not an ISO-8601 interval such as 2019-01-01T03:00:00.000Z/2019-01-01T04:00:00.000Z: {reason}")]
pub struct IntervalParseError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

impl FromStr for Interval {
    type Err = IntervalParseError;

    /// Parses `start/end`, `start/period` or `period/end` (UTC unless an offset is given).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| IntervalParseError {
            input: s.to_string(),
            reason,
        };
        let (a, b) = s
            .split_once('/')
            .ok_or_else(|| err("no '/' between start and end".into()))?;
        let is_period = |t: &str| t.trim_start().starts_with(['P', 'p']);
        let (start, end) = if is_period(a) && is_period(b) {
            return Err(err("it has a period on both sides of '/'".into()));
        } else if is_period(a) {
            let end = parse_iso_datetime(b, Zone::UTC).map_err(err)?;
            let p = Period::parse(a).map_err(|e| err(e.to_string()))?;
            (
                p.subtract_from(end, Zone::UTC)
                    .ok_or_else(|| err("out of range".into()))?,
                end,
            )
        } else if is_period(b) {
            let start = parse_iso_datetime(a, Zone::UTC).map_err(err)?;
            let p = Period::parse(b).map_err(|e| err(e.to_string()))?;
            (
                start,
                p.add_to(start, Zone::UTC)
                    .ok_or_else(|| err("out of range".into()))?,
            )
        } else {
            (
                parse_iso_datetime(a, Zone::UTC).map_err(err)?,
                parse_iso_datetime(b, Zone::UTC).map_err(err)?,
            )
        };
        if end < start {
            return Err(err("the end is before the start".into()));
        }
        Ok(Interval { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_display_and_parse() {
        let i = Interval::new(1_546_311_600_000, 1_546_315_200_000);
        assert_eq!(
            i.to_string(),
            "2019-01-01T03:00:00.000Z/2019-01-01T04:00:00.000Z"
        );
        assert_eq!(i.to_string().parse::<Interval>().unwrap(), i);
        assert_eq!("2019-01-01T03:00:00Z/PT1H".parse::<Interval>().unwrap(), i);
        assert_eq!("PT1H/2019-01-01T04:00Z".parse::<Interval>().unwrap(), i);
        assert!("2019-01-01T04:00Z/2019-01-01T03:00Z"
            .parse::<Interval>()
            .is_err());
        assert!("2019-01-01".parse::<Interval>().is_err());
        assert!("PT1H/PT1H".parse::<Interval>().is_err());
        assert!(i.contains(i.start) && !i.contains(i.end));
        assert!(i.overlaps(&Interval::new(i.end - 1, i.end + 5)));
        assert!(!i.overlaps(&Interval::new(i.end, i.end + 5)));
    }

    /// Druid's `Intervals.ETERNITY`, as Druid serialises it.
    const ETERNITY: &str = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z";

    #[test]
    fn eternity_parses_and_prints_as_druid_does() {
        let i: Interval = ETERNITY.parse().unwrap();
        assert_eq!(i, Interval::new(i64::MIN / 2, i64::MAX / 2));
        assert_eq!(i.to_string(), ETERNITY);
        // Periods at the ends of time, with Joda's answers.
        let after: Interval = "146140482-04-24T15:36:27.903Z/P1D".parse().unwrap();
        assert_eq!(after.end, 4_611_686_018_513_787_903);
        assert_eq!(
            after.to_string(),
            "146140482-04-24T15:36:27.903Z/146140482-04-25T15:36:27.903Z"
        );
        let before: Interval = "P1D/-146136543-09-08T08:23:32.096Z".parse().unwrap();
        assert_eq!(before.start, -4_611_686_018_513_787_904);
        assert!("292278994-08-17T07:12:55.807Z/PT1S"
            .parse::<Interval>()
            .is_err());
    }

    #[test]
    fn periods_add_field_by_field_like_joda() {
        let iv = |s: &str| s.parse::<Interval>().unwrap().to_string();
        assert_eq!(
            iv("2024-02-29/P1Y1M"),
            "2024-02-29T00:00:00.000Z/2025-03-28T00:00:00.000Z"
        );
        assert_eq!(
            iv("P1Y1M/2025-03-29"),
            "2024-02-29T00:00:00.000Z/2025-03-29T00:00:00.000Z"
        );
        assert_eq!(
            iv("P1M1D/2024-03-31"),
            "2024-02-28T00:00:00.000Z/2024-03-31T00:00:00.000Z"
        );
        assert_eq!(
            iv("2026-01-01T00:00+05:00/PT1H"),
            "2025-12-31T19:00:00.000Z/2025-12-31T20:00:00.000Z"
        );
        assert_eq!(
            iv("T10/T11"),
            "1970-01-01T10:00:00.000Z/1970-01-01T11:00:00.000Z"
        );
    }

    proptest::proptest! {
        #[test]
        fn intervals_round_trip_over_eternity(a in i64::MIN / 2..=i64::MAX / 2, b in i64::MIN / 2..=i64::MAX / 2) {
            let i = Interval::new(a.min(b), a.max(b));
            proptest::prop_assert_eq!(i.to_string().parse::<Interval>(), Ok(i));
        }
    }
}
