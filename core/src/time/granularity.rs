//! Druid granularities: the named ones (SECOND .. YEAR), NONE, ALL, `period` and `duration`
//! objects, with bucketing that matches Druid's truncation rules.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::civil::{self, MILLIS_PER_HOUR, MILLIS_PER_MINUTE, MILLIS_PER_SECOND};
use super::{format_iso_millis, parse_iso_datetime, Interval, Period, Zone};

/// A Druid granularity, as used for `segmentGranularity` and `queryGranularity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One bucket covering all time.
    All,
    /// Millisecond buckets (no truncation).
    None,
    /// A named granularity such as `HOUR`: a period in UTC.
    Named(NamedGranularity),
    /// `{"type":"period", ...}`: a period in a time zone, optionally aligned to an origin.
    Period(PeriodGranularity),
    /// `{"type":"duration", ...}`: fixed-length buckets aligned to an origin.
    Duration(DurationGranularity),
}

/// The named granularities Druid accepts (case-insensitively) as strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NamedGranularity {
    /// `PT1S`.
    Second,
    /// `PT1M`.
    Minute,
    /// `PT5M`.
    FiveMinute,
    /// `PT10M`.
    TenMinute,
    /// `PT15M`.
    FifteenMinute,
    /// `PT30M`.
    ThirtyMinute,
    /// `PT1H`.
    Hour,
    /// `PT6H`.
    SixHour,
    /// `PT8H` (newer Druid).
    EightHour,
    /// `P1D`.
    Day,
    /// `P1W` (weeks start on Monday).
    Week,
    /// `P1M`.
    Month,
    /// `P3M`.
    Quarter,
    /// `P1Y`.
    Year,
}

impl NamedGranularity {
    /// Every named granularity, finest first.
    pub const ALL: [NamedGranularity; 14] = [
        Self::Second,
        Self::Minute,
        Self::FiveMinute,
        Self::TenMinute,
        Self::FifteenMinute,
        Self::ThirtyMinute,
        Self::Hour,
        Self::SixHour,
        Self::EightHour,
        Self::Day,
        Self::Week,
        Self::Month,
        Self::Quarter,
        Self::Year,
    ];

    /// Druid's upper-case name, e.g. `FIVE_MINUTE`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Second => "SECOND",
            Self::Minute => "MINUTE",
            Self::FiveMinute => "FIVE_MINUTE",
            Self::TenMinute => "TEN_MINUTE",
            Self::FifteenMinute => "FIFTEEN_MINUTE",
            Self::ThirtyMinute => "THIRTY_MINUTE",
            Self::Hour => "HOUR",
            Self::SixHour => "SIX_HOUR",
            Self::EightHour => "EIGHT_HOUR",
            Self::Day => "DAY",
            Self::Week => "WEEK",
            Self::Month => "MONTH",
            Self::Quarter => "QUARTER",
            Self::Year => "YEAR",
        }
    }

    /// The period this name stands for, e.g. `PT5M` for `FIVE_MINUTE`.
    pub fn period(self) -> Period {
        match self {
            Self::Second => Period::seconds(1),
            Self::Minute => Period::minutes(1),
            Self::FiveMinute => Period::minutes(5),
            Self::TenMinute => Period::minutes(10),
            Self::FifteenMinute => Period::minutes(15),
            Self::ThirtyMinute => Period::minutes(30),
            Self::Hour => Period::hours(1),
            Self::SixHour => Period::hours(6),
            Self::EightHour => Period::hours(8),
            Self::Day => Period::days(1),
            Self::Week => Period::weeks(1),
            Self::Month => Period::months(1),
            Self::Quarter => Period::months(3),
            Self::Year => Period::years(1),
        }
    }

    /// Looks a name up case-insensitively (`hour`, `Five_Minute`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The named granularity whose period is `p`, if any.
    pub fn from_period(p: &Period) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.period() == *p)
    }
}

/// A period granularity: buckets of `period` in `zone`, aligned to `origin` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeriodGranularity {
    /// The bucket length; every field is zero or positive and at least one is positive.
    pub period: Period,
    /// The time zone in which calendar fields are truncated (UTC by default).
    pub zone: Zone,
    /// Epoch millis the buckets are aligned to; `None` = calendar truncation.
    pub origin: Option<i64>,
}

/// A duration granularity: buckets of `duration_millis`, aligned to `origin` (epoch by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DurationGranularity {
    /// The bucket length in millis (> 0).
    pub duration_millis: i64,
    /// Epoch millis the buckets are aligned to.
    pub origin: i64,
}

/// Error for a granularity Druid would not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GranularityError(pub String);

const NAMES_HELP: &str =
    "SECOND, MINUTE, FIVE_MINUTE, TEN_MINUTE, FIFTEEN_MINUTE, THIRTY_MINUTE, HOUR, \
SIX_HOUR, EIGHT_HOUR, DAY, WEEK, MONTH, QUARTER, YEAR, NONE, ALL";

