//! The proleptic Gregorian calendar on plain integers, counted as Joda-Time's ISO chronology
//! counts it: year 0 exists and earlier years are negative. It covers every `i64` of epoch
//! millis (years -292275055 to 292278994), far beyond chrono's ±262,000 years.
//!
//! A "local millis" value is a wall-clock date-time written as if it were a UTC instant, the
//! way Joda does its calendar arithmetic; [`super::Zone`] converts between the two.

use std::fmt::Write;

/// Milliseconds in a second.
pub(crate) const MILLIS_PER_SECOND: i64 = 1_000;
/// Milliseconds in a minute.
pub(crate) const MILLIS_PER_MINUTE: i64 = 60 * MILLIS_PER_SECOND;
/// Milliseconds in an hour.
pub(crate) const MILLIS_PER_HOUR: i64 = 60 * MILLIS_PER_MINUTE;
/// Milliseconds in a day (days have no leap seconds here, as in Joda).
pub(crate) const MILLIS_PER_DAY: i64 = 24 * MILLIS_PER_HOUR;
/// Days in 400 Gregorian years, after which the calendar (weekdays included) repeats.
pub(crate) const DAYS_PER_CYCLE: i64 = 146_097;
/// Years beyond this magnitude are outside every `i64` of millis; refusing them early keeps the
/// day arithmetic below free of overflow.
const MAX_YEAR_ABS: i64 = 1_000_000_000;

/// Whether `year` has a February 29th.
pub(crate) fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

/// The number of days in `month` (1..=12) of `year`.
pub(crate) fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to `year-month-day`; `None` for a date that does not exist or a year
/// too large for any instant.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if year.abs() > MAX_YEAR_ABS
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
    {
        return None;
    }
    // Count from March 1st, so the leap day ends the counted year (after H. Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * DAYS_PER_CYCLE + day_of_era - 719_468)
}

/// The date `days` after 1970-01-01, as (year, month 1..=12, day 1..=31).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Every i64 of millis is at most ~1.1e11 days, far from overflow here.
    let z = days + 719_468;
    let era = z.div_euclid(DAYS_PER_CYCLE);
    let day_of_era = z.rem_euclid(DAYS_PER_CYCLE);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// ISO day of week of the day `days` after 1970-01-01: Monday = 1 .. Sunday = 7.
pub(crate) fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    ((days + 3).rem_euclid(7) + 1) as u32
}

/// Days from 1970-01-01 to day `day_of_year` (1-based) of `year`.
pub(crate) fn days_from_ordinal(year: i64, day_of_year: u32) -> Option<i64> {
    let len = if is_leap(year) { 366 } else { 365 };
    if day_of_year == 0 || day_of_year > len {
        return None;
    }
    Some(days_from_civil(year, 1, 1)? + i64::from(day_of_year) - 1)
}

/// The number of ISO weeks (52 or 53) of `week_year`.
pub(crate) fn weeks_in_week_year(week_year: i64) -> Option<u32> {
    // A year has 53 weeks when it starts on a Thursday, or on a Wednesday in a leap year.
    let jan1 = weekday(days_from_civil(week_year, 1, 1)?);
    Some(if jan1 == 4 || (jan1 == 3 && is_leap(week_year)) {
        53
    } else {
        52
    })
}

/// Days from 1970-01-01 to the ISO week date `week_year-Www-day_of_week`.
pub(crate) fn days_from_week_date(week_year: i64, week: u32, day_of_week: u32) -> Option<i64> {
    if week == 0 || week > weeks_in_week_year(week_year)? || !(1..=7).contains(&day_of_week) {
        return None;
    }
    // Week 1 is the week holding January 4th.
    let jan4 = days_from_civil(week_year, 1, 4)?;
    let monday1 = jan4 - i64::from(weekday(jan4) - 1);
    Some(monday1 + 7 * i64::from(week - 1) + i64::from(day_of_week - 1))
}

/// The ISO week (1..=53) of the day `days` after 1970-01-01.
pub(crate) fn iso_week(days: i64) -> u32 {
    // The week belongs to the year of its Thursday.
    let thursday = days - i64::from(weekday(days)) + 4;
    let (year, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(year, 1, 1).unwrap_or(thursday);
    ((thursday - jan1) / 7 + 1) as u32
}

/// The wall-clock fields of a local millis value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields {
    /// Days since 1970-01-01.
    pub days: i64,
    /// Year (0 and negative years exist).
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31.
    pub day: u32,
    /// Milliseconds since midnight.
    pub millis_of_day: i64,
}

impl Fields {
    /// Splits local millis into date and time of day.
    pub fn of(local: i64) -> Self {
        let days = local.div_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Fields {
            days,
            year,
            month,
            day,
            millis_of_day: local.rem_euclid(MILLIS_PER_DAY),
        }
    }

    /// Hour of day, 0..=23.
    pub fn hour(&self) -> i64 {
        self.millis_of_day / MILLIS_PER_HOUR
    }

    /// Minute of hour, 0..=59.
    pub fn minute(&self) -> i64 {
        self.millis_of_day / MILLIS_PER_MINUTE % 60
    }

    /// Second of minute, 0..=59.
    pub fn second(&self) -> i64 {
        self.millis_of_day / MILLIS_PER_SECOND % 60
    }

    /// Millisecond of second, 0..=999.
    pub fn milli(&self) -> i64 {
        self.millis_of_day % MILLIS_PER_SECOND
    }
}

