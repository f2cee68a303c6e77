//! Expected values come from Joda-Time 2.12 (what Druid runs), asked the same question.

use super::*;
use proptest::prelude::*;
use serde_json::json;

/// Druid's `Intervals.ETERNITY` as Druid prints it.
const ETERNITY_TEXT: &str = "-146136543-09-08T08:23:32.096Z/146140482-04-24T15:36:27.903Z";

#[test]
fn eternity_parses_and_prints_exactly() {
    let iv = Interval::parse(ETERNITY_TEXT).unwrap();
    assert_eq!(iv, ETERNITY);
    assert_eq!((iv.start, iv.end), (i64::MIN / 2, i64::MAX / 2));
    assert_eq!(iv.to_string(), ETERNITY_TEXT);
}

#[test]
fn parses_every_form_of_jodas_date_time_parser() {
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
        ("2026-11-02T10.5", 1_793_615_400_000),
        ("2026-11-02T10,5", 1_793_615_400_000),
        ("2026-11-02T10:30.5", 1_793_615_430_000),
        ("2026-11-02T1", 1_793_581_200_000),
        ("2026-11-02T10:1", 1_793_613_660_000),
        ("2026-11-02T10:11:12,5", 1_793_614_272_500),
        ("2026-11-02T10:11:12.123456789Z", 1_793_614_272_123),
        ("123456789", 3_895_857_797_385_600_000),
        ("-123456789", -3_895_982_131_737_600_000),
        ("20261102", 639_316_456_041_600_000),
        ("292278994-08-17T07:12:55.807Z", i64::MAX),
        ("-292275055-05-16T16:47:04.192Z", i64::MIN),
        ("292278994-08-17T08:12:55.807+01:00", i64::MAX),
    ] {
        assert_eq!(parse_iso(text), Ok(millis), "{text}");
    }
}

#[test]
fn refuses_what_joda_refuses() {
    for text in [
        "2026-11-02 10:11",
        " 2026",
        "2026-11-02T10:11:12Z ",
        "2026-11-02T10:11:12+5",
        "2026-11-02T10:11:12+0",
        "2026-11-02T10:11:12+24:00",
        "2026-11-02T10:11:12+05:3",
        "2026-11-02T10:11:12.5+05:30:1",
        "2026-11-02T10:11:12.5+",
        "1234567890",
        "2026-02-30",
        "2026-11-02T24:00",
        "2026-11-02T10:60",
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
        "",
        "yesterday",
        "2026-01-01Z",
    ] {
        assert!(parse_iso(text).is_err(), "{text}");
    }
    // Where Joda silently wraps around, the error names the text.
    for text in [
        "292278994-08-17T07:12:55.808Z",
        "-292275055-05-16T16:47:04.191Z",
        "292278994-08-17T07:12:55.807-01:00",
        "999999999",
    ] {
        let e = parse_iso(text).unwrap_err();
        assert!(e.contains(text) && e.contains("range"), "{e}");
    }
    assert!(parse_iso("2026-02-30").unwrap_err().contains("2026-02-30"));
}

#[test]
fn auto_timestamps_read_as_druid_reads_them() {
    for (text, millis) in [
        // Druid keeps the instant and only relabels the zone: the id changes nothing.
        ("2018-12-31 22:00:00 America/New_York", 1_546_293_600_000),
        ("2024-01-01 10:00", 1_704_103_200_000),
        ("2024-01-01 10:00:00+01:00", 1_704_099_600_000),
        ("\"2024-01-01T10:00:00Z\"", 1_704_103_200_000),
        ("2026-01-01 Z", 1_767_225_600_000),
        ("2026-01-01T", 1_767_225_600_000),
        ("2026-W45-1 10:00", 1_793_613_600_000),
        ("2026-306T10", 1_793_613_600_000),
        (" 2024-01-01 ", 1_704_067_200_000),
        ("2024-01-01 10:00 UTC", 1_704_103_200_000),
        ("146140482-04-24T15:36:27.903Z", i64::MAX / 2),
    ] {
        assert_eq!(parse_auto(text), Ok(millis), "{text}");
    }
    for text in [
        "2026-01-01Z",
        "T10:00",
        "2024-01-01 10:00 Nowhere/Zone",
        "2024-01-01  10:00",
    ] {
        assert!(parse_auto(text).is_err(), "{text}");
    }
}

