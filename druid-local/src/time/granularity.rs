//! Druid granularities (names, `period` and `duration` objects, `all`, `none`) and bucketing.

use chrono_tz::Tz;
use serde_json::Value;

use super::calendar::{self, date_of, days_of, weekday_of, DAY};
use super::{parse_instant, Interval, Millis, Period, ETERNITY};

/// A Druid granularity, used for segment and query bucketing.
#[derive(Debug, Clone, PartialEq)]
pub enum Granularity {
    /// One bucket per millisecond.
    None,
    /// A single bucket covering everything.
    All,
    /// Fixed-length buckets aligned on `origin`.
    Duration {
        /// Bucket length in milliseconds.
        millis: i64,
        /// Alignment origin.
        origin: Millis,
    },
    /// Calendar buckets in a time zone, optionally aligned on an origin.
    Period {
        /// The bucket length.
        period: Period,
        /// Zone in which calendar fields are truncated.
        tz: Tz,
        /// Explicit alignment origin.
        origin: Option<Millis>,
    },
}

impl Granularity {
    /// Parses a granularity name (case-insensitive) or object.
    pub fn from_json(v: &Value) -> Result<Granularity, String> {
        match v {
            Value::String(s) => Self::named(s),
            Value::Object(o) => {
                let ty = o.get("type").and_then(Value::as_str).unwrap_or("");
                let origin = |what: &str| match o.get("origin") {
                    None | Some(Value::Null) => Ok(None),
                    Some(x) => parse_instant(x)
                        .map(Some)
                        .ok_or_else(|| format!("Invalid {what} granularity origin {x}")),
                };
                match ty.to_ascii_lowercase().as_str() {
                    "all" => Ok(Granularity::All),
                    "none" => Ok(Granularity::None),
                    "duration" => {
                        let millis = o.get("duration").and_then(Value::as_i64).filter(|d| *d > 0).ok_or_else(|| format!("Invalid duration granularity {v}: `duration` must be a positive number of milliseconds"))?;
                        Ok(Granularity::Duration {
                            millis,
                            origin: origin("duration")?.unwrap_or(0),
                        })
                    }
                    "period" => {
                        let p = o.get("period").and_then(Value::as_str).ok_or_else(|| {
                            format!("Invalid period granularity {v}: `period` is required")
                        })?;
                        let period = Period::parse(p)?;
                        if period.is_zero() {
                            return Err(format!(
                                "Invalid period granularity {v}: zero period is not acceptable in PeriodGranularity!"
                            ));
                        }
                        let tz = match o.get("timeZone").and_then(Value::as_str) {
                            None => Tz::UTC,
                            Some(z) => z
                                .parse::<Tz>()
                                .map_err(|_| format!("Invalid time zone [{z}]"))?,
                        };
                        Ok(Granularity::Period {
                            period,
                            tz,
                            origin: origin("period")?,
                        })
                    }
                    _ => Err(format!("Unknown granularity type [{ty}] in {v}")),
                }
            }
            _ => Err(format!("Invalid granularity {v}")),
        }
    }

    /// Parses a granularity name such as `hour` or `FIFTEEN_MINUTE`.
    pub fn named(s: &str) -> Result<Granularity, String> {
        let p = match s.to_ascii_uppercase().as_str() {
            "ALL" => return Ok(Granularity::All),
            "NONE" => return Ok(Granularity::None),
            "SECOND" => "PT1S",
            "MINUTE" => "PT1M",
            "FIVE_MINUTE" => "PT5M",
            "TEN_MINUTE" => "PT10M",
            "FIFTEEN_MINUTE" => "PT15M",
            "THIRTY_MINUTE" => "PT30M",
            "HOUR" => "PT1H",
            "SIX_HOUR" => "PT6H",
            "EIGHT_HOUR" => "PT8H",
            "DAY" => "P1D",
            "WEEK" => "P1W",
            "MONTH" => "P1M",
            "QUARTER" => "P3M",
            "YEAR" => "P1Y",
            _ => return Err(format!("Unknown granularity [{s}]: expected one of SECOND, MINUTE, FIVE_MINUTE, TEN_MINUTE, FIFTEEN_MINUTE, THIRTY_MINUTE, HOUR, SIX_HOUR, EIGHT_HOUR, DAY, WEEK, MONTH, QUARTER, YEAR, ALL, NONE")),
        };
        Ok(Granularity::Period {
            period: Period::parse(p)?,
            tz: Tz::UTC,
            origin: None,
        })
    }

