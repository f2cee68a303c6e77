//! ISO-8601 date-times: Joda-style UTC formatting, and a parser accepting what Joda's
//! `ISODateTimeFormat.dateTimeParser()` accepts (which is what Druid reads intervals, origins and
//! `iso` timestamps with) plus the leniencies of Druid's `auto` timestamp format, over every
//! instant an `i64` of millis holds.

use super::civil::{self, MILLIS_PER_HOUR, MILLIS_PER_MINUTE, MILLIS_PER_SECOND};
use super::Zone;

/// Formats epoch millis as Joda prints a UTC `DateTime`: `2019-01-01T03:00:00.000Z`.
///
/// Every `i64` prints, as in Joda: years have at least four digits and a `-` when negative
/// (`-146136543-09-08T08:23:32.096Z` is `i64::MIN / 2`).
pub fn format_iso_millis(ts: i64) -> String {
    let mut out = String::with_capacity(24);
    civil::write_local(&mut out, ts);
    out.push('Z');
    out
}

/// The smallest and largest years an `i64` of millis reaches, for error messages.
const YEAR_RANGE: &str = "years -292275055 to 292278994";

/// Parses an ISO-8601 date-time into epoch millis.
///
/// Accepts Joda's `dateTimeParser` forms: a date `yyyy`, `yyyy-MM`, `yyyy-MM-dd`, an ordinal
/// date `yyyy-DDD` or a week date `xxxx-Www[-e]` (years of 1 to 9 digits, signed), then
/// optionally `T` and a time `HH`, `HH:mm`, `HH:mm:ss`, with a fraction (`.` or `,`) on its last
/// field, then optionally `Z` or an offset `±HH`, `±HHmm`, `±HH:mm` (seconds and millis allowed);
/// or `T` and a time alone (on 1970-01-01). Also, as Druid's `auto` format and Tranquility do:
/// a space instead of `T`, an offset right after a date, surrounding spaces, and a trailing
/// space and zone id (`2024-01-01 10:00:00 America/New_York`). Without an offset the time is
/// local to `default_zone`; a time skipped by a DST gap moves forward by the gap. The error
/// says which part did not parse.
pub fn parse_iso_datetime(s: &str, default_zone: Zone) -> Result<i64, String> {
    let s = s.trim();
    let (body, zone_id) = match s.rsplit_once(' ') {
        // A trailing zone id only counts when a date and a time precede it.
        Some((head, tail)) if head.contains(':') || head.contains('T') => {
            match tail.parse::<Zone>() {
                Ok(z) => (head.trim_end(), Some(z)),
                Err(_) => (s, None),
            }
        }
        _ => (s, None),
    };
    let mut p = Cursor {
        s: body.as_bytes(),
        i: 0,
    };

    let time_only = matches!(p.peek(), Some(b'T' | b't'));
    let days = if time_only { 0 } else { date(&mut p)? };
    let separated = p.eat_ci(b'T') || (!time_only && p.eat(b' '));
    let has_time = separated && p.peek().is_some_and(|b| b.is_ascii_digit());
    let millis_of_day = if has_time { time_of_day(&mut p)? } else { 0 };
    if time_only && !has_time {
        return Err("expected hours (HH) after 'T'".into());
    }

    let rest = &body[p.i..];
    let offset = if rest.is_empty() {
        None
    } else {
        match offset_millis(rest) {
            Some(o) => Some(o),
            None if separated && !has_time => {
                return Err(format!(
                    "expected hours (HH) after the date, found '{rest}'"
                ));
            }
            None => return Err(format!("unexpected text '{rest}' after the date-time")),
        }
    };
    let out_of_range = || format!("'{s}' is out of range: instants reach {YEAR_RANGE}");
    let local = civil::wide_local_millis(days, millis_of_day);
    match offset {
        Some(o) => i64::try_from(local - i128::from(o)).ok(),
        None => i64::try_from(local)
            .ok()
            .and_then(|l| zone_id.unwrap_or(default_zone).instant_of_local(l)),
    }
    .ok_or_else(out_of_range)
}

