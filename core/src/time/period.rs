//! ISO-8601 periods (`PT10M`, `P1D`, `PT1H30M`, `P1W`) with Joda-Time's parsing and arithmetic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::civil::{self, MILLIS_PER_DAY, MILLIS_PER_HOUR, MILLIS_PER_MINUTE, MILLIS_PER_SECOND};
use super::Zone;

/// An ISO-8601 period: calendar fields (years, months, weeks, days) and time fields.
///
/// Like a Joda `Period` it is a list of fields, not a length: `P1D` is one calendar day (23 or
/// 25 hours across a DST change in a zone), `PT24H` is always 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Period {
    /// Years.
    pub years: i64,
    /// Months.
    pub months: i64,
    /// Weeks.
    pub weeks: i64,
    /// Days.
    pub days: i64,
    /// Hours.
    pub hours: i64,
    /// Minutes.
    pub minutes: i64,
    /// Seconds.
    pub seconds: i64,
    /// Milliseconds.
    pub millis: i64,
}

/// Error for a string that is not an ISO-8601 period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{input}' is not an ISO-8601 period such as PT10M, P1D or PT1H30M: {reason}")]
pub struct PeriodParseError {
    /// The text that failed to parse.
    pub input: String,
    /// What was wrong with it.
    pub reason: String,
}

impl Period {
    /// The zero period (`PT0S`).
    pub const ZERO: Period = Period {
        years: 0,
        months: 0,
        weeks: 0,
        days: 0,
        hours: 0,
        minutes: 0,
        seconds: 0,
        millis: 0,
    };

    /// A period of whole years.
    pub const fn years(n: i64) -> Self {
        Period {
            years: n,
            ..Self::ZERO
        }
    }
    /// A period of whole months.
    pub const fn months(n: i64) -> Self {
        Period {
            months: n,
            ..Self::ZERO
        }
    }
    /// A period of whole weeks.
    pub const fn weeks(n: i64) -> Self {
        Period {
            weeks: n,
            ..Self::ZERO
        }
    }
    /// A period of whole days.
    pub const fn days(n: i64) -> Self {
        Period {
            days: n,
            ..Self::ZERO
        }
    }
    /// A period of whole hours.
    pub const fn hours(n: i64) -> Self {
        Period {
            hours: n,
            ..Self::ZERO
        }
    }
    /// A period of whole minutes.
    pub const fn minutes(n: i64) -> Self {
        Period {
            minutes: n,
            ..Self::ZERO
        }
    }
    /// A period of whole seconds.
    pub const fn seconds(n: i64) -> Self {
        Period {
            seconds: n,
            ..Self::ZERO
        }
    }
    /// A period of milliseconds.
    pub const fn millis(n: i64) -> Self {
        Period {
            millis: n,
            ..Self::ZERO
        }
    }

    /// Parses an ISO-8601 period, case-insensitively like Joda (`PT10m` is accepted).
    pub fn parse(s: &str) -> Result<Self, PeriodParseError> {
        parse(s).map_err(|reason| PeriodParseError {
            input: s.to_string(),
            reason: reason.to_string(),
        })
    }

    /// Whether every field is zero.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// The number of non-zero fields.
    pub fn field_count(&self) -> usize {
        self.fields().iter().filter(|v| **v != 0).count()
    }

    fn fields(&self) -> [i64; 8] {
        [
            self.years,
            self.months,
            self.weeks,
            self.days,
            self.hours,
            self.minutes,
            self.seconds,
            self.millis,
        ]
    }

    /// Whether the period has only time fields (hours and smaller), so its length never varies.
    pub fn is_time_only(&self) -> bool {
        self.years == 0 && self.months == 0 && self.weeks == 0 && self.days == 0
    }

    /// The length in millis if the period has only time fields.
    pub fn fixed_millis(&self) -> Option<i64> {
        if !self.is_time_only() {
            return None;
        }
        self.time_millis()
    }

    fn time_millis(&self) -> Option<i64> {
        self.hours
            .checked_mul(MILLIS_PER_HOUR)?
            .checked_add(self.minutes.checked_mul(MILLIS_PER_MINUTE)?)?
            .checked_add(self.seconds.checked_mul(MILLIS_PER_SECOND)?)?
            .checked_add(self.millis)
    }

