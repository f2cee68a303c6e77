//! ISO-8601 date-times: Joda-style UTC formatting and a lenient parser in the spirit of Joda's
//! `dateTimeParser` (partial dates, optional time, fraction, offset or trailing zone id).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

use super::Zone;

/// Formats epoch millis as Joda prints a UTC `DateTime`: `2019-01-01T03:00:00.000Z`.
///
/// Instants outside chrono's range (about ±262,000 years) are printed as the bare millis number.
pub fn format_iso_millis(ts: i64) -> String {
    match DateTime::from_timestamp_millis(ts) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ts.to_string(),
    }
}

/// Parses an ISO-8601 date-time into epoch millis.
///
/// Accepts `yyyy`, `yyyy-MM`, `yyyy-MM-dd`, then optionally `T` (or a space) and `HH`, `HH:mm`,
/// `HH:mm:ss`, `HH:mm:ss.SSS...`, then optionally `Z` or an offset (`+01`, `+0100`, `+01:00`) or a
/// space and a zone id (`2024-01-01 10:00:00 America/New_York`). Without an offset the time is
/// local to `default_zone`. The error says which part did not parse.
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

    // Date.
    let neg = p.eat(b'-');
    if !neg {
        p.eat(b'+');
    }
    let year_digits = p.digits(1, 9).ok_or("expected a year")?;
    let mut year = year_digits.1 as i32;
    if neg {
        year = -year;
    }
    let mut month = 1;
    let mut day = 1;
    if p.eat(b'-') {
        month = p.digits(1, 2).ok_or("expected a month after 'yyyy-'")?.1 as u32;
        if p.eat(b'-') {
            day = p.digits(1, 2).ok_or("expected a day after 'yyyy-MM-'")?.1 as u32;
        }
    }
    let date = NaiveDate::from_ymd_opt(year, month, day)
        .ok_or_else(|| format!("no such date {year:04}-{month:02}-{day:02}"))?;

    // Time.
    let mut nanos = 0u32;
    let (mut h, mut m, mut sec) = (0, 0, 0);
    if p.eat(b'T') || p.eat(b't') || p.eat(b' ') {
        h = p
            .digits(2, 2)
            .ok_or("expected two-digit hours after the date")?
            .1 as u32;
        if p.eat(b':') {
            m = p.digits(2, 2).ok_or("expected two-digit minutes")?.1 as u32;
            if p.eat(b':') {
                sec = p.digits(2, 2).ok_or("expected two-digit seconds")?.1 as u32;
                if p.eat(b'.') || p.eat(b',') {
                    let (n, v) = p
                        .digits(1, 18)
                        .ok_or("expected digits after the decimal point")?;
                    // Keep nanosecond precision; Druid keeps millis, callers truncate.
                    nanos = if n >= 9 {
                        (v / 10u64.pow((n - 9) as u32)) as u32
                    } else {
                        (v * 10u64.pow((9 - n) as u32)) as u32
                    };
                }
            }
        }
    }
    let time = NaiveTime::from_hms_nano_opt(h, m, sec, nanos)
        .ok_or_else(|| format!("no such time {h:02}:{m:02}:{sec:02}"))?;
    let local = NaiveDateTime::new(date, time);

    // Offset.
    let rest = &body[p.i..];
    let zone = if rest.is_empty() {
        zone_id.unwrap_or(default_zone)
    } else if rest.eq_ignore_ascii_case("Z") {
        Zone::UTC
    } else if let Some(off) = super::zone::parse_offset(rest) {
        Zone::Fixed(off)
    } else {
        return Err(format!("unexpected text '{rest}' after the date-time"));
    };
    zone.from_local(local)
        .ok_or_else(|| "date-time out of the supported range".to_string())
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn eat(&mut self, b: u8) -> bool {
        if self.s.get(self.i) == Some(&b) {
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
            match self.s.get(self.i) {
                Some(b) if b.is_ascii_digit() => {
                    v = v * 10 + u64::from(b - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        let n = self.i - start;
        (n >= min).then_some((n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Result<i64, String> {
        parse_iso_datetime(s, Zone::UTC)
    }

    #[test]
    fn formats_like_joda() {
        assert_eq!(format_iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso_millis(1_546_311_600_000),
            "2019-01-01T03:00:00.000Z"
        );
        assert_eq!(format_iso_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_iso_millis(i64::MAX), i64::MAX.to_string());
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