#[test]
fn json_instants_are_trimmed_or_millis() {
    assert_eq!(
        parse_instant(&json!(" 2024-01-01T10:00Z ")),
        Some(1_704_103_200_000)
    );
    assert_eq!(
        parse_instant(&json!(1_704_103_200_000_i64)),
        Some(1_704_103_200_000)
    );
    assert_eq!(parse_instant(&json!("soon")), None);
}

#[test]
fn periods_parse_as_jodas_standard_format() {
    let p = |s: &str| {
        Period::parse(s).map(|p| {
            [
                p.years, p.months, p.weeks, p.days, p.hours, p.minutes, p.seconds, p.millis,
            ]
        })
    };
    assert_eq!(p("P1Y2M3W4DT5H6M7.008S"), Ok([1, 2, 3, 4, 5, 6, 7, 8]));
    assert_eq!(p("P"), Ok([0; 8]));
    assert_eq!(p("p1d"), Ok([0, 0, 0, 1, 0, 0, 0, 0]));
    assert_eq!(p("pt10m"), Ok([0, 0, 0, 0, 0, 10, 0, 0]));
    assert_eq!(p("PT1.5S"), Ok([0, 0, 0, 0, 0, 0, 1, 500]));
    assert_eq!(p("PT1,5S"), Ok([0, 0, 0, 0, 0, 0, 1, 500]));
    assert_eq!(p("PT1.S"), Ok([0, 0, 0, 0, 0, 0, 1, 0]));
    assert_eq!(p("PT.5S"), Ok([0, 0, 0, 0, 0, 0, 0, 500]));
    assert_eq!(p("PT-0.5S"), Ok([0, 0, 0, 0, 0, 0, 0, -500]));
    assert_eq!(p("PT-1.5S"), Ok([0, 0, 0, 0, 0, 0, -1, -500]));
    assert_eq!(p("PT1.123456789S"), Ok([0, 0, 0, 0, 0, 0, 1, 123]));
    assert_eq!(p("PT+5M"), Ok([0, 0, 0, 0, 0, 5, 0, 0]));
    assert_eq!(p("P-1D"), Ok([0, 0, 0, -1, 0, 0, 0, 0]));
    assert_eq!(p("P1W1D"), Ok([0, 0, 1, 1, 0, 0, 0, 0]));
    assert_eq!(p("P2147483647Y"), Ok([i32::MAX, 0, 0, 0, 0, 0, 0, 0]));
    for bad in [
        "PT",
        "P1DT",
        "P1.5D",
        "PT1.5M",
        "P1D1D",
        "PT1M1H",
        "P1 D",
        "P1DX",
        "PT10H5",
        "PT1.5S ",
        "PT1S2",
        "PT1.2.3S",
        "P+-1D",
        "P2147483648Y",
        "P9999999999Y",
        "PT12345.1234567S",
        "1D",
        "",
    ] {
        let e = Period::parse(bad).unwrap_err();
        assert!(e.contains(&format!("[{bad}]")), "{bad}: {e}");
    }
    assert_eq!(Period::parse("PT-1.5S").unwrap().to_string(), "PT-1.500S");
    assert_eq!(Period::parse("P0D").unwrap().to_string(), "PT0S");
}

