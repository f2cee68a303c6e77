//! ISO-8601 text into instants, exactly as Druid reads it: Joda's
//! `ISODateTimeFormat.dateTimeParser()` (intervals, origins, `iso` timestamps, JSON date-times)
//! and the parser of Druid's `auto` timestamp format.

use chrono_tz::Tz;

use super::calendar::{days_of, days_of_ordinal, days_of_week_date, DAY, HOUR, MINUTE, SECOND};
use super::Millis;

/// Parses a date-time as Joda's `dateTimeParser()` does in UTC (Druid's `DateTimes.of`).
///
/// `datetime = time | date-opt-time`, `time = 'T' time-element [offset]`,
/// `date-opt-time = date-element ['T' [time-element] [offset]]`, where a date is `yyyy[-MM[-dd]]`,
/// `yyyy-DDD` or `xxxx-Www[-e]` (years signed, 1 to 9 digits), a time is `HH[:mm[:ss]]` with a
/// fraction (`.` or `,`, 1 to 9 digits) on its last field, and an offset is `Z` or `±HH`
/// followed by minutes, seconds and millis, with `:` or without. Literals ignore case. An
/// instant beyond `i64` millis is an error (Joda wraps around instead).
pub fn parse_iso(s: &str) -> Result<Millis, String> {
    let mut r = Reader::new(s);
    let (days, time, offset) = if r.peek_is_t() {
        r.pos += 1;
        let time = r.time().ok_or_else(|| r.malformed())?;
        (0, time, r.offset()?)
    } else {
        let days = r.date()?;
        let (mut time, mut offset) = (0, 0);
        if r.peek_is_t() {
            r.pos += 1;
            time = r.time().unwrap_or(0);
            offset = r.offset()?;
        }
        (days, time, offset)
    };
    r.finish(days, time, offset)
}

/// Parses a timestamp string as Druid's `auto` format does once it is not all digits: quotes
/// stripped, a trailing ` <zone id>` dropped (Druid keeps the instant and only relabels the
/// zone, so the id changes nothing), then `date-element [('T' | ' ') [time-element] [offset]]`.
pub fn parse_auto(s: &str) -> Result<Millis, String> {
    let mut text = strip_quotes(s);
    if let Some(i) = text.rfind(' ').filter(|i| *i > 0) {
        if text[i + 1..].parse::<Tz>().is_ok() {
            text = &text[..i];
        }
    }
    let mut r = Reader::new(text);
    let days = r.date()?;
    let (mut time, mut offset) = (0, 0);
    if matches!(r.peek(), Some(b'T' | b't' | b' ')) {
        r.pos += 1;
        time = r.time().unwrap_or(0);
        offset = r.offset()?;
    }
    r.finish(days, time, offset)
}

