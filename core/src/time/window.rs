//! The window rules of Tranquility's ClusteredBeam: which segment buckets accept events now,
//! which may get new tasks, warming, expiry, and the firehose-id "cycle" of a bucket.
//!
//! With `W` = windowPeriod and `WP` = warmingPeriod, at time `now`:
//! - accept window = `[bucket(now-W).start, bucket(now+W).end)`;
//! - creation window = `[bucket(now-W).start, bucket(now+max(W,WP)).end)`;
//! - so an event whose bucket is `[S,E)` is accepted iff `S <= now+W` and `E > now-W`.
//!
//! With HOUR and PT10M: at 13:05 events from 12:00 to 13:59:59.999 are accepted; at 13:25
//! only 13:00 to 13:59:59.999 (a 12:55 event is dropped). Periods are applied in UTC.

use chrono::{Datelike, Timelike};

use super::{Granularity, GranularityError, Interval, NamedGranularity, Period, Zone};

/// The windowPeriod/warmingPeriod rule for one segment granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    /// The segment granularity (one bucket per task set).
    pub segment_granularity: Granularity,
    /// How far from now (both ways) events are accepted; `tuningConfig.windowPeriod`.
    pub window_period: Period,
    /// How long before its bucket a task is created; `task.warmingPeriod`.
    pub warming_period: Period,
}

impl WindowRule {
    /// The buckets overlapping this interval accept events at `now`.
    pub fn accept_window(&self, now: i64) -> Interval {
        accept_window(&self.segment_granularity, now, &self.window_period)
    }

    /// The buckets overlapping this interval may get new tasks at `now`.
    pub fn creation_window(&self, now: i64) -> Interval {
        creation_window(
            &self.segment_granularity,
            now,
            &self.window_period,
            &self.warming_period,
        )
    }

    /// Whether an event at `ts` is inside the window at `now`.
    pub fn accepts(&self, now: i64, ts: i64) -> bool {
        accepts(&self.segment_granularity, now, &self.window_period, ts)
    }

    /// The extra bucket starts to create tasks for ahead of a batch whose latest event is `latest`.
    pub fn warming_bucket_starts(&self, latest: i64) -> Vec<i64> {
        warming_bucket_starts(&self.segment_granularity, latest, &self.warming_period)
    }

    /// Whether the bucket ending at `bucket_end` has expired at `now`.
    pub fn is_expired(&self, bucket_end: i64, now: i64) -> bool {
        is_expired(bucket_end, now, &self.window_period)
    }
}

fn minus(ts: i64, p: &Period) -> i64 {
    p.subtract_from_utc_saturating(ts)
}

fn plus(ts: i64, p: &Period) -> i64 {
    p.add_to_utc_saturating(ts)
}

/// `[bucket(now-W).start, bucket(now+W).end)`: buckets overlapping it accept events.
pub fn accept_window(segment: &Granularity, now: i64, window_period: &Period) -> Interval {
    Interval {
        start: segment.bucket_start(minus(now, window_period)),
        end: segment.bucket(plus(now, window_period)).end,
    }
}

/// `[bucket(now-W).start, bucket(now+max(W,WP)).end)`: buckets overlapping it may get tasks.
pub fn creation_window(
    segment: &Granularity,
    now: i64,
    window_period: &Period,
    warming_period: &Period,
) -> Interval {
    let ahead = plus(now, window_period).max(plus(now, warming_period));
    Interval {
        start: segment.bucket_start(minus(now, window_period)),
        end: segment.bucket(ahead).end,
    }
}

/// Whether an event at `ts` is accepted at `now`: its bucket `[S,E)` has `S <= now+W` and `E > now-W`.
pub fn accepts(segment: &Granularity, now: i64, window_period: &Period, ts: i64) -> bool {
    let b = segment.bucket(ts);
    b.start <= plus(now, window_period) && b.end > minus(now, window_period)
}

/// Bucket starts after the bucket of `latest`, up to `latest + WP`: created ahead of time.
pub fn warming_bucket_starts(
    segment: &Granularity,
    latest: i64,
    warming_period: &Period,
) -> Vec<i64> {
    if warming_period.is_zero() || segment.is_all() {
        return Vec::new();
    }
    let first = segment.next_bucket_start(segment.bucket_start(latest));
    let last = plus(latest, warming_period);
    let mut out = Vec::new();
    let mut s = first;
    while s <= last && out.len() < 10_000 {
        out.push(s);
        let n = segment.next_bucket_start(s);
        if n <= s {
            break;
        }
        s = n;
    }
    out
}