impl PeriodGranularity {
    /// A period granularity, refusing periods that are zero or have negative fields.
    pub fn new(period: Period, zone: Zone, origin: Option<i64>) -> Result<Self, GranularityError> {
        let f = [
            period.years,
            period.months,
            period.weeks,
            period.days,
            period.hours,
            period.minutes,
            period.seconds,
            period.millis,
        ];
        if period.is_zero() || f.iter().any(|v| *v < 0) {
            return Err(GranularityError(format!(
                "granularity period {period} must be positive (no negative fields, not zero)"
            )));
        }
        Ok(Self {
            period,
            zone,
            origin,
        })
    }

    fn bucket_start(&self, ts: i64) -> i64 {
        let r = if self.origin.is_none() && self.period.field_count() == 1 {
            self.truncate(ts)
        } else {
            self.aligned_start(ts)
        };
        // Outside the calendar range bucketing degrades to the identity rather than failing.
        r.filter(|s| *s <= ts).unwrap_or(ts)
    }

    fn next_bucket_start(&self, start: i64) -> i64 {
        let r = if self.origin.is_none() && self.period.field_count() == 1 {
            // Truncation may shorten a bucket across a DST change; step until the next start.
            (1..=4).find_map(|k| {
                let c = self.period.checked_mul(k)?.add_to(start, self.zone)?;
                let b = self.truncate(c)?;
                (b > start).then_some(b)
            })
        } else {
            self.aligned_index(start)
                .and_then(|n| self.aligned_at(n.checked_add(1)?))
        };
        r.filter(|e| *e > start)
            .unwrap_or_else(|| start.saturating_add(1))
    }

    /// Druid's calendar truncation for a one-field period in the zone.
    fn truncate(&self, ts: i64) -> Option<i64> {
        let p = &self.period;
        let f = civil::Fields::of(self.zone.local_millis(ts)?);
        let floor = |v: i64, step: i64| v - v.rem_euclid(step.max(1));
        let local = if p.years > 0 {
            civil::midnight(civil::days_from_civil(floor(f.year, p.years), 1, 1)?)?
        } else if p.months > 0 {
            let m0 = floor(i64::from(f.month) - 1, p.months);
            civil::midnight(civil::days_from_civil(
                f.year,
                u32::try_from(m0).ok()? + 1,
                1,
            )?)?
        } else if p.weeks > 0 {
            let monday = f.days - i64::from(civil::weekday(f.days) - 1);
            let w0 = i64::from(civil::iso_week(f.days)) - 1;
            civil::midnight(monday - w0 % p.weeks * 7)?
        } else if p.days > 0 {
            civil::midnight(f.days - (i64::from(f.day) - 1) % p.days)?
        } else {
            let (h, m, s) = (f.hour(), f.minute(), f.second());
            let time = if p.hours > 0 {
                floor(h, p.hours) * MILLIS_PER_HOUR
            } else if p.minutes > 0 {
                h * MILLIS_PER_HOUR + floor(m, p.minutes) * MILLIS_PER_MINUTE
            } else if p.seconds > 0 {
                h * MILLIS_PER_HOUR
                    + m * MILLIS_PER_MINUTE
                    + floor(s, p.seconds) * MILLIS_PER_SECOND
            } else {
                f.millis_of_day - f.milli() + floor(f.milli(), p.millis)
            };
            civil::local_millis(f.days, time)?
        };
        self.zone.instant_of_local_near(local, ts)
    }

    fn origin(&self) -> Option<i64> {
        match self.origin {
            Some(o) => Some(o),
            // Compound periods without an origin align to local midnight of 1970-01-01.
            None => self.zone.instant_of_local(0),
        }
    }

    /// Start of bucket `n`: origin + n × period (negative n goes back).
    fn aligned_at(&self, n: i64) -> Option<i64> {
        let origin = self.origin()?;
        if let Some(len) = self.period.fixed_millis() {
            return origin.checked_add(len.checked_mul(n)?);
        }
        self.period.checked_mul(n)?.add_to(origin, self.zone)
    }

    /// The largest n with aligned_at(n) <= ts.
    fn aligned_index(&self, ts: i64) -> Option<i64> {
        let origin = self.origin()?;
        if let Some(len) = self.period.fixed_millis() {
            return Some((i128::from(ts) - i128::from(origin)).div_euclid(i128::from(len)) as i64);
        }
        let approx = self.period.approx_millis().max(1);
        let mut n = (ts as i128 - origin as i128).div_euclid(approx as i128) as i64;
        for _ in 0..64 {
            if self.aligned_at(n)? > ts {
                n -= 1;
            } else if self.aligned_at(n + 1)? <= ts {
                n += 1;
            } else {
                return Some(n);
            }
        }
        None
    }