    /// Joda's `toStandardDuration`: weeks as 7 days and days as 24 hours; `None` with years or months.
    pub fn standard_millis(&self) -> Option<i64> {
        if self.years != 0 || self.months != 0 {
            return None;
        }
        self.weeks
            .checked_mul(7 * MILLIS_PER_DAY)?
            .checked_add(self.days.checked_mul(MILLIS_PER_DAY)?)?
            .checked_add(self.time_millis()?)
    }

    /// A rough length in millis (a month as 30.436875 days, a year as 365.2425), for estimates.
    pub fn approx_millis(&self) -> i64 {
        let days = self.years as f64 * 365.2425
            + self.months as f64 * 30.436_875
            + (self.weeks * 7 + self.days) as f64;
        (days * MILLIS_PER_DAY as f64) as i64 + self.time_millis().unwrap_or(i64::MAX / 4)
    }

    /// Every field multiplied by `n`; `None` on overflow.
    pub fn checked_mul(&self, n: i64) -> Option<Period> {
        Some(Period {
            years: self.years.checked_mul(n)?,
            months: self.months.checked_mul(n)?,
            weeks: self.weeks.checked_mul(n)?,
            days: self.days.checked_mul(n)?,
            hours: self.hours.checked_mul(n)?,
            minutes: self.minutes.checked_mul(n)?,
            seconds: self.seconds.checked_mul(n)?,
            millis: self.millis.checked_mul(n)?,
        })
    }

    /// The period with every field negated.
    pub fn negated(&self) -> Period {
        Period {
            years: -self.years,
            months: -self.months,
            weeks: -self.weeks,
            days: -self.days,
            hours: -self.hours,
            minutes: -self.minutes,
            seconds: -self.seconds,
            millis: -self.millis,
        }
    }

    /// `ts + self` in `zone`, as Joda's `DateTime.plus(Period)` computes it.
    ///
    /// Fields are added one at a time, largest first, as Joda does. Years, months, weeks and days
    /// move the local wall-clock (a month end is clamped: Jan 31 + P1M = Feb 28/29, and
    /// Feb 29 + P1Y1M = Mar 28), keeping the offset of the instant they start from when it
    /// fits; hours and smaller add elapsed time. `None` when the result leaves the `i64` range.
    pub fn add_to(&self, ts: i64, zone: Zone) -> Option<i64> {
        let mut t = ts;
        if self.years != 0 {
            t = add_local(t, zone, |l| {
                civil::add_months(l, self.years.checked_mul(12)?)
            })?;
        }
        if self.months != 0 {
            t = add_local(t, zone, |l| civil::add_months(l, self.months))?;
        }
        for (n, days) in [(self.weeks, 7), (self.days, 1)] {
            if n != 0 {
                let delta = n.checked_mul(days * MILLIS_PER_DAY)?;
                t = add_local(t, zone, |l| l.checked_add(delta))?;
            }
        }
        t.checked_add(self.time_millis()?)
    }

    /// `ts - self` in `zone` (adds the negated period).
    pub fn subtract_from(&self, ts: i64, zone: Zone) -> Option<i64> {
        self.negated().add_to(ts, zone)
    }

    /// `ts + self` in UTC, saturating at the ends of the `i64` range.
    pub fn add_to_utc_saturating(&self, ts: i64) -> i64 {
        self.add_to(ts, Zone::UTC)
            .unwrap_or(if self.approx_millis() >= 0 {
                i64::MAX
            } else {
                i64::MIN
            })
    }

    /// `ts - self` in UTC, saturating at the ends of the `i64` range.
    pub fn subtract_from_utc_saturating(&self, ts: i64) -> i64 {
        self.negated().add_to_utc_saturating(ts)
    }
}

/// Applies `f` to the wall-clock time of `ts` in `zone` and reads the result back there.
fn add_local(ts: i64, zone: Zone, f: impl FnOnce(i64) -> Option<i64>) -> Option<i64> {
    zone.instant_of_local_near(f(zone.local_millis(ts)?)?, ts)
}

