//! ISO-8601 periods as Joda's `ISOPeriodFormat.standard()` reads them, and their addition as
//! Joda's `Chronology.add(period, instant, scalar)` does it.

use std::fmt;

use chrono_tz::Tz;

use super::calendar::{self, date_of, days_of, month_len, DAY, HOUR, MINUTE, SECOND};
use super::Millis;

/// An ISO-8601 period with Joda's eight `int` fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Period {
    /// Years.
    pub years: i32,
    /// Months.
    pub months: i32,
    /// Weeks.
    pub weeks: i32,
    /// Days.
    pub days: i32,
    /// Hours.
    pub hours: i32,
    /// Minutes.
    pub minutes: i32,
    /// Seconds.
    pub seconds: i32,
    /// Milliseconds (only from a fraction of seconds).
    pub millis: i32,
}

impl Period {
    /// Parses `PnYnMnWnDTnHnMn.nS`.
    ///
    /// As Joda: `P` and the unit letters ignore case, every field is optional but a `T` needs a
    /// time field after it, each number may have a sign and has at most 10 digits and must fit
    /// an `int`, and only seconds may have a fraction (`.` or `,`, first three digits kept).
    /// `P` alone is the zero period.
    pub fn parse(s: &str) -> Result<Period, String> {
        let bad = |why: &str| format!("Invalid period [{s}]: {why}");
        let b = s.as_bytes();
        if !matches!(b.first(), Some(b'P' | b'p')) {
            return Err(bad("it must start with 'P'"));
        }
        let mut p = Period::default();
        let mut pos = 1;
        for (unit, field) in [
            (b'Y', &mut p.years),
            (b'M', &mut p.months),
            (b'W', &mut p.weeks),
            (b'D', &mut p.days),
        ] {
            if let Some((v, _, end)) = field_at(b, pos, unit, false).map_err(|e| bad(&e))? {
                (*field, pos) = (v, end);
            }
        }
        if matches!(b.get(pos), Some(b'T' | b't')) {
            pos += 1;
            let start = pos;
            for (unit, field) in [(b'H', &mut p.hours), (b'M', &mut p.minutes)] {
                if let Some((v, _, end)) = field_at(b, pos, unit, false).map_err(|e| bad(&e))? {
                    (*field, pos) = (v, end);
                }
            }
            if let Some((v, ms, end)) = field_at(b, pos, b'S', true).map_err(|e| bad(&e))? {
                (p.seconds, p.millis, pos) = (v, ms, end);
            }
            if pos == start {
                return Err(bad("'T' must be followed by hours, minutes or seconds"));
            }
        }
        if pos != b.len() {
            return Err(bad(&format!(
                "unexpected '{}' (fields are nY nM nW nD, then T nH nM n.nS, in that order; \
                 only seconds may have a fraction)",
                &s[pos..]
            )));
        }
        Ok(p)
    }

    /// Whether every field is zero.
    pub fn is_zero(&self) -> bool {
        *self == Period::default()
    }

    /// Calendar months (years included), which have no fixed length.
    pub fn total_months(&self) -> i64 {
        i64::from(self.years) * 12 + i64::from(self.months)
    }

    /// Days (weeks included).
    pub fn total_days(&self) -> i64 {
        i64::from(self.weeks) * 7 + i64::from(self.days)
    }

    /// Hours and smaller, in millis.
    pub fn time_millis(&self) -> i64 {
        i64::from(self.hours) * HOUR
            + i64::from(self.minutes) * MINUTE
            + i64::from(self.seconds) * SECOND
            + i64::from(self.millis)
    }

    /// Joda's `toStandardDuration()`: a week is 7 days, a day 24 hours; `None` with years or
    /// months. (Cannot overflow: the fields are `int`s.)
    pub fn fixed_millis(&self) -> Option<i64> {
        (self.years == 0 && self.months == 0).then(|| self.total_days() * DAY + self.time_millis())
    }

