//! The calendar of Joda-Time's ISO chronology (proleptic Gregorian, year 0 exists, earlier
//! years negative) on plain `i64` days and millis, so it spans every instant Druid can hold,
//! and time-zone offsets over that whole span.

use chrono::{DateTime, LocalResult, Offset, TimeZone};
use chrono_tz::Tz;

use super::Millis;

/// Millis in a second.
pub const SECOND: i64 = 1_000;
/// Millis in a minute.
pub const MINUTE: i64 = 60 * SECOND;
/// Millis in an hour.
pub const HOUR: i64 = 60 * MINUTE;
/// Millis in a day.
pub const DAY: i64 = 24 * HOUR;

/// Days in 400 Gregorian years.
const CYCLE_DAYS: i64 = 146_097;
/// Days from 0000-01-01 to 1970-01-01.
const EPOCH_DAY_OF_YEAR0: i64 = 719_528;
/// No instant of `i64` millis lies in a year beyond this magnitude.
const YEAR_LIMIT: i64 = 1_000_000_000;

/// Whether `year` has a February 29th.
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1..=12) of `year`.
pub fn month_len(year: i64, month: u32) -> u32 {
    const LEN: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    LEN[(month as usize).clamp(1, 12) - 1] + u32::from(month == 2 && is_leap(year))
}

/// Days from 0000-01-01 to January 1st of `year`.
fn year_start(year: i64) -> i64 {
    let (cycles, y) = (year.div_euclid(400), year.rem_euclid(400));
    // Leap years among years 0..y of a cycle: multiples of 4, less those of 100, plus year 0.
    cycles * CYCLE_DAYS + y * 365 + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400
}

/// Days since 1970-01-01 of a date; `None` when there is no such date.
pub fn days_of(year: i64, month: u32, day: u32) -> Option<i64> {
    if year.abs() > YEAR_LIMIT || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    if day > month_len(year, month) {
        return None;
    }
    let before: u32 = (1..month).map(|m| month_len(year, m)).sum();
    Some(year_start(year) - EPOCH_DAY_OF_YEAR0 + i64::from(before + day - 1))
}

/// Days since 1970-01-01 of day `ordinal` (1-based) of `year`.
pub fn days_of_ordinal(year: i64, ordinal: u32) -> Option<i64> {
    let len = 365 + u32::from(is_leap(year));
    if year.abs() > YEAR_LIMIT || ordinal == 0 || ordinal > len {
        return None;
    }
    Some(year_start(year) - EPOCH_DAY_OF_YEAR0 + i64::from(ordinal) - 1)
}

/// Days since 1970-01-01 of the ISO week date `week_year`-W`week`-`weekday`.
pub fn days_of_week_date(week_year: i64, week: u32, weekday: u32) -> Option<i64> {
    // Week 1 holds the year's first Thursday; its Monday may fall in the year before.
    let jan1 = days_of(week_year, 1, 1)?;
    let week1_monday =
        jan1 - i64::from(weekday_of(jan1)) + 1 + if weekday_of(jan1) > 4 { 7 } else { 0 };
    let next_week1_monday = {
        let next = days_of(week_year + 1, 1, 1)?;
        next - i64::from(weekday_of(next)) + 1 + if weekday_of(next) > 4 { 7 } else { 0 }
    };
    let weeks = ((next_week1_monday - week1_monday) / 7) as u32;
    if week == 0 || week > weeks || !(1..=7).contains(&weekday) {
        return None;
    }
    Some(week1_monday + 7 * i64::from(week - 1) + i64::from(weekday) - 1)
}

/// (year, month, day) of days since 1970-01-01.
pub fn date_of(days: i64) -> (i64, u32, u32) {
    let z = days + EPOCH_DAY_OF_YEAR0;
    // Guess the year from the mean year length, then step to the right one.
    let mut year = (z * 400).div_euclid(CYCLE_DAYS);
    while year_start(year) > z {
        year -= 1;
    }
    while year_start(year + 1) <= z {
        year += 1;
    }
    let mut rest = (z - year_start(year)) as u32;
    let mut month = 1;
    while rest >= month_len(year, month) {
        rest -= month_len(year, month);
        month += 1;
    }
    (year, month, rest + 1)
}

/// ISO day of week of days since 1970-01-01 (a Thursday): Monday 1 .. Sunday 7.
pub fn weekday_of(days: i64) -> u32 {
    ((days + 3).rem_euclid(7) + 1) as u32
}