    fn aligned_start(&self, ts: i64) -> Option<i64> {
        self.aligned_at(self.aligned_index(ts)?)
    }
}

impl DurationGranularity {
    /// A duration granularity; the duration must be positive.
    pub fn new(duration_millis: i64, origin: i64) -> Result<Self, GranularityError> {
        if duration_millis <= 0 {
            return Err(GranularityError(format!(
                "granularity duration {duration_millis} must be a positive number of milliseconds"
            )));
        }
        Ok(Self {
            duration_millis,
            origin,
        })
    }

    fn bucket_start(&self, ts: i64) -> i64 {
        let off =
            (i128::from(ts) - i128::from(self.origin)).rem_euclid(i128::from(self.duration_millis));
        (i128::from(ts) - off) as i64
    }
}

impl Granularity {
    /// Druid's default `segmentGranularity` (`DAY`).
    pub const DAY: Granularity = Granularity::Named(NamedGranularity::Day);
    /// `HOUR`.
    pub const HOUR: Granularity = Granularity::Named(NamedGranularity::Hour);

    /// Parses a granularity name case-insensitively, including `NONE` and `ALL`.
    pub fn from_name(name: &str) -> Result<Self, GranularityError> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("NONE") {
            return Ok(Granularity::None);
        }
        if n.eq_ignore_ascii_case("ALL") {
            return Ok(Granularity::All);
        }
        NamedGranularity::from_name(n)
            .map(Granularity::Named)
            .ok_or_else(|| {
                GranularityError(format!(
                    "unknown granularity '{name}': expected one of {NAMES_HELP}"
                ))
            })
    }

    /// Whether this is `ALL`.
    pub fn is_all(&self) -> bool {
        matches!(self, Granularity::All)
    }

    /// Whether this is `NONE`.
    pub fn is_none(&self) -> bool {
        matches!(self, Granularity::None)
    }

    /// The named granularity this is equivalent to: a name, or a UTC period without origin
    /// whose period is a named one.
    pub fn as_named(&self) -> Option<NamedGranularity> {
        match self {
            Granularity::Named(n) => Some(*n),
            Granularity::Period(p) if p.origin.is_none() && p.zone.is_utc() => {
                NamedGranularity::from_period(&p.period)
            }
            _ => None,
        }
    }

    /// Start (epoch millis) of the bucket holding `ts`.
    pub fn bucket_start(&self, ts: i64) -> i64 {
        match self {
            Granularity::All => i64::MIN,
            Granularity::None => ts,
            Granularity::Named(n) => named_truncate(*n, ts),
            Granularity::Period(p) => p.bucket_start(ts),
            Granularity::Duration(d) => d.bucket_start(ts),
        }
    }

    /// Start of the bucket after the one starting at `start` (a bucket start), i.e. its end.
    pub fn next_bucket_start(&self, start: i64) -> i64 {
        match self {
            Granularity::All => i64::MAX,
            Granularity::None => start.saturating_add(1),
            Granularity::Named(n) => PeriodGranularity {
                period: n.period(),
                zone: Zone::UTC,
                origin: None,
            }
            .next_bucket_start(start),
            Granularity::Period(p) => p.next_bucket_start(start),
            Granularity::Duration(d) => start.saturating_add(d.duration_millis),
        }
    }

    /// The bucket `[start, end)` holding `ts`.
    pub fn bucket(&self, ts: i64) -> Interval {
        let start = self.bucket_start(ts);
        Interval {
            start,
            end: self.next_bucket_start(start),
        }
    }

    /// Start of the bucket before the one starting at `start`.
    pub fn previous_bucket_start(&self, start: i64) -> i64 {
        if self.is_all() {
            return i64::MIN;
        }
        self.bucket_start(start.saturating_sub(1))
    }

    /// Bucket starts of every bucket overlapping `[from, to)`, in order.
    pub fn bucket_starts(&self, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
        let first = (from < to).then(|| self.bucket_start(from));
        std::iter::successors(first, move |s| {
            let n = self.next_bucket_start(*s);
            (n > *s && n < to).then_some(n)
        })
    }
}

/// Named granularities in UTC; fixed-length ones use plain arithmetic.
fn named_truncate(n: NamedGranularity, ts: i64) -> i64 {
    const MIN: i64 = 60_000;
    let fixed = match n {
        NamedGranularity::Second => 1_000,
        NamedGranularity::Minute => MIN,
        NamedGranularity::FiveMinute => 5 * MIN,
        NamedGranularity::TenMinute => 10 * MIN,
        NamedGranularity::FifteenMinute => 15 * MIN,
        NamedGranularity::ThirtyMinute => 30 * MIN,
        NamedGranularity::Hour => 60 * MIN,
        NamedGranularity::SixHour => 360 * MIN,
        NamedGranularity::EightHour => 480 * MIN,
        NamedGranularity::Day => 1440 * MIN,
        _ => 0,
    };
    if fixed > 0 {
        return ts - ts.rem_euclid(fixed);
    }
    PeriodGranularity {
        period: n.period(),
        zone: Zone::UTC,
        origin: None,
    }
    .bucket_start(ts)
}

