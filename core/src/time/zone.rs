//! Time zones for calendar arithmetic: IANA zones (chrono-tz) and fixed offsets, resolved like Joda-Time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

use super::civil;

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

    /// Offset from UTC in seconds at the instant `ts` (epoch millis); defined for every `i64`.
    pub fn offset_seconds_at(&self, ts: i64) -> Option<i32> {
        Some((self.offset_millis_at(ts) / 1000) as i32)
    }

    /// Offset from UTC in millis at the instant `ts`, for every `i64`.
    ///
    /// Zones keep their last yearly rules after 2099 and their first offset before their first
    /// transition, as in Joda (see `lookup_shift`).
    pub fn offset_millis_at(&self, ts: i64) -> i64 {
        match self {
            Zone::Fixed(off) => i64::from(off.local_minus_utc()) * 1000,
            Zone::Named(tz) => {
                let near = ts - lookup_shift(ts);
                DateTime::from_timestamp_millis(near).map_or(0, |utc| {
                    let secs = tz
                        .offset_from_utc_datetime(&utc.naive_utc())
                        .fix()
                        .local_minus_utc();
                    i64::from(secs) * 1000
                })
            }
        }
    }

    /// The local wall-clock time of the instant `ts`, as local millis (see the `civil` module);
    /// `None` when adding the offset leaves the `i64` range.
    pub fn local_millis(&self, ts: i64) -> Option<i64> {
        ts.checked_add(self.offset_millis_at(ts))
    }

    /// The local wall-clock time of the instant `ts` (epoch millis); `None` outside chrono's range.
    pub fn to_local(&self, ts: i64) -> Option<NaiveDateTime> {
        naive_from_local_millis(self.local_millis(ts)?)
    }

    /// The instant of a wall-clock time given as local millis, resolved as Joda's parser does
    /// (`DateTimeZone.getOffsetFromLocal`).
    ///
    /// A time that occurs twice (autumn overlap) resolves to the earlier instant. A time skipped
    /// by a gap is read with the offset in force before the gap, so it lands after the gap,
    /// later by the gap's length (02:30 in a 02:00-03:00 gap becomes 03:30; in Pacific/Apia,
    /// which skipped 2011-12-30 entirely, 12:00 that day becomes 12:00 on the 31st), as Joda's
    /// `convertLocalToUTC(local, false)` does. `None` outside the `i64` range.
    pub fn instant_of_local(&self, local: i64) -> Option<i64> {
        self.resolve_local(local, None)
    }

    /// Like [`Zone::instant_of_local`], but keeps the offset in force at `hint` (an instant)
    /// whenever it fits the wall-clock time, as Joda's field arithmetic does
    /// (`convertLocalToUTC(local, false, hint)`); this keeps truncation and period steps
    /// monotone across the end of DST.
    pub fn instant_of_local_near(&self, local: i64, hint: i64) -> Option<i64> {
        self.resolve_local(local, Some(hint))
    }

    fn resolve_local(&self, local: i64, hint: Option<i64>) -> Option<i64> {
        let tz = match self {
            Zone::Fixed(off) => {
                return local.checked_sub(i64::from(off.local_minus_utc()) * 1000);
            }
            Zone::Named(tz) => tz,
        };
        if let Some(hint) = hint {
            let offset = self.offset_millis_at(hint);
            if let Some(ts) = local.checked_sub(offset) {
                if self.offset_millis_at(ts) == offset {
                    return Some(ts);
                }
            }
        }
        // Resolve a wall-clock time shifted near the present, then shift the answer back.
        let shift = lookup_shift(local);
        let near = local - shift;
        let naive = naive_from_local_millis(near)?;
        let millis = |dt: DateTime<Tz>| dt.timestamp_millis();
        let resolved = match tz.from_local_datetime(&naive) {
            LocalResult::Single(dt) => millis(dt),
            LocalResult::Ambiguous(early, late) => {
                let (early, late) = (millis(early), millis(late));
                // Joda, when the hint's offset does not fit: the offset at `local - offset(local)`.
                let first = self.offset_millis_at(near);
                let joda = near - self.offset_millis_at(near - first);
                if hint.is_some() && joda == late {
                    late
                } else {
                    early
                }
            }
            LocalResult::None => {
                // The two offsets around the gap; the smaller one was in force before it.
                let first = self.offset_millis_at(near);
                let second = self.offset_millis_at(near - first);
                near - first.min(second)
            }
        };
        resolved.checked_add(shift)
    }

    /// The instant (epoch millis) of a local wall-clock time; see [`Zone::instant_of_local`].
    pub fn from_local(&self, local: NaiveDateTime) -> Option<i64> {
        self.instant_of_local(local.and_utc().timestamp_millis())
    }

    /// Like [`Zone::from_local`], but in an overlap prefer the offset in force at `hint` (an
    /// instant), as Joda's field setters do; see [`Zone::instant_of_local_near`].
    pub fn from_local_near(&self, local: NaiveDateTime, hint: i64) -> Option<i64> {
        self.instant_of_local_near(local.and_utc().timestamp_millis(), hint)
    }

    /// The zone's name as Druid/Joda print it (`UTC`, `America/Los_Angeles`, `+05:30`).
    pub fn name(&self) -> String {
        self.to_string()
    }
}