/// Whether a bucket ending at `bucket_end` has expired: `bucket_end + W < now`.
pub fn is_expired(bucket_end: i64, now: i64, window_period: &Period) -> bool {
    plus(bucket_end, window_period) < now
}

/// The segment granularities Tranquility can create tasks for (those of Druid 0.9.2).
pub const TRANQUILITY_SEGMENT_GRANULARITIES: [NamedGranularity; 11] = [
    NamedGranularity::Second,
    NamedGranularity::Minute,
    NamedGranularity::FiveMinute,
    NamedGranularity::TenMinute,
    NamedGranularity::FifteenMinute,
    NamedGranularity::Hour,
    NamedGranularity::SixHour,
    NamedGranularity::Day,
    NamedGranularity::Week,
    NamedGranularity::Month,
    NamedGranularity::Year,
];

/// Checks that `g` can be a Tranquility `segmentGranularity`, giving its name.
pub fn check_segment_granularity(g: &Granularity) -> Result<NamedGranularity, GranularityError> {
    g.as_named()
        .filter(|n| TRANQUILITY_SEGMENT_GRANULARITIES.contains(n))
        .ok_or_else(|| {
            GranularityError(format!(
                "segmentGranularity {g} is not supported: expected one of SECOND, MINUTE, FIVE_MINUTE, \
                 TEN_MINUTE, FIFTEEN_MINUTE, HOUR, SIX_HOUR, DAY, WEEK, MONTH, YEAR"
            ))
        })
}

