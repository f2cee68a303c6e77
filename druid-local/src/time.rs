//! Time on Druid's terms: ISO-8601 parsing and printing, intervals, periods and granularities.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// Milliseconds since the epoch, UTC.
pub type Millis = i64;

/// Current wall-clock time in milliseconds.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Prints millis the way Druid does: `2024-01-01T10:00:00.000Z`.
pub fn iso(ms: Millis) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// Parses an ISO-8601 date-time leniently, like Joda's `dateTimeParser`: date only, hours,
/// minutes, seconds, fractions, `T` or space, an optional offset (`Z`, `+01`, `+01:00`,
/// `+0100`). No offset means UTC.
pub fn parse_iso(s: &str) -> Option<Millis> {
    let s = s.trim().trim_matches('"');
    let b = s.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, min: usize, max: usize| -> Option<i64> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let neg = if b.first() == Some(&b'-') {
        i += 1;
        true
    } else {
        false
    };
    let mut year = num(&mut i, 4, 9)?;
    if neg {
        year = -year;
    }
    let (mut month, mut day) = (1, 1);
    if i < b.len() && b[i] == b'-' {
        i += 1;
        month = num(&mut i, 2, 2)?;
        if i < b.len() && b[i] == b'-' {
            i += 1;
            day = num(&mut i, 2, 2)?;
        }
    }
    let (mut h, mut m, mut sec, mut nanos) = (0, 0, 0, 0i64);
    if i < b.len() && (b[i] == b'T' || b[i] == b' ') {
        i += 1;
        h = num(&mut i, 2, 2)?;
        if i < b.len() && b[i] == b':' {
            i += 1;
            m = num(&mut i, 2, 2)?;
            if i < b.len() && b[i] == b':' {
                i += 1;
                sec = num(&mut i, 2, 2)?;
                if i < b.len() && (b[i] == b'.' || b[i] == b',') {
                    i += 1;
                    let start = i;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                    let frac = &s[start..i];
                    if frac.is_empty() {
                        return None;
                    }
                    let digits: String = frac.chars().chain("000000000".chars()).take(9).collect();
                    nanos = digits.parse().ok()?;
                }
            }
        }
    }
    let mut offset_secs = 0i64;
    if i < b.len() {
        match b[i] {
            b'Z' | b'z' => i += 1,
            b'+' | b'-' => {
                let sign = if b[i] == b'-' { -1 } else { 1 };
                i += 1;
                let oh = num(&mut i, 2, 2)?;
                let mut om = 0;
                if i < b.len() && b[i] == b':' {
                    i += 1;
                }
                if i < b.len() && b[i].is_ascii_digit() {
                    om = num(&mut i, 2, 2)?;
                }
                offset_secs = sign * (oh * 3600 + om * 60);
            }
            _ => return None,
        }
    }
    if i != b.len() {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month as u32, day as u32)?;
    let dt = date.and_hms_nano_opt(h as u32, m as u32, sec as u32, nanos as u32)?;
    Some(dt.and_utc().timestamp_millis() - offset_secs * 1000)
}

/// A half-open time interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    /// Inclusive start.
    pub start: Millis,
    /// Exclusive end.
    pub end: Millis,
}