/// `date-element`: standard, ordinal or week date, whichever reads furthest (the standard form
/// wins ties, as in Joda). Returns days since 1970-01-01.
fn date(p: &mut Cursor<'_>) -> Result<i64, String> {
    let year = p.signed(9).ok_or("expected a year")?;
    let start = *p;

    let mut std = start;
    let (mut month, mut day) = (1, 1);
    if let Some(m) = std.dash_then(2) {
        month = m;
        if let Some(d) = std.dash_then(2) {
            day = d;
        }
    }

    let mut week = start;
    let week_date = if week.eat(b'-') && week.eat_ci(b'W') {
        week.digits(1, 2).map(|(_, w)| {
            let dow = week.dash_then(1).unwrap_or(1);
            (w as u32, dow)
        })
    } else {
        None
    };

    let mut ord = start;
    let ordinal = ord.dash_then(3);

    let best = std.i.max(if week_date.is_some() { week.i } else { 0 });
    let best = best.max(if ordinal.is_some() { ord.i } else { 0 });
    if std.i == best {
        *p = std;
        civil::days_from_civil(year, month, day)
            .ok_or_else(|| format!("no such date {}-{month:02}-{day:02}", year_text(year)))
    } else if let (Some((w, dow)), true) = (week_date, week.i == best) {
        *p = week;
        civil::days_from_week_date(year, w, dow)
            .ok_or_else(|| format!("no such week date {}-W{w:02}-{dow}", year_text(year)))
    } else {
        *p = ord;
        let d = ordinal.unwrap_or(0);
        civil::days_from_ordinal(year, d)
            .ok_or_else(|| format!("no such day of year {}-{d:03}", year_text(year)))
    }
}

fn year_text(year: i64) -> String {
    let mut s = String::new();
    civil::write_year(&mut s, year);
    s
}

/// `time-element`: `HH[:mm[:ss]]`, a fraction on the last field. Millis since midnight.
fn time_of_day(p: &mut Cursor<'_>) -> Result<i64, String> {
    let (_, h) = p.digits(1, 2).ok_or("expected hours")?;
    let (mut m, mut sec) = (0, 0);
    let frac;
    if p.eat(b':') {
        m = p.digits(1, 2).ok_or("expected minutes after ':'")?.1;
        if p.eat(b':') {
            sec = p.digits(1, 2).ok_or("expected seconds after ':'")?.1;
            frac = p.fraction(MILLIS_PER_SECOND)?;
        } else {
            frac = p.fraction(MILLIS_PER_MINUTE)?;
        }
    } else {
        frac = p.fraction(MILLIS_PER_HOUR)?;
    }
    if h > 23 || m > 59 || sec > 59 {
        return Err(format!("no such time {h:02}:{m:02}:{sec:02}"));
    }
    Ok(h as i64 * MILLIS_PER_HOUR
        + m as i64 * MILLIS_PER_MINUTE
        + sec as i64 * MILLIS_PER_SECOND
        + frac)
}

/// An offset as Joda's `appendTimeZoneOffset("Z", true, 2, 4)` reads it: `Z`, or a sign, two
/// digits of hours, then minutes, seconds and millis, all with `:` (and `.`) or none. Millis.
fn offset_millis(s: &str) -> Option<i64> {
    if s.eq_ignore_ascii_case("Z") {
        return Some(0);
    }
    let mut p = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let sign = if p.eat(b'-') {
        -1
    } else if p.eat(b'+') {
        1
    } else {
        return None;
    };
    let two = |p: &mut Cursor<'_>, max: u64| p.digits(2, 2).map(|(_, v)| v).filter(|v| *v <= max);
    let mut millis = two(&mut p, 23)? as i64 * MILLIS_PER_HOUR;
    if !p.at_end() {
        let colons = p.eat(b':');
        millis += two(&mut p, 59)? as i64 * MILLIS_PER_MINUTE;
        if !p.at_end() {
            if colons && !p.eat(b':') {
                return None;
            }
            millis += two(&mut p, 59)? as i64 * MILLIS_PER_SECOND;
            if !p.at_end() {
                if colons && !(p.eat(b'.') || p.eat(b',')) {
                    return None;
                }
                let (n, v) = p.digits(1, 3)?;
                millis += v as i64 * [100, 10, 1][n - 1];
            }
        }
    }
    p.at_end().then_some(sign * millis)
}