/// 400 Gregorian years in millis: calendar dates and weekdays repeat after this.
const CYCLE_MILLIS: i64 = civil::DAYS_PER_CYCLE * civil::MILLIS_PER_DAY;
/// Instants this far before the epoch (100,000 years) are looked up 400-year cycles later;
/// every zone is still on its first offset (local mean time) there, as in Joda.
const FAR_PAST: i64 = -250 * CYCLE_MILLIS;
/// chrono-tz lists each zone's transitions up to the end of 2099 only.
const RULES_END_YEAR: i64 = 2100;
/// Years with the same calendar as any later one (14 kinds: leap or not, weekday of January
/// 1st) all occur within these 28 years.
const SAME_CALENDAR_YEARS: std::ops::RangeInclusive<i64> = 2072..=2099;

/// Millis to take off `ms` (an instant or a wall-clock time) before asking chrono-tz, and to
/// add back after: 0 within reach of its tables. From 2100 on, Joda keeps applying a zone's last
/// yearly rules, so the lookup moves to the year of 2072..=2099 with the same calendar, where
/// those rules fall on the same dates. Before 100,000 BCE, whole 400-year cycles later.
fn lookup_shift(ms: i64) -> i64 {
    if ms < FAR_PAST {
        return -(((FAR_PAST - ms) / CYCLE_MILLIS + 1) * CYCLE_MILLIS);
    }
    let (year, _, _) = civil::civil_from_days(ms.div_euclid(civil::MILLIS_PER_DAY));
    if year < RULES_END_YEAR {
        return 0;
    }
    let calendar = |y: i64| {
        let jan1 = civil::days_from_civil(y, 1, 1).unwrap_or(0);
        (jan1, civil::is_leap(y), civil::weekday(jan1))
    };
    let (jan1, leap, weekday) = calendar(year);
    SAME_CALENDAR_YEARS
        .map(calendar)
        .find(|(_, l, w)| (*l, *w) == (leap, weekday))
        .map_or(0, |(same, _, _)| (jan1 - same) * civil::MILLIS_PER_DAY)
}