impl Interval {
    /// Whether `t` lies in `[start, end)`.
    pub fn contains(&self, t: Millis) -> bool {
        t >= self.start && t < self.end
    }
    /// Whether the two intervals share any instant.
    pub fn overlaps(&self, o: &Interval) -> bool {
        self.start < o.end && o.start < self.end
    }
    /// Parses `start/end`, `start/period` or `period/end`.
    pub fn parse(s: &str) -> Result<Interval, String> {
        let bad = || format!("Invalid interval [{s}]: expected <start>/<end> in ISO-8601");
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let iv = if a.starts_with('P') {
            let end = parse_iso(b).ok_or_else(bad)?;
            Interval {
                start: Period::parse(a)?.add_to(end, -1),
                end,
            }
        } else if b.starts_with('P') {
            let start = parse_iso(a).ok_or_else(bad)?;
            Interval {
                start,
                end: Period::parse(b)?.add_to(start, 1),
            }
        } else {
            Interval {
                start: parse_iso(a).ok_or_else(bad)?,
                end: parse_iso(b).ok_or_else(bad)?,
            }
        };
        if iv.end < iv.start {
            return Err(format!(
                "Invalid interval [{s}]: the end is before the start"
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

/// An ISO-8601 period split into calendar months and a fixed number of milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Years times 12 plus months.
    pub months: i64,
    /// Days (as 24 h in UTC), hours, minutes, seconds, in milliseconds (weeks count as 7 days).
    pub days: i64,
    /// The sub-day part in milliseconds.
    pub millis: i64,
}

impl Period {
    /// Parses `P1Y2M3W4DT5H6M7.5S` style strings.
    pub fn parse(s: &str) -> Result<Period, String> {
        let bad = || format!("Invalid period [{s}]");
        let rest = s.strip_prefix('P').ok_or_else(bad)?;
        let (mut months, mut days, mut millis) = (0i64, 0i64, 0i64);
        let mut in_time = false;
        let mut num = String::new();
        let mut any = false;
        for c in rest.chars() {
            match c {
                'T' if !in_time && num.is_empty() => in_time = true,
                '0'..='9' | '.' => num.push(c),
                _ => {
                    let v: f64 = num.parse().map_err(|_| bad())?;
                    num.clear();
                    any = true;
                    let whole = v as i64;
                    match (in_time, c) {
                        (false, 'Y') => months += 12 * whole,
                        (false, 'M') => months += whole,
                        (false, 'W') => days += 7 * whole,
                        (false, 'D') => days += whole,
                        (true, 'H') => millis += whole * 3_600_000,
                        (true, 'M') => millis += whole * 60_000,
                        (true, 'S') => millis += (v * 1000.0).round() as i64,
                        _ => return Err(bad()),
                    }
                }
            }
        }
        if !num.is_empty() || !any {
            return Err(bad());
        }
        Ok(Period {
            months,
            days,
            millis,
        })
    }

    /// Whether the period has a fixed length in milliseconds (no months).
    pub fn fixed_millis(&self) -> Option<i64> {
        (self.months == 0).then_some(self.days * 86_400_000 + self.millis)
    }

    /// Adds the period `n` times to `t` in UTC.
    pub fn add_to(&self, t: Millis, n: i64) -> Millis {
        let mut dt = match Utc.timestamp_millis_opt(t).single() {
            Some(d) => d,
            None => return t,
        };
        if self.months != 0 {
            dt = add_months(dt, self.months * n);
        }
        dt.timestamp_millis() + n * (self.days * 86_400_000 + self.millis)
    }
}

fn add_months<T: TimeZone>(dt: DateTime<T>, months: i64) -> DateTime<T> {
    let total = dt.year() as i64 * 12 + dt.month0() as i64 + months;
    let (y, m0) = (total.div_euclid(12) as i32, total.rem_euclid(12) as u32);
    let mut day = dt.day();
    loop {
        if let Some(d) = dt
            .with_day(1)
            .and_then(|d| d.with_year(y))
            .and_then(|d| d.with_month(m0 + 1))
            .and_then(|d| d.with_day(day))
        {
            return d;
        }
        if day <= 28 {
            return dt;
        }
        day -= 1;
    }
}

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
                match ty.to_ascii_lowercase().as_str() {
                    "all" => Ok(Granularity::All),
                    "none" => Ok(Granularity::None),
                    "duration" => {
                        let millis = o.get("duration").and_then(Value::as_i64).filter(|d| *d > 0).ok_or_else(|| format!("Invalid duration granularity {v}: `duration` must be a positive number of milliseconds"))?;
                        let origin = match o.get("origin") {
                            None | Some(Value::Null) => 0,
                            Some(x) => parse_instant(x)
                                .ok_or_else(|| format!("Invalid granularity origin {x}"))?,
                        };
                        Ok(Granularity::Duration { millis, origin })
                    }
                    "period" => {
                        let p = o.get("period").and_then(Value::as_str).ok_or_else(|| {
                            format!("Invalid period granularity {v}: `period` is required")
                        })?;
                        let period = Period::parse(p)?;
                        let tz = match o.get("timeZone").and_then(Value::as_str) {
                            None => Tz::UTC,
                            Some(z) => z
                                .parse::<Tz>()
                                .map_err(|_| format!("Invalid time zone [{z}]"))?,
                        };
                        let origin = match o.get("origin") {
                            None | Some(Value::Null) => None,
                            Some(x) => Some(
                                parse_instant(x)
                                    .ok_or_else(|| format!("Invalid granularity origin {x}"))?,
                            ),
                        };
                        Ok(Granularity::Period { period, tz, origin })
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
            Granularity::All => i64::MIN / 2,
            Granularity::Duration { millis, origin } => t - (t - origin).rem_euclid(*millis),
            Granularity::Period { period, tz, origin } => period_bucket(period, tz, *origin, t),
        }
    }

    /// Start of the bucket after the one starting at `start`.
    pub fn next(&self, start: Millis) -> Millis {
        match self {
            Granularity::None => start + 1,
            Granularity::All => i64::MAX / 2,
            Granularity::Duration { millis, .. } => start + millis,
            Granularity::Period { period, tz, .. } => {
                if *tz == Tz::UTC {
                    period.add_to(start, 1)
                } else {
                    let local = tz
                        .timestamp_millis_opt(start)
                        .single()
                        .map(|d| d.naive_local());
                    match local {
                        Some(l) => local_to_utc(tz, add_period_naive(l, period)),
                        None => period.add_to(start, 1),
                    }
                }
            }
        }
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

fn add_period_naive(l: NaiveDateTime, p: &Period) -> NaiveDateTime {
    let mut l = l;
    if p.months != 0 {
        l = add_months(l.and_utc(), p.months).naive_utc();
    }
    l + Duration::days(p.days) + Duration::milliseconds(p.millis)
}

fn local_to_utc(tz: &Tz, l: NaiveDateTime) -> Millis {
    match tz.from_local_datetime(&l).earliest() {
        Some(d) => d.timestamp_millis(),
        // In a DST gap: the local time does not exist, take the instant one hour later.
        None => tz
            .from_local_datetime(&(l + Duration::hours(1)))
            .earliest()
            .map(|d| d.timestamp_millis())
            .unwrap_or(0),
    }
}

fn period_bucket(p: &Period, tz: &Tz, origin: Option<Millis>, t: Millis) -> Millis {
    // Fast path: UTC periods that divide a day align with the epoch (a UTC midnight).
    if *tz == Tz::UTC && origin.is_none() {
        if let Some(len) = p.fixed_millis().filter(|l| *l > 0 && 86_400_000 % *l == 0) {
            return t - t.rem_euclid(len);
        }
    }
    if let (Some(o), Some(len)) = (origin, p.fixed_millis()) {
        if len > 0 {
            return t - (t - o).rem_euclid(len);
        }
    }
    let local = match tz.timestamp_millis_opt(t).single() {
        Some(d) => d.naive_local(),
        None => return t,
    };
    let truncated = truncate_local(p, local);
    if *tz == Tz::UTC {
        truncated.and_utc().timestamp_millis()
    } else {
        local_to_utc(tz, truncated)
    }
}

/// Truncates calendar fields for simple single-field periods, the way Druid's named
/// granularities do (PT5M: minutes to a multiple of 5 within the hour, P1W: Monday, ...).
fn truncate_local(p: &Period, l: NaiveDateTime) -> NaiveDateTime {
    let date = l.date();
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or(l);
    if p.months > 0 {
        let m0 = date.month0() as i64;
        let (y, m) = if p.months % 12 == 0 {
            let years = p.months / 12;
            (
                date.year() as i64 - (date.year() as i64).rem_euclid(years),
                0,
            )
        } else {
            (date.year() as i64, m0 - m0 % p.months)
        };
        return NaiveDate::from_ymd_opt(y as i32, m as u32 + 1, 1)
            .map(midnight)
            .unwrap_or(l);
    }
    if p.days > 0 && p.millis == 0 {
        if p.days % 7 == 0 {
            let back = date.weekday().num_days_from_monday() as i64;
            return midnight(date - Duration::days(back));
        }
        if p.days == 1 {
            return midnight(date);
        }
        let epoch_days = (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(date)).num_days();
        return midnight(date - Duration::days(epoch_days.rem_euclid(p.days)));
    }
    let ms_of_day =
        l.num_seconds_from_midnight() as i64 * 1000 + (l.nanosecond() / 1_000_000) as i64;
    let len = p.days * 86_400_000 + p.millis;
    if len <= 0 {
        return l;
    }
    if len <= 86_400_000 && 86_400_000 % len == 0 {
        return midnight(date) + Duration::milliseconds(ms_of_day - ms_of_day % len);
    }
    let t = l.and_utc().timestamp_millis();
    chrono::DateTime::from_timestamp_millis(t - t.rem_euclid(len))
        .map(|d| d.naive_utc())
        .unwrap_or(l)
}

/// Parses a JSON instant: a number of epoch millis or an ISO string.
pub fn parse_instant(v: &Value) -> Option<Millis> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_iso(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_and_variants() {
        let t = parse_iso("2024-01-01T10:00:00.000Z").unwrap();
        assert_eq!(iso(t), "2024-01-01T10:00:00.000Z");
        assert_eq!(parse_iso("2024-01-01T11:00:00+01:00"), Some(t));
        assert_eq!(parse_iso("2024-01-01 10:00"), Some(t));
        assert_eq!(parse_iso("2024-01-01T10"), Some(t));
        assert!(parse_iso("2024-13-01").is_none());
        assert!(parse_iso("yesterday").is_none());
    }

    #[test]
    fn named_buckets() {
        let t = parse_iso("2024-01-03T10:17:42.123Z").unwrap();
        let b = |g: &str| iso(Granularity::named(g).unwrap().bucket_start(t));
        assert_eq!(b("second"), "2024-01-03T10:17:42.000Z");
        assert_eq!(b("FIFTEEN_MINUTE"), "2024-01-03T10:15:00.000Z");
        assert_eq!(b("hour"), "2024-01-03T10:00:00.000Z");
        assert_eq!(b("EIGHT_HOUR"), "2024-01-03T08:00:00.000Z");
        assert_eq!(b("day"), "2024-01-03T00:00:00.000Z");
        assert_eq!(b("week"), "2024-01-01T00:00:00.000Z");
        assert_eq!(b("month"), "2024-01-01T00:00:00.000Z");
        assert_eq!(b("quarter"), "2024-01-01T00:00:00.000Z");
        let h = Granularity::named("hour").unwrap().bucket(t);
        assert_eq!(
            h.to_string(),
            "2024-01-03T10:00:00.000Z/2024-01-03T11:00:00.000Z"
        );
        assert!(Granularity::named("fortnight").is_err());
    }

    #[test]
    fn zoned_day() {
        let g = Granularity::from_json(
            &serde_json::json!({"type":"period","period":"P1D","timeZone":"America/Los_Angeles"}),
        )
        .unwrap();
        let t = parse_iso("2024-03-10T12:00:00Z").unwrap();
        assert_eq!(iso(g.bucket_start(t)), "2024-03-10T08:00:00.000Z");
        assert_eq!(iso(g.next(g.bucket_start(t))), "2024-03-11T07:00:00.000Z");
    }

    #[test]
    fn intervals() {
        let i = Interval::parse("2024-01-01/PT1H").unwrap();
        assert_eq!(
            i.to_string(),
            "2024-01-01T00:00:00.000Z/2024-01-01T01:00:00.000Z"
        );
        assert!(Interval::parse("nonsense").is_err());
    }
}