#[derive(Clone, Copy)]
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Eats `b` in either case (Joda's literals ignore case).
    fn eat_ci(&mut self, b: u8) -> bool {
        if self.peek().is_some_and(|c| c.eq_ignore_ascii_case(&b)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Reads between `min` and `max` digits; returns how many and their value.
    fn digits(&mut self, min: usize, max: usize) -> Option<(usize, u64)> {
        let start = self.i;
        let mut v: u64 = 0;
        while self.i - start < max {
            match self.peek() {
                Some(b) if b.is_ascii_digit() => {
                    v = v * 10 + u64::from(b - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        let n = self.i - start;
        if n >= min {
            Some((n, v))
        } else {
            self.i = start;
            None
        }
    }

    /// An optional sign then 1 to `max` digits, like Joda's signed year fields.
    fn signed(&mut self, max: usize) -> Option<i64> {
        let start = self.i;
        let neg = self.eat(b'-');
        if !neg {
            self.eat(b'+');
        }
        match self.digits(1, max) {
            Some((_, v)) => Some(if neg { -(v as i64) } else { v as i64 }),
            None => {
                self.i = start;
                None
            }
        }
    }

    /// `-` and 1 to `max` digits, or nothing consumed.
    fn dash_then(&mut self, max: usize) -> Option<u32> {
        let start = self.i;
        if self.eat(b'-') {
            if let Some((_, v)) = self.digits(1, max) {
                return Some(v as u32);
            }
        }
        self.i = start;
        None
    }

    /// An optional fraction (`.` or `,` and 1 to 9 digits) of a unit of `unit` millis, in
    /// millis, truncated digit by digit exactly as Joda's fraction parser does.
    fn fraction(&mut self, unit: i64) -> Result<i64, String> {
        if !(self.eat(b'.') || self.eat(b',')) {
            return Ok(0);
        }
        let start = self.i;
        let (n, _) = self
            .digits(1, 9)
            .ok_or("expected 1 to 9 digits after the decimal point")?;
        let mut scale = unit * 10;
        let mut value = 0;
        for d in &self.s[start..start + n] {
            scale /= 10;
            value += i64::from(d - b'0') * scale;
        }
        Ok(value / 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Result<i64, String> {
        parse_iso_datetime(s, Zone::UTC)
    }

    /// `i64::MIN / 2` and `i64::MAX / 2`: Druid's `Intervals.ETERNITY` (JodaUtils.MIN_INSTANT,
    /// MAX_INSTANT), which Druid prints as below.
    const ETERNITY: &str = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z";

    #[test]
    fn formats_like_joda() {
        assert_eq!(format_iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso_millis(1_546_311_600_000),
            "2019-01-01T03:00:00.000Z"
        );
        assert_eq!(format_iso_millis(-1), "1969-12-31T23:59:59.999Z");
        // Joda's answers at the edges of four-digit years and of i64.
        assert_eq!(
            format_iso_millis(-62_167_219_200_001),
            "-0001-12-31T23:59:59.999Z"
        );
        assert_eq!(
            format_iso_millis(-62_135_596_800_000),
            "0001-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(-377_705_116_800_000),
            "-9999-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_iso_millis(i64::MIN),
            "-292275055-05-16T16:47:04.192Z"
        );
        assert_eq!(format_iso_millis(i64::MAX), "292278994-08-17T07:12:55.807Z");
        let (start, end) = ETERNITY.split_once('/').unwrap();
        assert_eq!(format_iso_millis(i64::MIN / 2), start);
        assert_eq!(format_iso_millis(i64::MAX / 2), end);
    }

    #[test]
    fn parses_eternity_and_the_ends_of_i64() {
        let (start, end) = ETERNITY.split_once('/').unwrap();
        assert_eq!(utc(start), Ok(i64::MIN / 2));
        assert_eq!(utc(end), Ok(i64::MAX / 2));
        assert_eq!(utc("292278994-08-17T07:12:55.807Z"), Ok(i64::MAX));
        assert_eq!(utc("-292275055-05-16T16:47:04.192Z"), Ok(i64::MIN));
        assert_eq!(utc("292278994-08-17T08:12:55.807+01:00"), Ok(i64::MAX));
        // One milli further: Joda wraps around silently; this is an error naming the text.
        for past in [
            "292278994-08-17T07:12:55.808Z",
            "-292275055-05-16T16:47:04.191Z",
            "292278994-08-17T07:12:55.807-01:00",
            "999999999",
            "-999999999-01-01",
        ] {
            let e = utc(past).unwrap_err();
            assert!(e.contains(past) && e.contains("out of range"), "{e}");
        }
        let la: Zone = "America/Los_Angeles".parse().unwrap();
        assert_eq!(
            parse_iso_datetime("146140482-04-24T08:36:27.903", la),
            Ok(i64::MAX / 2)
        );
        assert_eq!(utc("123456789"), Ok(3_895_857_797_385_600_000));
        assert_eq!(utc("-123456789"), Ok(-3_895_982_131_737_600_000));
    }

    /// Every form of Joda's `dateTimeParser` grammar, with the millis Joda 2.12 gives for it.
    #[test]
    fn parses_what_joda_parses() {
        for (text, millis) in [
            ("2026", 1_767_225_600_000),
            ("2026-11", 1_793_491_200_000),
            ("2026-11-02", 1_793_577_600_000),
            ("2026-11-02T10", 1_793_613_600_000),
            ("2026-11-02T10:11", 1_793_614_260_000),
            ("2026-11-02T10:11:12.345", 1_793_614_272_345),
            ("2026-11-02T10:11:12.345+05:30", 1_793_594_472_345),
            ("2026-11-02T10:11:12+0530", 1_793_594_472_000),
            ("2026-11-02T10:11:12+05", 1_793_596_272_000),
            ("2026-11-02T10:11:12+05:30:15", 1_793_594_457_000),
            ("2026-11-02T10:11:12+05:30:15.5", 1_793_594_456_500),
            ("2026-11-02T10:11:12+05:30:15,123", 1_793_594_456_877),
            ("2026-11-02T10:11:12+053015123", 1_793_594_456_877),
            ("2026-11-02T10:11:12-00:00", 1_793_614_272_000),
            ("2026-11-02T10:11:12+23:59", 1_793_527_932_000),
            ("2026-11-02T10:11:12z", 1_793_614_272_000),
            ("2026-11-02t10z", 1_793_613_600_000),
            ("2026-W45-1", 1_793_577_600_000),
            ("2026-w45-1", 1_793_577_600_000),
            ("2026-W45", 1_793_577_600_000),
            ("2026-W53-1", 1_798_416_000_000),
            ("2020-W53-1", 1_609_113_600_000),
            ("2026-W01", 1_766_966_400_000),
            ("2026-306", 1_793_577_600_000),
            ("2024-366", 1_735_603_200_000),
            ("2026-1-2", 1_767_312_000_000),
            ("26", -61_346_678_400_000),
            ("+2026-01-01", 1_767_225_600_000),
            ("0000-01-01", -62_167_219_200_000),
            ("-0000-01-01", -62_167_219_200_000),
            ("-0001-01-01", -62_198_755_200_000),
            ("T10:00", 36_000_000),
            ("2026-11-02T", 1_793_577_600_000),
            ("2026-11-02TZ", 1_793_577_600_000),
            ("2026-11-02Tz", 1_793_577_600_000),
            ("2026-11-02T10.5", 1_793_615_400_000),
            ("2026-11-02T10,5", 1_793_615_400_000),
            ("2026-11-02T10:30.5", 1_793_615_430_000),
            ("2026-11-02T1", 1_793_581_200_000),
            ("2026-11-02T10:1", 1_793_613_660_000),
            ("2026-11-02T10:11:12,5", 1_793_614_272_500),
            ("2026-11-02T10:11:12.123456789Z", 1_793_614_272_123),
            ("20261102", 639_316_456_041_600_000),
        ] {
            assert_eq!(utc(text), Ok(millis), "{text}");
        }
    }

    #[test]
    fn refuses_what_joda_refuses() {
        for text in [
            "2026-11-02T10:11:12+5",
            "2026-11-02T10:11:12+0",
            "2026-11-02T10:11:12+24:00",
            "2026-11-02T10:11:12+05:3",
            "2026-11-02T10:11:12.5+05:30:1",
            "2026-11-02T10:11:12.5+",
            "1234567890",
            "2026-02-30",
            "2026-11-02T24:00",
            "2026-11-02T10:11:60",
            "2026-11-02T10:11:12.1234567891",
            "2026-11-02T10:11:12.",
            "2026-W45-8",
            "2026-W00",
            "2026-W54",
            "2025-W53",
            "2026-000",
            "2026-366",
            "+-2026",
            "T",
            "P1D",
        ] {
            assert!(utc(text).is_err(), "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn print_parse_round_trip_over_eternity(ts in i64::MIN / 2..=i64::MAX / 2) {
            let text = format_iso_millis(ts);
            proptest::prop_assert_eq!(utc(&text), Ok(ts), "{}", text);
        }

        #[test]
        fn print_parse_round_trip_over_i64(ts in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(utc(&format_iso_millis(ts)), Ok(ts));
        }
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(utc("2019-01-01T03:00:00.000Z"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01T03:00:00Z"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01T03:00"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01 03:00:00"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01T04:00:00+01:00"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01T04:00:00+0100"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01T02:00:00-01"), Ok(1_546_311_600_000));
        assert_eq!(utc("2019-01-01T03:00:00.123456Z"), Ok(1_546_311_600_123));
        assert_eq!(utc("2019"), Ok(1_546_300_800_000));
        assert_eq!(utc("2019-01"), Ok(1_546_300_800_000));
        assert_eq!(
            utc("2018-12-31 22:00:00 America/New_York"),
            Ok(1_546_311_600_000)
        );
        let la: Zone = "America/Los_Angeles".parse().unwrap();
        assert_eq!(
            parse_iso_datetime("2018-12-31T19:00:00", la),
            Ok(1_546_311_600_000)
        );
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert!(utc("").unwrap_err().contains("year"));
        assert!(utc("2019-13-01").unwrap_err().contains("no such date"));
        assert!(utc("2019-01-01T25:00")
            .unwrap_err()
            .contains("no such time"));
        assert!(utc("2019-01-01Tnoon").unwrap_err().contains("hours"));
        assert!(utc("2019-01-01T03:00:00 nowhere/zone").is_err());
        assert!(utc("yesterday").is_err());
    }
}