    /// Start of the bucket holding `t`.
    pub fn bucket_start(&self, t: Millis) -> Millis {
        match self {
            Granularity::None => t,
            Granularity::All => ETERNITY.start,
            Granularity::Duration { millis, origin } => floor_from(t, *origin, *millis),
            Granularity::Period { period, tz, origin } => period_bucket(period, *tz, *origin, t),
        }
    }

    /// Start of the bucket after the one starting at `start`: Druid's `increment`, the period
    /// added in the zone. Always later than `start`, saturating at the end of `i64`.
    pub fn next(&self, start: Millis) -> Millis {
        let next = match self {
            Granularity::None => start.saturating_add(1),
            Granularity::All => ETERNITY.end,
            Granularity::Duration { millis, .. } => start.saturating_add(*millis),
            Granularity::Period { period, tz, .. } => {
                period.add_to(start, 1, *tz).unwrap_or(Millis::MAX)
            }
        };
        next.max(start.saturating_add(1))
    }

    /// The bucket interval holding `t`.
    pub fn bucket(&self, t: Millis) -> Interval {
        let start = self.bucket_start(t);
        Interval {
            start,
            end: self.next(start),
        }
    }
}

/// The latest `origin + k * len` at or before `t` (wide, so no origin overflows).
fn floor_from(t: Millis, origin: Millis, len: i64) -> Millis {
    let off = (i128::from(t) - i128::from(origin)).rem_euclid(i128::from(len));
    (i128::from(t) - off) as Millis
}

fn period_bucket(p: &Period, tz: Tz, origin: Option<Millis>, t: Millis) -> Millis {
    let fixed = p.fixed_millis().filter(|l| *l > 0);
    // UTC periods that divide a day align with the epoch (a UTC midnight).
    if tz == Tz::UTC && origin.is_none() {
        if let Some(len) = fixed.filter(|l| DAY % *l == 0) {
            return floor_from(t, 0, len);
        }
    }
    if let (Some(o), Some(len)) = (origin, fixed) {
        return floor_from(t, o, len);
    }
    // Truncate the wall-clock fields, then read the result back with the offset of `t` where
    // it fits, as Joda's `roundFloor` does; outside the range of instants, `t` itself.
    calendar::to_local(tz, t)
        .and_then(|local| truncate_local(p, local))
        .and_then(|local| calendar::to_utc(tz, local, Some(t)))
        .filter(|start| *start <= t)
        .unwrap_or(t)
}

/// Truncates wall-clock millis for simple periods, the way Druid's named granularities do
/// (PT5M: minutes to a multiple of 5 within the hour, P1W: Monday, P1M: the 1st, ...).
fn truncate_local(p: &Period, local: Millis) -> Option<Millis> {
    let (days, time) = (local.div_euclid(DAY), local.rem_euclid(DAY));
    let months = p.total_months();
    if months > 0 {
        let (y, m, _) = date_of(days);
        let (y, m) = if months % 12 == 0 {
            (y - y.rem_euclid(months / 12), 1)
        } else {
            let m0 = i64::from(m) - 1;
            (y, (m0 - m0 % months) as u32 + 1)
        };
        return days_of(y, m, 1)?.checked_mul(DAY);
    }
    let period_days = p.total_days();
    let period_time = p.time_millis();
    if period_days > 0 && period_time == 0 {
        let start = if period_days % 7 == 0 {
            days - i64::from(weekday_of(days)) + 1
        } else {
            days - days.rem_euclid(period_days)
        };
        return start.checked_mul(DAY);
    }
    let len = period_days * DAY + period_time;
    if len <= 0 {
        return Some(local);
    }
    if len <= DAY && DAY % len == 0 {
        return Some(local - time % len);
    }
    Some(floor_from(local, 0, len))
}