    /// `t` plus `scalar` times the period, wall-clock fields in `tz`.
    ///
    /// Field by field, largest first, as Joda does (2024-02-29 + P1Y1M = 2025-03-28): years,
    /// months, weeks and days move the wall-clock time (a month end clamps), a wall-clock time
    /// in a DST gap moves forward by the gap, and hours and smaller add elapsed time. A result
    /// outside the `i64` range is an error naming the period and the instant.
    pub fn add_to(&self, t: Millis, scalar: i64, tz: Tz) -> Result<Millis, String> {
        let overflow = || {
            format!(
                "adding {scalar} x {self} to {} leaves the range of instants",
                calendar::iso(t)
            )
        };
        let mut out = t;
        let in_zone = |out: Millis, f: &dyn Fn(Millis) -> Option<Millis>| {
            if tz == Tz::UTC {
                return f(out);
            }
            calendar::to_utc(tz, f(calendar::to_local(tz, out)?)?, None)
        };
        let years = i64::from(self.years) * scalar;
        if years != 0 {
            out = in_zone(out, &|l| add_months(l, years.checked_mul(12)?)).ok_or_else(overflow)?;
        }
        let months = i64::from(self.months) * scalar;
        if months != 0 {
            out = in_zone(out, &|l| add_months(l, months)).ok_or_else(overflow)?;
        }
        let days = [i64::from(self.weeks) * 7, i64::from(self.days)];
        for d in days.map(|d| d * scalar).into_iter().filter(|d| *d != 0) {
            out = in_zone(out, &|l| l.checked_add(d.checked_mul(DAY)?)).ok_or_else(overflow)?;
        }
        let elapsed = self
            .time_millis()
            .checked_mul(scalar)
            .ok_or_else(overflow)?;
        out.checked_add(elapsed).ok_or_else(overflow)
    }
}

/// Wall-clock millis `local` plus `months` calendar months, the day clamped to the month's end.
fn add_months(local: Millis, months: i64) -> Option<Millis> {
    let (days, time) = (local.div_euclid(DAY), local.rem_euclid(DAY));
    let (y, m, d) = date_of(days);
    let index = (y * 12 + i64::from(m) - 1).checked_add(months)?;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
    let date = days_of(year, month, d.min(month_len(year, month)))?;
    date.checked_mul(DAY)?.checked_add(time)
}

/// One field: `[sign] digits [fraction] unit` at `pos`, or `None` if the field is absent.
/// Returns the value, the millis of a fraction, and where the field ends.
fn field_at(
    b: &[u8],
    pos: usize,
    unit: u8,
    fraction: bool,
) -> Result<Option<(i32, i32, usize)>, String> {
    let mut i = pos;
    let negative = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let whole_start = i;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let whole = &b[whole_start..i];
    let mut frac: &[u8] = &[];
    if fraction && matches!(b.get(i), Some(b'.' | b',')) {
        let f = i + 1;
        i = f;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        frac = &b[f..i];
    }
    if whole.len() + frac.len() == 0 || !b.get(i).is_some_and(|c| c.eq_ignore_ascii_case(&unit)) {
        return Ok(None);
    }
    if whole.len() + frac.len() > 10 {
        return Err(format!(
            "a field has more than 10 digits: {}",
            text(&b[pos..i])
        ));
    }
    let value: i64 = text(whole).parse().unwrap_or(0);
    let value = if negative { -value } else { value };
    let value = i32::try_from(value)
        .map_err(|_| format!("{} does not fit a 32-bit int", text(&b[pos..i])))?;
    let mut millis = frac
        .iter()
        .chain([b'0'; 3].iter())
        .take(3)
        .fold(0, |v, d| v * 10 + i32::from(d - b'0'));
    if negative || value < 0 {
        millis = -millis;
    }
    Ok(Some((value, millis, i + 1)))
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("?")
}

impl fmt::Display for Period {
    /// Joda's `toString()`: `P1Y2M3W4DT5H6M7.008S`, zero fields left out, `PT0S` for zero.
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
            let ms = i64::from(self.seconds) * 1000 + i64::from(self.millis);
            if self.millis != 0 {
                let sign = if ms < 0 { "-" } else { "" };
                write!(f, "{sign}{}.{:03}S", ms.abs() / 1000, ms.abs() % 1000)?;
            } else if self.seconds != 0 {
                write!(f, "{}S", self.seconds)?;
            }
        }
        Ok(())
    }
}