impl Default for Granularity {
    fn default() -> Self {
        Granularity::DAY
    }
}

impl FromStr for Granularity {
    type Err = GranularityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Granularity::from_name(s)
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Granularity::All => f.write_str("ALL"),
            Granularity::None => f.write_str("NONE"),
            Granularity::Named(n) => f.write_str(n.name()),
            Granularity::Period(p) => {
                write!(f, "period {} in {}", p.period, p.zone)?;
                if let Some(o) = p.origin {
                    write!(f, " from {}", format_iso_millis(o))?;
                }
                Ok(())
            }
            Granularity::Duration(d) => {
                write!(
                    f,
                    "duration {}ms from {}",
                    d.duration_millis,
                    format_iso_millis(d.origin)
                )
            }
        }
    }
}

impl Serialize for Granularity {
    /// Druid's JSON: a name string for named ones, an object otherwise.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Granularity::Named(n) => s.serialize_str(n.name()),
            Granularity::All | Granularity::None => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("type", if self.is_all() { "all" } else { "none" })?;
                m.end()
            }
            Granularity::Period(p) => {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("type", "period")?;
                m.serialize_entry("period", &p.period)?;
                m.serialize_entry("timeZone", &p.zone.to_string())?;
                m.serialize_entry("origin", &p.origin.map(format_iso_millis))?;
                m.end()
            }
            Granularity::Duration(d) => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("type", "duration")?;
                m.serialize_entry("duration", &d.duration_millis)?;
                m.serialize_entry("origin", &format_iso_millis(d.origin))?;
                m.end()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GranularityObject {
    #[serde(rename = "type")]
    kind: String,
    period: Option<String>,
    time_zone: Option<String>,
    origin: Option<serde_json::Value>,
    duration: Option<serde_json::Value>,
}

fn origin_millis(v: &serde_json::Value) -> Result<Option<i64>, GranularityError> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::Number(n) => n.as_i64().map(Some).ok_or_else(|| {
            GranularityError(format!("origin {n} is not a whole number of epoch millis"))
        }),
        serde_json::Value::String(s) => parse_iso_datetime(s, Zone::UTC).map(Some).map_err(|e| {
            GranularityError(format!("origin '{s}' is not an ISO-8601 date-time: {e}"))
        }),
        other => Err(GranularityError(format!(
            "origin {other} must be an ISO-8601 string or epoch millis"
        ))),
    }
}

impl GranularityObject {
    fn into_granularity(self) -> Result<Granularity, GranularityError> {
        match self.kind.to_ascii_lowercase().as_str() {
            "all" => Ok(Granularity::All),
            "none" => Ok(Granularity::None),
            "period" => {
                let text = self.period.ok_or_else(|| {
                    GranularityError(
                        "a period granularity needs a \"period\" such as \"PT1H\"".into(),
                    )
                })?;
                let period = Period::parse(&text).map_err(|e| GranularityError(e.to_string()))?;
                let zone = match self.time_zone.as_deref() {
                    None => Zone::UTC,
                    Some(z) => z
                        .parse::<Zone>()
                        .map_err(|e| GranularityError(e.to_string()))?,
                };
                let origin = match &self.origin {
                    Some(v) => origin_millis(v)?,
                    None => None,
                };
                PeriodGranularity::new(period, zone, origin).map(Granularity::Period)
            }
            "duration" => {
                let duration = match &self.duration {
                    Some(serde_json::Value::Number(n)) => n.as_i64(),
                    Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| {
                    GranularityError("a duration granularity needs \"duration\" as a whole number of milliseconds".into())
                })?;
                let origin = match &self.origin {
                    Some(v) => origin_millis(v)?.unwrap_or(0),
                    None => 0,
                };
                DurationGranularity::new(duration, origin).map(Granularity::Duration)
            }
            other => {
                // `{"type":"hour"}` is not Druid JSON, but a name in an object is unambiguous.
                Granularity::from_name(other).map_err(|_| {
                    GranularityError(format!(
                        "unknown granularity type '{}': expected period, duration, all or none",
                        self.kind
                    ))
                })
            }
        }
    }
}

impl<'de> Deserialize<'de> for Granularity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Granularity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a granularity name ({NAMES_HELP}) or an object with \"type\": period, duration, all or none")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Granularity, E> {
                Granularity::from_name(v).map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Granularity, A::Error> {
                let obj =
                    GranularityObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                obj.into_granularity().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[path = "granularity_tests.rs"]
mod tests;