fn naive_from_local_millis(local: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_millis(local).map(|d| d.naive_utc())
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

    fn local(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    // Expected instants below are what Joda-Time 2.12 answers.
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
        // East of Greenwich too: Berlin's 02:30 gap and overlap.
        let berlin = Zone::Named(Tz::Europe__Berlin);
        assert_eq!(
            berlin.instant_of_local(local("2019-03-31T02:30:00.000")),
            Some(1_553_995_800_000)
        );
        assert_eq!(
            berlin.instant_of_local(local("2019-10-27T02:30:00.000")),
            Some(1_572_136_200_000)
        );
    }
    #[test]
    fn a_whole_skipped_day_moves_forward_by_a_day() {
        // Samoa went from -10:00 to +14:00 at the end of 2011-12-29: 2011-12-30 never happened.
        let apia = Zone::Named(Tz::Pacific__Apia);
        assert_eq!(
            apia.instant_of_local(local("2011-12-29T23:59:59.999")),
            Some(1_325_239_199_999)
        );
        assert_eq!(
            apia.instant_of_local(local("2011-12-30T00:00:00.000")),
            Some(1_325_239_200_000)
        );
        // Noon on the missing day is read at -10:00: 22:00Z, noon on the 31st in Apia.
        assert_eq!(
            apia.instant_of_local(local("2011-12-30T12:00:00.000")),
            Some(1_325_282_400_000)
        );
        assert_eq!(
            apia.local_millis(1_325_282_400_000),
            Some(local("2011-12-31T12:00:00.000"))
        );
        assert_eq!(
            apia.instant_of_local(local("2011-12-31T00:00:00.000")),
            Some(1_325_239_200_000)
        );
        // Field arithmetic from the day before lands in the gap and moves forward the same way.
        assert_eq!(
            apia.instant_of_local_near(local("2011-12-30T12:00:00.000"), 1_325_199_600_000),
            Some(1_325_282_400_000)
        );
    }

    #[test]
    fn a_hint_picks_the_side_of_an_overlap() {
        let berlin = Zone::Named(Tz::Europe__Berlin);
        let l = local("2019-10-27T02:30:00.000");
        // Hint in summer time (+02:00): the first 02:30; in winter time (+01:00): the second.
        assert_eq!(
            berlin.instant_of_local_near(l, 1_572_130_800_000),
            Some(1_572_136_200_000)
        );
        assert_eq!(
            berlin.instant_of_local_near(l, 1_572_170_400_000),
            Some(1_572_139_800_000)
        );
    }

    #[test]
    fn offsets_reach_every_instant() {
        let la = Zone::Named(Tz::America__Los_Angeles);
        // Before the first transition: local mean time, -07:52:58.
        assert_eq!(la.offset_millis_at(i64::MIN), -28_378_000);
        assert_eq!(la.offset_millis_at(-9_000_000_000_000_000), -28_378_000);
        // Far ahead, daylight saving time still starts and ends as the last rules say.
        let at = |y, m, d| civil::days_from_civil(y, m, d).unwrap() * 86_400_000;
        for year in [2100, 2150, 100_000, 146_140_482] {
            assert_eq!(la.offset_millis_at(at(year, 1, 15)), -28_800_000, "{year}");
            assert_eq!(la.offset_millis_at(at(year, 7, 15)), -25_200_000, "{year}");
        }
        assert_eq!(la.local_millis(i64::MIN), None);
        let fixed: Zone = "+05:30".parse().unwrap();
        assert_eq!(fixed.instant_of_local(i64::MIN + 1_000), None);
        assert_eq!(fixed.local_millis(i64::MAX - 1_000), None);
    }

    proptest::proptest! {
        #[test]
        fn local_round_trip_in_any_year(ts in i64::MIN / 2..i64::MAX / 2) {
            for zone in [Zone::UTC, Zone::Named(Tz::America__Los_Angeles), Zone::Named(Tz::Pacific__Apia), "-03:30".parse().unwrap()] {
                let local = zone.local_millis(ts).unwrap();
                // Every wall-clock time that happened maps back to an instant showing it.
                let back = zone.instant_of_local(local).unwrap();
                proptest::prop_assert_eq!(zone.local_millis(back), Some(local), "{} in {}", ts, zone);
                proptest::prop_assert!(back <= ts);
                proptest::prop_assert_eq!(zone.instant_of_local_near(local, ts), Some(ts));
            }
        }
    }
}