/// The firehose-id cycle number of the bucket starting at `bucket_start` (UTC fields).
///
/// HOUR and SIX_HOUR: hour of day; DAY: day of month; WEEK: ISO week of the week-year;
/// MONTH: month; YEAR: year of century; MINUTE to FIFTEEN_MINUTE: `(hour % 3) * 60 + minute`;
/// SECOND: `(minute * 60 + second) % 900`. Names repeat by design, to bound stale znodes.
pub fn firehose_cycle(segment: &Granularity, bucket_start: i64) -> Result<u32, GranularityError> {
    let named = check_segment_granularity(segment)?;
    let t = Zone::UTC
        .to_local(bucket_start)
        .ok_or_else(|| GranularityError(format!("bucket start {bucket_start} is out of range")))?;
    Ok(match named {
        NamedGranularity::Hour | NamedGranularity::SixHour => t.hour(),
        NamedGranularity::Day => t.day(),
        NamedGranularity::Week => t.iso_week().week(),
        NamedGranularity::Month => t.month(),
        NamedGranularity::Year => t.year().rem_euclid(100) as u32,
        NamedGranularity::Second => (t.minute() * 60 + t.second()) % 900,
        _ => (t.hour() % 3) * 60 + t.minute(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_iso_datetime;
    use proptest::prelude::*;

    fn at(s: &str) -> i64 {
        parse_iso_datetime(s, Zone::UTC).unwrap()
    }

    #[test]
    fn reference_example_hour_pt10m() {
        let rule = WindowRule {
            segment_granularity: Granularity::HOUR,
            window_period: Period::minutes(10),
            warming_period: Period::ZERO,
        };
        let n1305 = at("2019-01-01T13:05:00Z");
        assert!(rule.accepts(n1305, at("2019-01-01T12:00:00Z")));
        assert!(rule.accepts(n1305, at("2019-01-01T13:59:59.999Z")));
        assert!(!rule.accepts(n1305, at("2019-01-01T11:59:59.999Z")));
        assert!(!rule.accepts(n1305, at("2019-01-01T14:00:00Z")));
        assert_eq!(
            rule.accept_window(n1305).to_string(),
            "2019-01-01T12:00:00.000Z/2019-01-01T14:00:00.000Z"
        );
        let n1325 = at("2019-01-01T13:25:00Z");
        assert!(!rule.accepts(n1325, at("2019-01-01T12:55:00Z")));
        assert!(rule.accepts(n1325, at("2019-01-01T13:00:00Z")));
        // At 13:55 the next hour opens (its start 14:00 <= 13:55 + 10 min).
        assert!(rule.accepts(at("2019-01-01T13:55:00Z"), at("2019-01-01T14:30:00Z")));
        assert!(!rule.accepts(at("2019-01-01T13:49:59Z"), at("2019-01-01T14:30:00Z")));
    }

    #[test]
    fn warming_extends_creation_only() {
        let rule = WindowRule {
            segment_granularity: Granularity::HOUR,
            window_period: Period::minutes(10),
            warming_period: Period::minutes(30),
        };
        let now = at("2019-01-01T13:40:00Z");
        assert_eq!(rule.creation_window(now).end, at("2019-01-01T15:00:00Z"));
        assert_eq!(rule.accept_window(now).end, at("2019-01-01T14:00:00Z"));
        assert_eq!(
            rule.warming_bucket_starts(now),
            vec![at("2019-01-01T14:00:00Z")]
        );
        assert!(rule
            .warming_bucket_starts(at("2019-01-01T13:20:00Z"))
            .is_empty());
        assert!(rule.is_expired(at("2019-01-01T13:00:00Z"), at("2019-01-01T13:10:01Z")));
        assert!(!rule.is_expired(at("2019-01-01T13:00:00Z"), at("2019-01-01T13:10:00Z")));
    }

    #[test]
    fn cycles_follow_the_reference() {
        let c =
            |g: &str, t: &str| firehose_cycle(&Granularity::from_name(g).unwrap(), at(t)).unwrap();
        assert_eq!(c("HOUR", "2019-01-01T03:00:00Z"), 3);
        assert_eq!(c("SIX_HOUR", "2019-01-01T18:00:00Z"), 18);
        assert_eq!(c("DAY", "2019-01-17T00:00:00Z"), 17);
        assert_eq!(c("WEEK", "2019-01-07T00:00:00Z"), 2);
        assert_eq!(c("MONTH", "2019-11-01T00:00:00Z"), 11);
        assert_eq!(c("YEAR", "2019-01-01T00:00:00Z"), 19);
        assert_eq!(c("MINUTE", "2019-01-01T04:07:00Z"), 67);
        assert_eq!(c("FIFTEEN_MINUTE", "2019-01-01T05:45:00Z"), 165);
        assert_eq!(c("SECOND", "2019-01-01T05:20:07Z"), 307);
        for bad in ["THIRTY_MINUTE", "EIGHT_HOUR", "QUARTER", "NONE", "ALL"] {
            assert!(
                firehose_cycle(&Granularity::from_name(bad).unwrap(), 0).is_err(),
                "{bad}"
            );
        }
        let as_period: Granularity =
            serde_json::from_str(r#"{"type":"period","period":"PT1H"}"#).unwrap();
        assert_eq!(
            check_segment_granularity(&as_period),
            Ok(NamedGranularity::Hour)
        );
        let la: Granularity = serde_json::from_str(
            r#"{"type":"period","period":"PT1H","timeZone":"America/Los_Angeles"}"#,
        )
        .unwrap();
        assert!(check_segment_granularity(&la).is_err());
    }

    proptest! {
        #[test]
        fn net_rule_equals_window_overlap(
            now in 0i64..4_000_000_000_000,
            delta in -20_000_000i64..20_000_000,
            w_min in 0i64..180,
            g in prop::sample::select(vec!["MINUTE", "FIVE_MINUTE", "HOUR", "SIX_HOUR", "DAY", "WEEK", "MONTH"]),
        ) {
            let g = Granularity::from_name(g).unwrap();
            let w = Period::minutes(w_min);
            let ts = now + delta;
            let overlaps = g.bucket(ts).overlaps(&accept_window(&g, now, &w));
            prop_assert_eq!(accepts(&g, now, &w, ts), overlaps);
            // The window is whole buckets, so checking the event alone is the same rule.
            prop_assert_eq!(accepts(&g, now, &w, ts), accept_window(&g, now, &w).contains(ts));
            // Events within W of now are always accepted.
            if delta.abs() <= w_min * 60_000 {
                prop_assert!(accepts(&g, now, &w, ts));
            }
            // The creation window always contains the accept window.
            let c = creation_window(&g, now, &w, &Period::hours(1));
            let a = accept_window(&g, now, &w);
            prop_assert!(c.start <= a.start && c.end >= a.end);
        }
    }
}