/// Druid's `ParserUtils.stripQuotes`: trim, then drop one pair of surrounding quotes and trim.
pub fn strip_quotes(s: &str) -> &str {
    let t = s.trim();
    match t.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => inner.trim(),
        None => t,
    }
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    /// A field out of its range; reported only once the whole text has matched, as in Joda.
    invalid: Option<String>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            text,
            b: text.as_bytes(),
            pos: 0,
            invalid: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_is_t(&self) -> bool {
        matches!(self.peek(), Some(b'T' | b't'))
    }

    fn malformed(&self) -> String {
        if self.pos >= self.b.len() {
            format!("Invalid format: \"{}\" is too short", self.text)
        } else {
            format!(
                "Invalid format: \"{}\" is malformed at \"{}\"",
                self.text,
                &self.text[self.pos..]
            )
        }
    }

    /// Up to `max` digits (at least one) at `at`: (value, digits read).
    fn digits_at(&self, at: usize, max: usize) -> Option<(u64, usize)> {
        let tail = self.b.get(at..).unwrap_or_default();
        let n = tail
            .iter()
            .take(max)
            .take_while(|c| c.is_ascii_digit())
            .count();
        let value = tail[..n]
            .iter()
            .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
        (n > 0).then_some((value, n))
    }

    /// `-` then 1 to `max` digits at `at`: (value, end).
    fn dash_field(&self, at: usize, max: usize) -> Option<(u32, usize)> {
        if self.b.get(at) != Some(&b'-') {
            return None;
        }
        let (v, n) = self.digits_at(at + 1, max)?;
        Some((v as u32, at + 1 + n))
    }

    /// `date-element`: the standard, week or ordinal form, whichever reads furthest (the
    /// earlier form on a tie), like Joda's matching parser.
    fn date(&mut self) -> Result<i64, String> {
        let (negative, at) = match self.peek() {
            Some(b'-') => (true, self.pos + 1),
            Some(b'+') => (false, self.pos + 1),
            _ => (false, self.pos),
        };
        let (abs, n) = self.digits_at(at, 9).ok_or_else(|| self.malformed())?;
        let year = if negative { -(abs as i64) } else { abs as i64 };
        let after_year = at + n;

        // Standard: -MM then optionally -dd.
        let (mut std_end, mut month, mut day) = (after_year, 1, 1);
        if let Some((m, e)) = self.dash_field(after_year, 2) {
            (month, std_end) = (m, e);
            if let Some((d, e)) = self.dash_field(e, 2) {
                (day, std_end) = (d, e);
            }
        }
        // Week date: -Www then optionally -e.
        let week = match self.b.get(after_year..after_year + 2) {
            Some([b'-', w]) if w.eq_ignore_ascii_case(&b'W') => {
                self.digits_at(after_year + 2, 2).map(|(w, n)| {
                    let end = after_year + 2 + n;
                    match self.dash_field(end, 1) {
                        Some((e, end)) => (w as u32, e, end),
                        None => (w as u32, 1, end),
                    }
                })
            }
            _ => None,
        };
        // Ordinal date: -DDD.
        let ordinal = self.dash_field(after_year, 3);

        let week_end = week.map_or(0, |w| w.2);
        let ordinal_end = ordinal.map_or(0, |o| o.1);
        let (days, end) = if std_end >= week_end && std_end >= ordinal_end {
            (days_of(year, month, day), std_end)
        } else if week_end >= ordinal_end {
            let (w, e, end) = week.unwrap_or_default();
            (days_of_week_date(year, w, e), end)
        } else {
            let (d, end) = ordinal.unwrap_or_default();
            (days_of_ordinal(year, d), end)
        };
        self.pos = end;
        if days.is_none() {
            self.invalid = Some(format!("no such date \"{}\"", &self.text[..end]));
        }
        Ok(days.unwrap_or(0))
    }

    /// `time-element`: millis of the day, or `None` (nothing read) when no hour follows.
    fn time(&mut self) -> Option<i64> {
        let start = self.pos;
        let (h, n) = self.digits_at(self.pos, 2)?;
        self.pos += n;
        let (mut m, mut s, mut unit) = (0, 0, HOUR);
        if self.peek() == Some(b':') {
            if let Some((v, n)) = self.digits_at(self.pos + 1, 2) {
                (m, unit) = (v, MINUTE);
                self.pos += 1 + n;
                if self.peek() == Some(b':') {
                    if let Some((v, n)) = self.digits_at(self.pos + 1, 2) {
                        (s, unit) = (v, SECOND);
                        self.pos += 1 + n;
                    }
                }
            }
        }
        let mut part = 0;
        if matches!(self.peek(), Some(b'.' | b',')) {
            if let Some((_, n)) = self.digits_at(self.pos + 1, 9) {
                part = fraction(&self.b[self.pos + 1..self.pos + 1 + n], unit);
                self.pos += 1 + n;
            }
        }
        if h > 23 || m > 59 || s > 59 {
            self.invalid = Some(format!("no such time \"{}\"", &self.text[start..self.pos]));
        }
        Some(h as i64 * HOUR + m as i64 * MINUTE + s as i64 * SECOND + part)
    }

    /// An optional offset, in millis east of UTC.
    fn offset(&mut self) -> Result<i64, String> {
        let sign = match self.peek() {
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Ok(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Ok(0),
        };
        let start = self.pos;
        let bad = |r: &mut Self| {
            r.pos = start;
            Err(r.malformed())
        };
        let two = |r: &Self, at: usize, max: u64| {
            r.b.get(at..at + 2)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .map(|d| u64::from(d[0] - b'0') * 10 + u64::from(d[1] - b'0'))
                .filter(|v| *v <= max)
        };
        let Some(h) = two(self, start + 1, 23) else {
            return bad(self);
        };
        let mut at = start + 3;
        let mut millis = h as i64 * HOUR;
        let colons = self.b.get(at) == Some(&b':');
        let digit_at = |r: &Self, i: usize| r.b.get(i).is_some_and(u8::is_ascii_digit);
        if colons || digit_at(self, at) {
            at += usize::from(colons);
            let Some(m) = two(self, at, 59) else {
                return bad(self);
            };
            millis += m as i64 * MINUTE;
            at += 2;
            let more = if colons {
                self.b.get(at) == Some(&b':')
            } else {
                digit_at(self, at)
            };
            if more {
                at += usize::from(colons);
                let Some(s) = two(self, at, 59) else {
                    return bad(self);
                };
                millis += s as i64 * SECOND;
                at += 2;
                let dot = colons && matches!(self.b.get(at), Some(b'.' | b','));
                if dot || (!colons && digit_at(self, at)) {
                    at += usize::from(dot);
                    let Some((v, n)) = self.digits_at(at, 3) else {
                        return bad(self);
                    };
                    millis += v as i64 * [100, 10, 1][n - 1];
                    at += n;
                }
            }
        }
        self.pos = at;
        Ok(sign * millis)
    }

    /// The whole text must have matched; then the fields must exist and the instant fit.
    fn finish(&self, days: i64, time: i64, offset: i64) -> Result<Millis, String> {
        if self.pos != self.b.len() {
            return Err(self.malformed());
        }
        if let Some(why) = &self.invalid {
            return Err(format!("Cannot parse \"{}\": {why}", self.text));
        }
        let instant = i128::from(days) * i128::from(DAY) + i128::from(time) - i128::from(offset);
        Millis::try_from(instant).map_err(|_| {
            format!(
                "Cannot parse \"{}\": the instant is outside the range of epoch millis \
                 (-292275055-05-16T16:47:04.192Z to 292278994-08-17T07:12:55.807Z)",
                self.text
            )
        })
    }
}

/// A decimal fraction of a unit of `unit` millis, as Joda's fraction parser computes it: digit
/// by digit with truncating division.
fn fraction(digits: &[u8], unit: i64) -> i64 {
    let mut scale = unit * 10;
    let mut sum = 0;
    for d in digits {
        scale /= 10;
        sum += i64::from(d - b'0') * scale;
    }
    sum / 10
}
