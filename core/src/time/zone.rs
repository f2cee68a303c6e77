//! Time zones for calendar arithmetic: IANA zones (chrono-tz) and fixed offsets, resolved like Joda-Time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// A time zone: an IANA zone such as `America/Los_Angeles`, or a fixed offset such as `+05:30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// An IANA time zone (`UTC` is `Named(Tz::UTC)`).
    Named(Tz),
    /// A fixed offset from UTC.
    Fixed(FixedOffset),
}

impl Zone {
    /// Coordinated Universal Time.
    pub const UTC: Zone = Zone::Named(Tz::UTC);

    /// Whether this zone is UTC (named `UTC`/`Etc/UTC` or a zero offset).
    pub fn is_utc(&self) -> bool {
        match self {
            Zone::Named(tz) => matches!(
                tz,
                Tz::UTC | Tz::Etc__UTC | Tz::Etc__GMT | Tz::GMT | Tz::Etc__Zulu
            ),
            Zone::Fixed(off) => off.local_minus_utc() == 0,
        }
    }

    /// Offset from UTC in seconds at the instant `ts` (epoch millis).
    pub fn offset_seconds_at(&self, ts: i64) -> Option<i32> {
        let utc = DateTime::from_timestamp_millis(ts)?.naive_utc();
        Some(match self {
            Zone::Named(tz) => tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
            Zone::Fixed(off) => off.local_minus_utc(),
        })
    }

    /// The local wall-clock time of the instant `ts` (epoch millis); `None` outside chrono's range.
    pub fn to_local(&self, ts: i64) -> Option<NaiveDateTime> {
        let offset = self.offset_seconds_at(ts)?;
        let utc = DateTime::from_timestamp_millis(ts)?.naive_utc();
        utc.checked_add_signed(chrono::TimeDelta::seconds(i64::from(offset)))
    }

    /// The instant (epoch millis) of a local wall-clock time.
    ///
    /// Like Joda-Time: a time that occurs twice (autumn overlap) resolves to the earlier instant;
    /// a time skipped by a DST gap moves forward by the length of the gap.
    pub fn from_local(&self, local: NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Fixed(off) => local_with(off, local),
            Zone::Named(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(dt) => Some(dt.timestamp_millis()),
                LocalResult::Ambiguous(early, _) => Some(early.timestamp_millis()),
                LocalResult::None => {
                    // In a gap: use the offset in force before the transition.
                    let before = local.checked_sub_signed(chrono::TimeDelta::hours(6))?;
                    let off = match tz.from_local_datetime(&before) {
                        LocalResult::Single(dt) | LocalResult::Ambiguous(_, dt) => {
                            dt.offset().fix()
                        }
                        LocalResult::None => return None,
                    };
                    local_with(&off, local)
                }
            },
        }
    }

    /// Like [`Zone::from_local`], but in an overlap prefer the offset in force at `hint` (an
    /// instant), as Joda's field setters do; this keeps truncation monotone across DST ends.
    pub fn from_local_near(&self, local: NaiveDateTime, hint: i64) -> Option<i64> {
        if let Zone::Named(tz) = self {
            if let LocalResult::Ambiguous(early, late) = tz.from_local_datetime(&local) {
                let hint_offset = self.offset_seconds_at(hint)?;
                let pick = if late.offset().fix().local_minus_utc() == hint_offset {
                    late
                } else {
                    early
                };
                return Some(pick.timestamp_millis());
            }
        }
        self.from_local(local)
    }

    /// The zone's name as Druid/Joda print it (`UTC`, `America/Los_Angeles`, `+05:30`).
    pub fn name(&self) -> String {
        self.to_string()
    }
}

fn local_with(off: &FixedOffset, local: NaiveDateTime) -> Option<i64> {
    let utc =
        local.checked_sub_signed(chrono::TimeDelta::seconds(i64::from(off.local_minus_utc())))?;
    Some(utc.and_utc().timestamp_millis())
}

impl Default for Zone {
    fn default() -> Self {
        Zone::UTC
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Named(tz) => f.write_str(tz.name()),
            Zone::Fixed(off) => write!(f, "{off}"),
        }
    }
}

/// Error for a time zone string that is neither an IANA name nor an offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone '{0}': expected an IANA name such as America/Los_Angeles or an offset such as +05:30")]
pub struct ZoneParseError(pub String);

impl FromStr for Zone {
    type Err = ZoneParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("Z") || t.eq_ignore_ascii_case("UTC") {
            return Ok(Zone::UTC);
        }
        if let Some(off) = parse_offset(t) {
            return Ok(Zone::Fixed(off));
        }
        // Zone ids are case-sensitive, as in Joda.
        t.parse::<Tz>()
            .map(Zone::Named)
            .map_err(|_| ZoneParseError(s.to_string()))
    }
}

impl Zone {
    /// A fixed-offset zone from `+HH`, `+HHMM` or `+HH:MM` (or `-`).
    pub fn from_offset_str(s: &str) -> Option<Zone> {
        parse_offset(s).map(Zone::Fixed)
    }
}

/// Parses `+HH`, `+HHMM`, `+HH:MM` (or `-`) into an offset.
pub(crate) fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with(':') {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    if h > 23 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_offsets() {
        assert_eq!("utc".parse::<Zone>().unwrap(), Zone::UTC);
        assert!("UTC".parse::<Zone>().unwrap().is_utc());
        assert_eq!(
            "America/Los_Angeles".parse::<Zone>().unwrap(),
            Zone::Named(Tz::America__Los_Angeles)
        );
        assert_eq!("+05:30".parse::<Zone>().unwrap().to_string(), "+05:30");
        assert_eq!("-0800".parse::<Zone>().unwrap().to_string(), "-08:00");
        assert!("Mars/Olympus".parse::<Zone>().is_err());
        assert!("+25:00".parse::<Zone>().is_err());
    }

    #[test]
    fn gap_moves_forward_and_overlap_takes_earlier() {
        let la = Zone::Named(Tz::America__Los_Angeles);
        // 2019-03-10 02:30 does not exist in Los Angeles: it becomes 03:30 PDT = 10:30Z.
        let gap =
            NaiveDateTime::parse_from_str("2019-03-10 02:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(la.from_local(gap), Some(1_552_213_800_000));
        // 2019-11-03 01:30 happens twice: the earlier is PDT = 08:30Z.
        let overlap =
            NaiveDateTime::parse_from_str("2019-11-03 01:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(la.from_local(overlap), Some(1_572_769_800_000));
    }
}