/// Millis as Joda prints a UTC `DateTime`: `2024-01-01T10:00:00.000Z`, years of at least four
/// digits with a `-` when negative (`-146136543-09-08T08:23:32.096Z`).
pub fn iso(ms: Millis) -> String {
    let (y, m, d) = date_of(ms.div_euclid(DAY));
    let t = ms.rem_euclid(DAY);
    let sign = if y < 0 { "-" } else { "" };
    format!(
        "{sign}{:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        y.unsigned_abs(),
        t / HOUR,
        t / MINUTE % 60,
        t / SECOND % 60,
        t % SECOND
    )
}

/// Before this instant (about 93,000 BCE) every zone is on its first offset, so offsets are
/// read here: chrono reaches only ±262,000 years.
const FAR_PAST: Millis = -3_000_000_000_000_000;
/// chrono-tz's tables stop at the end of 2099, while Joda keeps applying each zone's last
/// yearly rules; later years are read in the year of 2072..=2099 with the same calendar.
const TABLES_END_YEAR: i64 = 2100;

/// Millis to take off `ms` (an instant or a wall-clock time) before asking chrono-tz.
fn table_shift(ms: Millis) -> i64 {
    if ms < FAR_PAST {
        return ms - FAR_PAST;
    }
    let (year, _, _) = date_of(ms.div_euclid(DAY));
    if year < TABLES_END_YEAR {
        return 0;
    }
    // Same leap-ness and weekday of January 1st: the same dates fall on the same weekdays.
    let key = |y: i64| (is_leap(y), weekday_of(days_of(y, 1, 1).unwrap_or(0)));
    (2072..TABLES_END_YEAR)
        .find(|y| key(*y) == key(year))
        .and_then(|y| Some((days_of(year, 1, 1)? - days_of(y, 1, 1)?) * DAY))
        .unwrap_or(0)
}

/// Offset of `tz` from UTC at instant `t`, in millis.
pub fn offset_at(tz: Tz, t: Millis) -> i64 {
    let near = t - table_shift(t);
    DateTime::from_timestamp_millis(near).map_or(0, |d| {
        i64::from(
            tz.offset_from_utc_datetime(&d.naive_utc())
                .fix()
                .local_minus_utc(),
        ) * SECOND
    })
}

/// The wall-clock time of instant `t` in `tz`, as millis counted as if it were UTC.
pub fn to_local(tz: Tz, t: Millis) -> Option<Millis> {
    t.checked_add(offset_at(tz, t))
}