#[test]
fn periods_add_field_by_field_and_never_overflow_silently() {
    let iv = |s: &str| Interval::parse(s).map(|i| i.to_string());
    let ok = |s: &str| iv(s).unwrap();
    assert_eq!(
        ok("2024-02-29/P1Y1M"),
        "2024-02-29T00:00:00.000Z/2025-03-28T00:00:00.000Z"
    );
    assert_eq!(
        ok("P1Y1M/2025-03-29"),
        "2024-02-29T00:00:00.000Z/2025-03-29T00:00:00.000Z"
    );
    assert_eq!(
        ok("P1M1D/2024-03-31"),
        "2024-02-28T00:00:00.000Z/2024-03-31T00:00:00.000Z"
    );
    assert_eq!(
        ok("2026-01-31/P1M"),
        "2026-01-31T00:00:00.000Z/2026-02-28T00:00:00.000Z"
    );
    assert_eq!(
        ok("2026-01-01/p1m"),
        "2026-01-01T00:00:00.000Z/2026-02-01T00:00:00.000Z"
    );
    assert_eq!(
        ok("2026-01-01T00:00+05:00/PT1H"),
        "2025-12-31T19:00:00.000Z/2025-12-31T20:00:00.000Z"
    );
    assert_eq!(
        ok("T10/T11"),
        "1970-01-01T10:00:00.000Z/1970-01-01T11:00:00.000Z"
    );
    assert_eq!(
        ok("146140482-04-24T15:36:27.903Z/P1D"),
        "146140482-04-24T15:36:27.903Z/146140482-04-25T15:36:27.903Z"
    );
    assert_eq!(
        ok("P1D/-146136543-09-08T08:23:32.096Z"),
        "-146136543-09-07T08:23:32.096Z/-146136543-09-08T08:23:32.096Z"
    );
    // Far past the range: an error naming the period and the instant, not a panic.
    assert_eq!(
        ok("2024-01-01/P2147483647M"),
        "2024-01-01T00:00:00.000Z/178958994-08-01T00:00:00.000Z"
    );
    for huge in [
        "2024-01-01/P2147483647Y",
        "146140482-04-24T15:36:27.903Z/P2147483647M",
        "P2147483647W/-292275054-01-01",
        "292278994-01-01/P2147483647D",
    ] {
        let e = iv(huge).unwrap_err();
        assert!(e.contains(huge) && e.contains("range of instants"), "{e}");
    }
    let e = Period::parse("PT2147483647H")
        .unwrap()
        .add_to(i64::MAX - 5, 1, chrono_tz::Tz::UTC)
        .unwrap_err();
    assert!(e.contains("PT2147483647H"), "{e}");
}

#[test]
fn interval_errors_say_what_is_wrong() {
    for (text, why) in [
        ("2024-01-01", "'/'"),
        ("/2024-01-01", "both sides"),
        ("P1D/P1D", "two durations"),
        ("2026/2025", "greater than the start"),
        ("2024-01-01/nonsense", "Invalid format"),
        ("2024-01-01/P1.5D", "Invalid period"),
    ] {
        let e = Interval::parse(text).unwrap_err();
        assert!(
            e.starts_with(&format!("Invalid interval [{text}]")) && e.contains(why),
            "{e}"
        );
    }
    assert!(Interval::parse("2026-01-01/2026-01-01").is_ok());
}

#[test]
fn named_buckets() {
    let t = parse_iso("2024-01-03T10:17:42.123Z").unwrap();
    let b = |g: &str| iso(Granularity::named(g).unwrap().bucket_start(t));
    assert_eq!(b("second"), "2024-01-03T10:17:42.000Z");
    assert_eq!(b("FIFTEEN_MINUTE"), "2024-01-03T10:15:00.000Z");
    assert_eq!(b("hour"), "2024-01-03T10:00:00.000Z");
    assert_eq!(b("EIGHT_HOUR"), "2024-01-03T08:00:00.000Z");
    assert_eq!(b("day"), "2024-01-03T00:00:00.000Z");
    assert_eq!(b("week"), "2024-01-01T00:00:00.000Z");
    assert_eq!(b("month"), "2024-01-01T00:00:00.000Z");
    assert_eq!(b("quarter"), "2024-01-01T00:00:00.000Z");
    let h = Granularity::named("hour").unwrap().bucket(t);
    assert_eq!(
        h.to_string(),
        "2024-01-03T10:00:00.000Z/2024-01-03T11:00:00.000Z"
    );
    assert!(Granularity::named("fortnight").is_err());
    let zero = Granularity::from_json(&json!({"type":"period","period":"PT0S"}));
    assert!(zero.unwrap_err().contains("zero period"));
}

#[test]
fn zoned_day() {
    let g = Granularity::from_json(
        &json!({"type":"period","period":"P1D","timeZone":"America/Los_Angeles"}),
    )
    .unwrap();
    let t = parse_iso("2024-03-10T12:00:00Z").unwrap();
    assert_eq!(iso(g.bucket_start(t)), "2024-03-10T08:00:00.000Z");
    assert_eq!(iso(g.next(g.bucket_start(t))), "2024-03-11T07:00:00.000Z");
}

