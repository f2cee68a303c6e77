//! Joda-Time style date-time patterns (`yyyy-MM-dd HH:mm:ss`, `dd/MMM/yyyy:HH:mm:ss Z`, ...)
//! compiled once and used to parse timestamps.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};

use crate::time::Zone;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(String),
    Year(usize),
    TwoDigitYear,
    Month(usize),
    MonthText,
    Day(usize),
    DayOfYear(usize),
    DayOfWeekText,
    HalfDay,
    Hour24(usize),
    ClockHour24(usize),
    Hour12(usize),
    ClockHour12(usize),
    Minute(usize),
    Second(usize),
    Fraction(usize),
    Offset,
    ZoneId,
}

impl Tok {
    fn is_numeric(&self) -> bool {
        !matches!(
            self,
            Tok::Lit(_)
                | Tok::MonthText
                | Tok::DayOfWeekText
                | Tok::HalfDay
                | Tok::Offset
                | Tok::ZoneId
        )
    }
}

/// A compiled Joda-style pattern. Times without an offset in the text are UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JodaPattern {
    pattern: String,
    toks: Vec<Tok>,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl JodaPattern {
    /// Compiles `pattern`; unsupported letters are an error naming them.
    pub fn compile(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // Quoted literal; '' is a single quote.
                let mut lit = String::new();
                i += 1;
                if i < chars.len() && chars[i] == '\'' {
                    toks.push(Tok::Lit("'".into()));
                    i += 1;
                    continue;
                }
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated quote".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            lit.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            lit.push(*ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Tok::Lit(lit));
                continue;
            }
            if !c.is_ascii_alphabetic() {
                toks.push(Tok::Lit(c.to_string()));
                i += 1;
                continue;
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            i += n;
            toks.push(match c {
                'y' | 'Y' | 'u' if n == 2 => Tok::TwoDigitYear,
                'y' | 'Y' | 'u' => Tok::Year(n),
                'M' if n >= 3 => Tok::MonthText,
                'M' => Tok::Month(n),
                'd' => Tok::Day(n),
                'D' => Tok::DayOfYear(n),
                'E' => Tok::DayOfWeekText,
                'a' => Tok::HalfDay,
                'H' => Tok::Hour24(n),
                'k' => Tok::ClockHour24(n),
                'K' => Tok::Hour12(n),
                'h' => Tok::ClockHour12(n),
                'm' => Tok::Minute(n),
                's' => Tok::Second(n),
                'S' => Tok::Fraction(n),
                'Z' if n >= 3 => Tok::ZoneId,
                'Z' => Tok::Offset,
                other => {
                    return Err(format!(
                        "pattern letter '{other}' is not supported (supported: y M d D E a H k K h m s S Z and quoted text)"
                    ))
                }
            });
        }
        if toks.is_empty() {
            return Err("the pattern is empty".into());
        }
        Ok(Self {
            pattern: pattern.to_string(),
            toks,
        })
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Parses `s` into epoch millis, or says what did not match.
    pub fn parse(&self, s: &str) -> Result<i64, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let (mut year, mut month, mut day, mut doy) = (1970i64, 1u32, 1u32, None::<u32>);
        let (mut hour, mut minute, mut second, mut millis) = (0u32, 0u32, 0u32, 0u32);
        let mut pm = None::<bool>;
        let mut zone = Zone::UTC;
        for (k, tok) in self.toks.iter().enumerate() {
            let adjacent = self.toks.get(k + 1).is_some_and(Tok::is_numeric);
            let num = |width: usize, max: usize, i: &mut usize| -> Result<(usize, i64), String> {
                let limit = if adjacent { width.max(1) } else { max };
                let start = *i;
                let mut v: i64 = 0;
                while *i < b.len() && *i - start < limit && b[*i].is_ascii_digit() {
                    v = v * 10 + i64::from(b[*i] - b'0');
                    *i += 1;
                }
                let n = *i - start;
                if n == 0 {
                    return Err(format!("expected digits at position {start}"));
                }
                Ok((n, v))
            };
            match tok {
                Tok::Lit(l) => {
                    let end = i + l.len();
                    if !s.get(i..end).is_some_and(|t| t.eq_ignore_ascii_case(l)) {
                        return Err(format!("expected '{l}' at position {i}"));
                    }
                    i = end;
                }
                Tok::Year(w) => {
                    let neg = b.get(i) == Some(&b'-');
                    if neg || b.get(i) == Some(&b'+') {
                        i += 1;
                    }
                    let v = num(*w, 9, &mut i)?.1;
                    year = if neg { -v } else { v };
                }
                Tok::TwoDigitYear => {
                    let v = num(2, 2, &mut i)?.1;
                    // Joda's pivot: the century window starting 80 years ago... ends 20 years ahead.
                    let low = i64::from(chrono::Utc::now().year()) - 80;
                    year = low + (v - low).rem_euclid(100);
                }
                Tok::Month(w) => month = num(*w, 2, &mut i)?.1 as u32,
                Tok::MonthText => {
                    let (idx, len) = match_name(&s[i..], &MONTHS)
                        .ok_or_else(|| format!("expected a month name at position {i}"))?;
                    month = idx as u32 + 1;
                    i += len;
                }
                Tok::Day(w) => day = num(*w, 2, &mut i)?.1 as u32,
                Tok::DayOfYear(w) => doy = Some(num(*w, 3, &mut i)?.1 as u32),
                Tok::DayOfWeekText => {
                    let (_, len) = match_name(&s[i..], &DAYS)
                        .ok_or_else(|| format!("expected a day name at position {i}"))?;
                    i += len;
                }
                Tok::HalfDay => {
                    let head = s.get(i..i + 2).unwrap_or("");
                    if head.eq_ignore_ascii_case("AM") {
                        pm = Some(false);
                    } else if head.eq_ignore_ascii_case("PM") {
                        pm = Some(true);
                    } else {
                        return Err(format!("expected AM or PM at position {i}"));
                    }
                    i += 2;
                }
                Tok::Hour24(w) => hour = num(*w, 2, &mut i)?.1 as u32,
                Tok::ClockHour24(w) => hour = (num(*w, 2, &mut i)?.1 % 24) as u32,
                Tok::Hour12(w) => hour = num(*w, 2, &mut i)?.1 as u32,
                Tok::ClockHour12(w) => hour = (num(*w, 2, &mut i)?.1 % 12) as u32,
                Tok::Minute(w) => minute = num(*w, 2, &mut i)?.1 as u32,
                Tok::Second(w) => second = num(*w, 2, &mut i)?.1 as u32,
                Tok::Fraction(w) => {
                    let (n, v) = num(*w, 9, &mut i)?;
                    millis = if n >= 3 {
                        (v / 10i64.pow((n - 3) as u32)) as u32
                    } else {
                        (v * 10i64.pow((3 - n) as u32)) as u32
                    };
                }
                Tok::Offset => {
                    let rest = &s[i..];
                    if rest.starts_with(['Z', 'z']) {
                        zone = Zone::UTC;
                        i += 1;
                    } else {
                        let len = rest
                            .char_indices()
                            .take_while(|(k, c)| {
                                (*k == 0 && (*c == '+' || *c == '-'))
                                    || c.is_ascii_digit()
                                    || *c == ':'
                            })
                            .count();
                        let off =
                            crate::time::Zone::from_offset_str(&rest[..len]).ok_or_else(|| {
                                format!("expected an offset such as +01:00 at position {i}")
                            })?;
                        zone = off;
                        i += len;
                    }
                }
                Tok::ZoneId => {
                    let rest = &s[i..];
                    let len = rest
                        .chars()
                        .take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-' | ':')
                        })
                        .count();
                    zone = rest[..len]
                        .parse::<Zone>()
                        .map_err(|_| format!("expected a time zone id at position {i}"))?;
                    i += len;
                }
            }
        }
        if i != b.len() {
            return Err(format!("unexpected text '{}' at position {i}", &s[i..]));
        }
        // 12-hour fields hold 0..=11 here, so PM adds 12 to either kind of hour field.
        if pm == Some(true) && hour < 12 {
            hour += 12;
        }
        let year = i32::try_from(year).map_err(|_| "year out of range".to_string())?;
        let date = match doy {
            Some(d) => NaiveDate::from_yo_opt(year, d),
            None => NaiveDate::from_ymd_opt(year, month, day),
        }
        .ok_or_else(|| format!("no such date (year {year}, month {month}, day {day})"))?;
        let time = NaiveTime::from_hms_milli_opt(hour, minute, second, millis)
            .ok_or_else(|| format!("no such time {hour:02}:{minute:02}:{second:02}"))?;
        zone.from_local(NaiveDateTime::new(date, time))
            .ok_or_else(|| "date-time out of the supported range".to_string())
    }
}