fn parse(s: &str) -> Result<Period, &'static str> {
    let b = s.trim().as_bytes();
    if b.first().map(|c| c.to_ascii_uppercase()) != Some(b'P') {
        return Err("it must start with 'P'");
    }
    let mut p = Period::ZERO;
    let mut i = 1;
    let mut in_time = false;
    let mut any = false;
    // Units in the order ISO requires; `rank` stops repeats and out-of-order fields.
    let mut rank = 0;
    while i < b.len() {
        if b[i].eq_ignore_ascii_case(&b'T') {
            if in_time {
                return Err("'T' appears twice");
            }
            in_time = true;
            i += 1;
            if i == b.len() {
                return Err("no time fields after 'T'");
            }
            continue;
        }
        let start = i;
        if b[i] == b'-' || b[i] == b'+' {
            i += 1;
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = std::str::from_utf8(&b[start..i]).map_err(|_| "not ASCII")?;
        if int_part.is_empty() || int_part == "-" || int_part == "+" {
            return Err("expected a number");
        }
        let value: i64 = int_part.parse().map_err(|_| "a number is too large")?;
        let mut frac_millis = None;
        if i < b.len() && (b[i] == b'.' || b[i] == b',') {
            i += 1;
            let fs = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == fs {
                return Err("expected digits after the decimal point");
            }
            // Keep milliseconds; finer digits are dropped as Joda does.
            let digits = &b[fs..i.min(fs + 3)];
            let mut ms = 0i64;
            for (k, d) in digits.iter().enumerate() {
                ms += i64::from(d - b'0') * [100, 10, 1][k];
            }
            frac_millis = Some(if value < 0 || int_part.starts_with('-') {
                -ms
            } else {
                ms
            });
        }
        let unit = b
            .get(i)
            .map(|c| c.to_ascii_uppercase())
            .ok_or("a number has no unit")?;
        i += 1;
        let (r, field) = match (in_time, unit) {
            (false, b'Y') => (1, &mut p.years),
            (false, b'M') => (2, &mut p.months),
            (false, b'W') => (3, &mut p.weeks),
            (false, b'D') => (4, &mut p.days),
            (true, b'H') => (5, &mut p.hours),
            (true, b'M') => (6, &mut p.minutes),
            (true, b'S') => (7, &mut p.seconds),
            (false, _) => return Err("date units are Y, M, W, D (time units need a 'T' first)"),
            (true, _) => return Err("time units are H, M, S"),
        };
        if r <= rank {
            return Err("fields are repeated or out of order");
        }
        if frac_millis.is_some() && r != 7 {
            return Err("only seconds may have a fraction");
        }
        rank = r;
        *field = value;
        if let Some(ms) = frac_millis {
            p.millis = ms;
        }
        any = true;
    }
    if !any {
        return Err("it has no fields");
    }
    Ok(p)
}

impl FromStr for Period {
    type Err = PeriodParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::parse(s)
    }
}