/// Local millis of midnight starting day `days`; `None` past the `i64` range.
pub(crate) fn midnight(days: i64) -> Option<i64> {
    days.checked_mul(MILLIS_PER_DAY)
}

/// Local millis of `days` plus a time of day; `None` past the `i64` range.
pub(crate) fn local_millis(days: i64, millis_of_day: i64) -> Option<i64> {
    i64::try_from(wide_local_millis(days, millis_of_day)).ok()
}

/// Local millis of `days` plus a time of day, wider than `i64`: the first day an `i64` reaches
/// starts before `i64::MIN`, and a wall-clock time past `i64::MAX` can still be an instant
/// once its offset is taken off.
pub(crate) fn wide_local_millis(days: i64, millis_of_day: i64) -> i128 {
    i128::from(days) * i128::from(MILLIS_PER_DAY) + i128::from(millis_of_day)
}

/// `local` moved by `months` calendar months, the day clamped to the month's end
/// (Jan 31 + 1 month = Feb 28 or 29), as Joda's `months().add` does.
pub(crate) fn add_months(local: i64, months: i64) -> Option<i64> {
    let f = Fields::of(local);
    let total = (f.year * 12 + i64::from(f.month) - 1).checked_add(months)?;
    let (year, month) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    if year.abs() > MAX_YEAR_ABS {
        return None;
    }
    let day = f.day.min(days_in_month(year, month));
    local_millis(days_from_civil(year, month, day)?, f.millis_of_day)
}

/// Appends a year the way Joda prints it: at least four digits, `-` before negative years
/// (`0005`, `-0001`, `146140482`).
pub(crate) fn write_year(out: &mut String, year: i64) {
    let sign = if year < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{:04}", year.unsigned_abs());
}

/// Formats local millis as `yyyy-MM-ddTHH:mm:ss.SSS` (no zone suffix).
pub(crate) fn write_local(out: &mut String, local: i64) {
    let f = Fields::of(local);
    write_year(out, f.year);
    let _ = write!(
        out,
        "-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}",
        f.month,
        f.day,
        f.hour(),
        f.minute(),
        f.second(),
        f.milli()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};
    use proptest::prelude::*;

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(0, 1, 1), Some(-719_528));
        assert_eq!(civil_from_days(-719_529), (-1, 12, 31));
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(
            days_from_civil(2024, 2, 29).map(civil_from_days),
            Some((2024, 2, 29))
        );
        assert_eq!(days_from_civil(2024, 13, 1), None);
        assert_eq!(weekday(0), 4);
        // The extremes of i64 millis, as Joda prints them.
        let mut s = String::new();
        write_local(&mut s, i64::MIN);
        assert_eq!(s, "-292275055-05-16T16:47:04.192");
        s.clear();
        write_local(&mut s, i64::MAX);
        assert_eq!(s, "292278994-08-17T07:12:55.807");
    }

    #[test]
    fn week_dates() {
        // 2026 starts on a Thursday, so it has 53 weeks; 2026-W45-1 is 2026-11-02.
        assert_eq!(weeks_in_week_year(2026), Some(53));
        assert_eq!(weeks_in_week_year(2025), Some(52));
        assert_eq!(
            days_from_week_date(2026, 45, 1),
            days_from_civil(2026, 11, 2)
        );
        assert_eq!(
            days_from_week_date(2026, 1, 1),
            days_from_civil(2025, 12, 29)
        );
        assert_eq!(days_from_week_date(2025, 53, 1), None);
        assert_eq!(days_from_week_date(2026, 45, 8), None);
        assert_eq!(days_from_ordinal(2026, 306), days_from_civil(2026, 11, 2));
        assert_eq!(days_from_ordinal(2026, 366), None);
        assert_eq!(days_from_ordinal(2024, 366), days_from_civil(2024, 12, 31));
    }

    #[test]
    fn month_ends_clamp() {
        let jan31 = midnight(days_from_civil(2024, 1, 31).unwrap()).unwrap();
        let feb29 = midnight(days_from_civil(2024, 2, 29).unwrap()).unwrap();
        assert_eq!(add_months(jan31, 1), Some(feb29));
        assert_eq!(
            add_months(feb29, 12),
            midnight(days_from_civil(2025, 2, 28).unwrap())
        );
        assert_eq!(add_months(0, i64::MAX), None);
    }

    proptest! {
        #[test]
        fn civil_round_trips_over_all_days(days in i64::MIN / MILLIS_PER_DAY..=i64::MAX / MILLIS_PER_DAY) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), Some(days));
            prop_assert_eq!(days_from_ordinal(y, (days - days_from_civil(y, 1, 1).unwrap() + 1) as u32), Some(days));
        }

        #[test]
        fn agrees_with_chrono_where_chrono_reaches(days in -90_000_000i64..90_000_000) {
            let date = NaiveDate::from_num_days_from_ce_opt((days + 719_163) as i32).unwrap();
            prop_assert_eq!(civil_from_days(days), (i64::from(date.year()), date.month(), date.day()));
            prop_assert_eq!(weekday(days), date.weekday().number_from_monday());
            let w = date.iso_week();
            prop_assert_eq!(iso_week(days), w.week());
            prop_assert_eq!(days_from_week_date(i64::from(w.year()), w.week(), weekday(days)), Some(days));
        }
    }
}