/// The instant of wall-clock time `local` in `tz`, as Joda resolves it.
///
/// In a DST gap the time is read with the offset from before the gap, so it moves forward by
/// the gap (Joda's `getOffsetFromLocal` and `convertLocalToUTC(local, false)`). In an overlap,
/// the offset in force at `hint` when it is one of the two (Joda's field rounding,
/// `convertLocalToUTC(local, false, hint)`), else the earlier instant (Joda's period addition).
pub fn to_utc(tz: Tz, local: Millis, hint: Option<Millis>) -> Option<Millis> {
    let shift = table_shift(local);
    let near = local - shift;
    let naive = DateTime::from_timestamp_millis(near)?.naive_utc();
    let utc = match tz.from_local_datetime(&naive) {
        LocalResult::Single(d) => d.timestamp_millis(),
        LocalResult::Ambiguous(first, second) => {
            let (first, second) = (first.timestamp_millis(), second.timestamp_millis());
            match hint {
                Some(h) if offset_at(tz, h) == near - second => second,
                _ => first,
            }
        }
        LocalResult::None => {
            let guess = offset_at(tz, near);
            near - guess.min(offset_at(tz, near - guess))
        }
    };
    utc.checked_add(shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prints_like_joda() {
        // Joda-Time 2.12's own output for these instants.
        for (ms, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-62_167_219_200_001, "-0001-12-31T23:59:59.999Z"),
            (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
            (253_402_300_800_000, "10000-01-01T00:00:00.000Z"),
            (-377_705_116_800_000, "-9999-01-01T00:00:00.000Z"),
            (i64::MIN / 2, "-146136543-09-08T08:23:32.096Z"),
            (i64::MAX / 2, "146140482-04-24T15:36:27.903Z"),
            (i64::MIN, "-292275055-05-16T16:47:04.192Z"),
            (i64::MAX, "292278994-08-17T07:12:55.807Z"),
        ] {
            assert_eq!(iso(ms), text);
        }
    }

    #[test]
    fn week_and_ordinal_dates() {
        assert_eq!(days_of_week_date(2026, 45, 1), days_of(2026, 11, 2));
        assert_eq!(days_of_week_date(2026, 53, 1), days_of(2026, 12, 28));
        assert_eq!(days_of_week_date(2026, 1, 1), days_of(2025, 12, 29));
        assert_eq!(days_of_week_date(2020, 53, 1), days_of(2020, 12, 28));
        assert_eq!(days_of_week_date(2025, 53, 1), None);
        assert_eq!(days_of_ordinal(2026, 306), days_of(2026, 11, 2));
        assert_eq!(days_of_ordinal(2024, 366), days_of(2024, 12, 31));
        assert_eq!(days_of_ordinal(2026, 366), None);
    }

    /// Joda's instants for wall-clock times in gaps and overlaps.
    #[test]
    fn gaps_move_forward_and_overlaps_follow_the_hint() {
        let local = |y, mo, d, h, mi| days_of(y, mo, d).unwrap() * DAY + h * HOUR + mi * MINUTE;
        // Samoa skipped 2011-12-30: noon that day is read at -10:00, noon on the 31st at +14:00.
        let apia = Tz::Pacific__Apia;
        assert_eq!(
            to_utc(apia, local(2011, 12, 30, 12, 0), None),
            Some(1_325_282_400_000)
        );
        assert_eq!(
            to_utc(apia, local(2011, 12, 30, 0, 0), None),
            Some(1_325_239_200_000)
        );
        assert_eq!(
            to_utc(apia, local(2011, 12, 31, 0, 0), None),
            Some(1_325_239_200_000)
        );
        let la = Tz::America__Los_Angeles;
        assert_eq!(
            to_utc(la, local(2019, 3, 10, 2, 30), None),
            Some(1_552_213_800_000)
        );
        assert_eq!(
            to_utc(la, local(2019, 11, 3, 1, 30), None),
            Some(1_572_769_800_000)
        );
        let berlin = Tz::Europe__Berlin;
        let twice = local(2019, 10, 27, 2, 30);
        assert_eq!(to_utc(berlin, twice, None), Some(1_572_136_200_000));
        assert_eq!(
            to_utc(berlin, twice, Some(1_572_170_400_000)),
            Some(1_572_139_800_000)
        );
        assert_eq!(
            to_utc(berlin, local(2019, 3, 31, 2, 30), None),
            Some(1_553_995_800_000)
        );
    }

    #[test]
    fn offsets_reach_the_ends_of_time() {
        let la = Tz::America__Los_Angeles;
        // Local mean time before the first transition, the last DST rules after 2099 (Joda).
        assert_eq!(offset_at(la, i64::MIN), -28_378_000);
        assert_eq!(offset_at(la, i64::MAX / 2), -25_200_000);
        assert_eq!(
            offset_at(la, days_of(2150, 8, 16).unwrap() * DAY),
            -25_200_000
        );
        assert_eq!(
            offset_at(la, days_of(2150, 1, 16).unwrap() * DAY),
            -28_800_000
        );
    }

    proptest! {
        #[test]
        fn dates_round_trip(days in i64::MIN / DAY..=i64::MAX / DAY) {
            let (y, m, d) = date_of(days);
            prop_assert_eq!(days_of(y, m, d), Some(days));
        }

        #[test]
        fn dates_agree_with_chrono(days in -90_000_000i64..90_000_000) {
            use chrono::Datelike;
            let c = chrono::NaiveDate::from_num_days_from_ce_opt((days + 719_163) as i32).unwrap();
            prop_assert_eq!(date_of(days), (i64::from(c.year()), c.month(), c.day()));
            prop_assert_eq!(weekday_of(days), c.weekday().number_from_monday());
            let w = c.iso_week();
            prop_assert_eq!(days_of_week_date(i64::from(w.year()), w.week(), weekday_of(days)), Some(days));
        }

        #[test]
        fn wall_clock_round_trip(t in i64::MIN / 2..i64::MAX / 2) {
            for tz in [Tz::UTC, Tz::America__Los_Angeles, Tz::Pacific__Apia, Tz::Australia__Lord_Howe] {
                let local = to_local(tz, t).unwrap();
                prop_assert_eq!(to_utc(tz, local, Some(t)), Some(t));
                let any = to_utc(tz, local, None).unwrap();
                prop_assert_eq!(to_local(tz, any), Some(local));
            }
        }
    }
}