/// Matches a full English name, else its three-letter form; returns (index, bytes consumed).
fn match_name(s: &str, names: &[&str]) -> Option<(usize, usize)> {
    let starts = |len: usize, n: &str| {
        s.get(..len)
            .is_some_and(|h| h.eq_ignore_ascii_case(&n[..len]))
    };
    names
        .iter()
        .position(|n| starts(n.len(), n))
        .map(|p| (p, names[p].len()))
        .or_else(|| names.iter().position(|n| starts(3, n)).map(|p| (p, 3)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pattern: &str, s: &str) -> Result<i64, String> {
        JodaPattern::compile(pattern).unwrap().parse(s)
    }

    #[test]
    fn parses_common_patterns() {
        let t = Ok(1_546_311_600_000); // 2019-01-01T03:00:00Z
        assert_eq!(p("yyyy-MM-dd HH:mm:ss", "2019-01-01 03:00:00"), t);
        assert_eq!(
            p("yyyy-MM-dd'T'HH:mm:ss.SSSZ", "2019-01-01T04:00:00.000+0100"),
            t
        );
        assert_eq!(p("yyyy-MM-dd'T'HH:mm:ssZZ", "2019-01-01T03:00:00Z"), t);
        assert_eq!(p("dd/MMM/yyyy:HH:mm:ss Z", "01/Jan/2019:03:00:00 +0000"), t);
        assert_eq!(p("yyyyMMddHHmmss", "20190101030000"), t);
        assert_eq!(p("MM/dd/yyyy hh:mm a", "01/01/2019 03:00 AM"), t);
        assert_eq!(
            p("MM/dd/yyyy hh:mm a", "12/31/2018 10:00 PM"),
            Ok(1_546_293_600_000)
        );
        assert_eq!(
            p("EEE, d MMMM yyyy HH:mm", "Tuesday, 1 January 2019 03:00"),
            t
        );
        assert_eq!(
            p(
                "yyyy-MM-dd HH:mm:ss ZZZ",
                "2018-12-31 22:00:00 America/New_York"
            ),
            t
        );
        assert_eq!(p("yyyy-DDD", "2019-001"), Ok(1_546_300_800_000));
    }

    #[test]
    fn reports_what_did_not_match() {
        assert!(p("yyyy-MM-dd", "2019/01/01")
            .unwrap_err()
            .contains("expected '-'"));
        assert!(p("yyyy-MM-dd", "2019-02-30")
            .unwrap_err()
            .contains("no such date"));
        assert!(p("yyyy-MM-dd", "2019-01-01x")
            .unwrap_err()
            .contains("unexpected text"));
        assert!(JodaPattern::compile("yyyy G").unwrap_err().contains("'G'"));
        assert!(JodaPattern::compile("'open").is_err());
        assert!(p("dd MMM yyyy", "01 Jé 2019").is_err());
        assert!(p("yyyy-MM-dd a", "2019-01-01 é").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_an_answer_not_a_panic(text in "\\PC{0,24}", pat in proptest::sample::select(vec![
            "yyyy-MM-dd HH:mm:ss", "dd/MMM/yyyy:HH:mm:ss Z", "EEE MMM d HH:mm:ss ZZZ yyyy", "hh:mm a", "yyyyMMdd'T'HHmmss.SSS",
        ])) {
            let _ = p(pat, &text);
        }
    }
}