/// Buckets across DST gaps, with the instants Joda's `roundFloor` and `add` give.
#[test]
fn gaps_are_skipped_as_joda_skips_them() {
    let zoned = |p: &str, tz: &str| {
        Granularity::from_json(&json!({"type":"period","period":p,"timeZone":tz})).unwrap()
    };
    // Samoa skipped 2011-12-30: the 29th (at -10:00) ends where the 31st (at +14:00) starts.
    let day = zoned("P1D", "Pacific/Apia");
    assert_eq!(
        day.bucket(1_325_239_199_999),
        Interval {
            start: 1_325_152_800_000,
            end: 1_325_239_200_000
        }
    );
    assert_eq!(
        day.bucket(1_325_282_400_000),
        Interval {
            start: 1_325_239_200_000,
            end: 1_325_325_600_000
        }
    );
    let hour = zoned("PT1H", "Pacific/Apia");
    assert_eq!(hour.bucket_start(1_325_239_199_999), 1_325_235_600_000);
    assert_eq!(hour.next(1_325_235_600_000), 1_325_239_200_000);
    // Los Angeles' one-hour gap and the repeated hour.
    let hour_la = zoned("PT1H", "America/Los_Angeles");
    assert_eq!(hour_la.bucket_start(1_552_213_800_000), 1_552_212_000_000);
    assert_eq!(hour_la.next(1_552_208_400_000), 1_552_212_000_000);
    assert_eq!(
        hour_la.bucket_start(1_572_771_600_000 + 1_800_000),
        1_572_771_600_000
    );
    assert_eq!(hour_la.next(1_572_768_000_000), 1_572_771_600_000);
}

#[test]
fn buckets_reach_the_ends_of_time() {
    let day = Granularity::named("day").unwrap();
    assert_eq!(
        day.bucket(i64::MAX / 2).to_string(),
        "146140482-04-24T00:00:00.000Z/146140482-04-25T00:00:00.000Z"
    );
    let month = Granularity::named("month").unwrap();
    assert_eq!(
        month.bucket(i64::MIN / 2).to_string(),
        "-146136543-09-01T00:00:00.000Z/-146136543-10-01T00:00:00.000Z"
    );
    let all = Granularity::All.bucket(0);
    assert_eq!(all, ETERNITY);
    // The last bucket of time ends at the last instant rather than wrapping around.
    let year = Granularity::named("year").unwrap();
    assert_eq!(year.next(year.bucket_start(i64::MAX)), i64::MAX);
    let duration =
        Granularity::from_json(&json!({"type":"duration","duration":7,"origin":"146140482"}))
            .unwrap();
    assert!(duration.bucket_start(i64::MIN / 2) <= i64::MIN / 2);
}

proptest! {
    #[test]
    fn print_parse_round_trip_over_eternity(t in i64::MIN / 2..=i64::MAX / 2) {
        prop_assert_eq!(parse_iso(&iso(t)), Ok(t));
        prop_assert_eq!(parse_auto(&iso(t)), Ok(t));
    }

    #[test]
    fn print_parse_round_trip_over_i64(t in any::<i64>()) {
        prop_assert_eq!(parse_iso(&iso(t)), Ok(t));
    }

    #[test]
    fn intervals_round_trip(a in i64::MIN / 2..=i64::MAX / 2, b in i64::MIN / 2..=i64::MAX / 2) {
        let iv = Interval { start: a.min(b), end: a.max(b) };
        prop_assert_eq!(Interval::parse(&iv.to_string()), Ok(iv));
    }

    #[test]
    fn periods_round_trip(f in proptest::array::uniform8(-1000i32..1000)) {
        let p = Period { years: f[0], months: f[1], weeks: f[2], days: f[3], hours: f[4], minutes: f[5], seconds: f[6].abs(), millis: f[7].abs() % 1000 };
        prop_assert_eq!(Period::parse(&p.to_string()), Ok(p));
    }

    #[test]
    fn buckets_hold_their_instants(
        t in i64::MIN / 2..i64::MAX / 2,
        g in prop::sample::select(vec!["second", "fifteen_minute", "hour", "day", "week", "month", "quarter", "year"]),
        tz in prop::sample::select(vec!["UTC", "America/Los_Angeles", "Pacific/Apia", "Asia/Kolkata"]),
    ) {
        let named = Granularity::named(g).unwrap();
        let Granularity::Period { period, .. } = named else { unreachable!() };
        let gr = Granularity::Period { period, tz: tz.parse().unwrap(), origin: None };
        let b = gr.bucket(t);
        prop_assert!(b.start <= t && t < b.end, "{} not in {} for {} in {}", iso(t), b, g, tz);
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(s in "[-+0-9TtWwZz:.,/P ]{0,40}") {
        let _ = parse_iso(&s);
        let _ = parse_auto(&s);
        let _ = Period::parse(&s);
        if let Ok(iv) = Interval::parse(&s) {
            prop_assert!(iv.start <= iv.end);
        }
    }
}