impl fmt::Display for Period {
    /// Joda's ISO form: `PT10M`, `P1DT2H`, `PT1.500S`, and `PT0S` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("PT0S");
        }
        f.write_str("P")?;
        for (v, u) in [
            (self.years, 'Y'),
            (self.months, 'M'),
            (self.weeks, 'W'),
            (self.days, 'D'),
        ] {
            if v != 0 {
                write!(f, "{v}{u}")?;
            }
        }
        if self.hours != 0 || self.minutes != 0 || self.seconds != 0 || self.millis != 0 {
            f.write_str("T")?;
            for (v, u) in [(self.hours, 'H'), (self.minutes, 'M')] {
                if v != 0 {
                    write!(f, "{v}{u}")?;
                }
            }
            if self.millis == 0 {
                if self.seconds != 0 {
                    write!(f, "{}S", self.seconds)?;
                }
            } else {
                let total = self.seconds as i128 * 1000 + self.millis as i128;
                let sign = if total < 0 { "-" } else { "" };
                let abs = total.abs();
                write!(f, "{sign}{}.{:03}S", abs / 1000, abs % 1000)?;
            }
        }
        Ok(())
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Period::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_common_periods() {
        assert_eq!(Period::parse("PT10M").unwrap(), Period::minutes(10));
        assert_eq!(Period::parse("PT10m").unwrap(), Period::minutes(10));
        assert_eq!(Period::parse("p1d").unwrap(), Period::days(1));
        assert_eq!(Period::parse("P1W").unwrap(), Period::weeks(1));
        assert_eq!(Period::parse("P1M").unwrap(), Period::months(1));
        assert_eq!(
            Period::parse("PT1H30M").unwrap(),
            Period {
                hours: 1,
                minutes: 30,
                ..Period::ZERO
            }
        );
        assert_eq!(
            Period::parse("P1Y2M3W4DT5H6M7.089S").unwrap(),
            Period {
                years: 1,
                months: 2,
                weeks: 3,
                days: 4,
                hours: 5,
                minutes: 6,
                seconds: 7,
                millis: 89
            }
        );
        assert_eq!(Period::parse("PT0M").unwrap(), Period::ZERO);
        assert_eq!(Period::parse("PT-5M").unwrap(), Period::minutes(-5));
    }

    #[test]
    fn rejects_bad_periods_with_reasons() {
        for bad in [
            "", "10M", "P", "PT", "P10", "PT10X", "P10H", "PT1M1H", "P1DT", "PT1.5M", "PT1M1M",
        ] {
            let e = Period::parse(bad).unwrap_err();
            assert_eq!(e.input, bad);
            assert!(e.to_string().contains("ISO-8601 period"), "{e}");
        }
    }

    #[test]
    fn displays_like_joda() {
        assert_eq!(Period::minutes(10).to_string(), "PT10M");
        assert_eq!(Period::ZERO.to_string(), "PT0S");
        assert_eq!(Period::parse("P1DT2H").unwrap().to_string(), "P1DT2H");
        assert_eq!(Period::parse("PT1.5S").unwrap().to_string(), "PT1.500S");
        assert_eq!(Period::parse("PT10m").unwrap().to_string(), "PT10M");
    }

    #[test]
    fn adds_calendar_fields_in_local_time() {
        let la: Zone = "America/Los_Angeles".parse().unwrap();
        // 2019-03-10 is 23 hours long in Los Angeles.
        let midnight = 1_552_204_800_000; // 2019-03-10T00:00-08:00
        assert_eq!(
            Period::days(1).add_to(midnight, la),
            Some(midnight + 23 * MILLIS_PER_HOUR)
        );
        assert_eq!(
            Period::hours(24).add_to(midnight, la),
            Some(midnight + 24 * MILLIS_PER_HOUR)
        );
        // Month ends clamp.
        let jan31 = 1_548_892_800_000; // 2019-01-31T00:00Z
        assert_eq!(
            Period::months(1)
                .add_to(jan31, Zone::UTC)
                .map(super::super::format_iso_millis),
            Some("2019-02-28T00:00:00.000Z".to_string())
        );
        assert_eq!(
            Period::minutes(10).subtract_from(0, Zone::UTC),
            Some(-600_000)
        );
    }

    fn arb_period() -> impl Strategy<Value = Period> {
        (
            0..3i64,
            0..13i64,
            0..3i64,
            0..8i64,
            0..25i64,
            0..61i64,
            0..61i64,
            0..1000i64,
        )
            .prop_map(
                |(years, months, weeks, days, hours, minutes, seconds, millis)| Period {
                    years,
                    months,
                    weeks,
                    days,
                    hours,
                    minutes,
                    seconds,
                    millis,
                },
            )
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(p in arb_period()) {
            prop_assert_eq!(Period::parse(&p.to_string()).unwrap(), p);
        }

        #[test]
        fn time_only_periods_add_their_length(p in arb_period(), ts in -4_000_000_000_000i64..4_000_000_000_000) {
            let p = Period { years: 0, months: 0, weeks: 0, days: 0, ..p };
            let la: Zone = "America/Los_Angeles".parse().unwrap();
            prop_assert_eq!(p.add_to(ts, la), Some(ts + p.fixed_millis().unwrap()));
        }

        #[test]
        fn adding_a_positive_period_moves_forward(p in arb_period(), ts in -4_000_000_000_000i64..4_000_000_000_000) {
            prop_assume!(!p.is_zero());
            let la: Zone = "America/Los_Angeles".parse().unwrap();
            prop_assert!(p.add_to(ts, la).unwrap() > ts);
        }
    }
}
