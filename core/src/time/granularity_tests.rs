use super::*;
use proptest::prelude::*;

fn at(s: &str) -> i64 {
    parse_iso_datetime(s, Zone::UTC).unwrap()
}

fn iso(ts: i64) -> String {
    format_iso_millis(ts)
}

fn g(json: &str) -> Granularity {
    serde_json::from_str(json).unwrap()
}

#[test]
fn names_are_case_insensitive() {
    for n in NamedGranularity::ALL {
        assert_eq!(
            Granularity::from_name(&n.name().to_lowercase()),
            Ok(Granularity::Named(n))
        );
        assert_eq!(g(&format!("\"{}\"", n.name())), Granularity::Named(n));
    }
    assert_eq!(g("\"none\""), Granularity::None);
    assert_eq!(g("\"All\""), Granularity::All);
    assert_eq!(g(r#"{"type":"none"}"#), Granularity::None);
    assert_eq!(g(r#"{"type":"all"}"#), Granularity::All);
    let e = serde_json::from_str::<Granularity>("\"fortnight\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown granularity 'fortnight'") && e.contains("FIVE_MINUTE"),
        "{e}"
    );
}

#[test]
fn named_buckets_truncate_calendar_fields() {
    let t = at("2019-05-15T13:47:23.456Z"); // a Wednesday
    let cases = [
        (
            "SECOND",
            "2019-05-15T13:47:23.000Z",
            "2019-05-15T13:47:24.000Z",
        ),
        (
            "MINUTE",
            "2019-05-15T13:47:00.000Z",
            "2019-05-15T13:48:00.000Z",
        ),
        (
            "FIVE_MINUTE",
            "2019-05-15T13:45:00.000Z",
            "2019-05-15T13:50:00.000Z",
        ),
        (
            "TEN_MINUTE",
            "2019-05-15T13:40:00.000Z",
            "2019-05-15T13:50:00.000Z",
        ),
        (
            "FIFTEEN_MINUTE",
            "2019-05-15T13:45:00.000Z",
            "2019-05-15T14:00:00.000Z",
        ),
        (
            "THIRTY_MINUTE",
            "2019-05-15T13:30:00.000Z",
            "2019-05-15T14:00:00.000Z",
        ),
        (
            "HOUR",
            "2019-05-15T13:00:00.000Z",
            "2019-05-15T14:00:00.000Z",
        ),
        (
            "SIX_HOUR",
            "2019-05-15T12:00:00.000Z",
            "2019-05-15T18:00:00.000Z",
        ),
        (
            "EIGHT_HOUR",
            "2019-05-15T08:00:00.000Z",
            "2019-05-15T16:00:00.000Z",
        ),
        (
            "DAY",
            "2019-05-15T00:00:00.000Z",
            "2019-05-16T00:00:00.000Z",
        ),
        (
            "WEEK",
            "2019-05-13T00:00:00.000Z",
            "2019-05-20T00:00:00.000Z",
        ),
        (
            "MONTH",
            "2019-05-01T00:00:00.000Z",
            "2019-06-01T00:00:00.000Z",
        ),
        (
            "QUARTER",
            "2019-04-01T00:00:00.000Z",
            "2019-07-01T00:00:00.000Z",
        ),
        (
            "YEAR",
            "2019-01-01T00:00:00.000Z",
            "2020-01-01T00:00:00.000Z",
        ),
    ];
    for (name, start, end) in cases {
        let b = Granularity::from_name(name).unwrap().bucket(t);
        assert_eq!(
            (iso(b.start).as_str(), iso(b.end).as_str()),
            (start, end),
            "{name}"
        );
    }
    assert_eq!(Granularity::None.bucket(t), Interval::new(t, t + 1));
    assert_eq!(
        Granularity::All.bucket(t),
        Interval::new(i64::MIN, i64::MAX)
    );
    // Before the epoch, truncation still floors.
    assert_eq!(
        iso(Granularity::HOUR.bucket_start(-1)),
        "1969-12-31T23:00:00.000Z"
    );
}

#[test]
fn period_in_a_zone_follows_local_midnight_across_dst() {
    let day_la = g(r#"{"type":"period","period":"P1D","timeZone":"America/Los_Angeles"}"#);
    // 2019-03-10 (spring forward) is 23 h long; 2019-11-03 (fall back) is 25 h long.
    let spring = day_la.bucket(at("2019-03-10T20:00:00Z"));
    assert_eq!(iso(spring.start), "2019-03-10T08:00:00.000Z");
    assert_eq!(spring.duration_millis(), 23 * 3_600_000);
    let fall = day_la.bucket(at("2019-11-03T20:00:00Z"));
    assert_eq!(iso(fall.start), "2019-11-03T07:00:00.000Z");
    assert_eq!(fall.duration_millis(), 25 * 3_600_000);
    // Hourly buckets in the repeated hour stay one hour long.
    let hour_la = g(r#"{"type":"period","period":"PT1H","timeZone":"America/Los_Angeles"}"#);
    assert_eq!(
        iso(hour_la.bucket_start(at("2019-11-03T08:30:00Z"))),
        "2019-11-03T08:00:00.000Z"
    );
    assert_eq!(
        iso(hour_la.bucket_start(at("2019-11-03T09:30:00Z"))),
        "2019-11-03T09:00:00.000Z"
    );
}

/// Buckets across DST gaps, with the instants Joda's `roundFloor` gives.
#[test]
fn gaps_in_a_zone_are_skipped_as_joda_skips_them() {
    // Samoa skipped 2011-12-30: the 29th (at -10:00) ends where the 31st (at +14:00) starts.
    let day_apia = g(r#"{"type":"period","period":"P1D","timeZone":"Pacific/Apia"}"#);
    let b29 = day_apia.bucket(1_325_239_199_999);
    assert_eq!((b29.start, b29.end), (1_325_152_800_000, 1_325_239_200_000));
    let b31 = day_apia.bucket(1_325_282_400_000);
    assert_eq!((b31.start, b31.end), (1_325_239_200_000, 1_325_325_600_000));
    let hour_apia = g(r#"{"type":"period","period":"PT1H","timeZone":"Pacific/Apia"}"#);
    assert_eq!(
        hour_apia.bucket(1_325_239_199_999),
        Interval::new(1_325_235_600_000, 1_325_239_200_000)
    );
    // Los Angeles' one-hour gap: 03:30 PDT is in the hour from 03:00 PDT, 02:00 never starts.
    let hour_la = g(r#"{"type":"period","period":"PT1H","timeZone":"America/Los_Angeles"}"#);
    assert_eq!(hour_la.bucket_start(1_552_213_800_000), 1_552_212_000_000);
    assert_eq!(
        hour_la.next_bucket_start(1_552_208_400_000),
        1_552_212_000_000
    );
}

#[test]
fn buckets_reach_the_ends_of_time() {
    let day = Granularity::DAY;
    assert_eq!(
        day.bucket(i64::MAX / 2).to_string(),
        "146140482-04-24T00:00:00.000Z/146140482-04-25T00:00:00.000Z"
    );
    let month = Granularity::Named(NamedGranularity::Month);
    assert_eq!(
        month.bucket(i64::MIN / 2).to_string(),
        "-146136543-09-01T00:00:00.000Z/-146136543-10-01T00:00:00.000Z"
    );
    let week_la = g(r#"{"type":"period","period":"P1W","timeZone":"America/Los_Angeles"}"#);
    let b = week_la.bucket(i64::MAX / 2);
    assert!(b.start <= i64::MAX / 2 && i64::MAX / 2 < b.end);
    assert_eq!(b.duration_millis(), 7 * 86_400_000);
}

#[test]
fn origin_and_compound_periods_align_to_the_origin() {
    let gr = g(r#"{"type":"period","period":"PT1H30M"}"#);
    assert_eq!(
        iso(gr.bucket_start(at("2019-01-01T02:00:00Z"))),
        "2019-01-01T01:30:00.000Z"
    );
    let with_origin = g(r#"{"type":"period","period":"P1D","origin":"2019-01-01T06:00:00Z"}"#);
    let b = with_origin.bucket(at("2019-01-05T03:00:00Z"));
    assert_eq!(
        b.to_string(),
        "2019-01-04T06:00:00.000Z/2019-01-05T06:00:00.000Z"
    );
    let monthly = g(r#"{"type":"period","period":"P1M","origin":"2019-01-15T00:00:00Z"}"#);
    assert_eq!(
        iso(monthly.bucket_start(at("2018-12-20T00:00:00Z"))),
        "2018-12-15T00:00:00.000Z"
    );
    let dur = g(r#"{"type":"duration","duration":3600000,"origin":"1970-01-01T00:30:00Z"}"#);
    assert_eq!(
        iso(dur.bucket_start(at("2019-01-01T03:10:00Z"))),
        "2019-01-01T02:30:00.000Z"
    );
    let dur_str = g(r#"{"type":"duration","duration":"60000"}"#);
    assert_eq!(dur_str.bucket_start(-1), -60_000);
}

#[test]
fn bad_objects_say_why() {
    let err = |j: &str| {
        serde_json::from_str::<Granularity>(j)
            .unwrap_err()
            .to_string()
    };
    assert!(err(r#"{"type":"period","period":"PT1X"}"#).contains("ISO-8601 period"));
    assert!(err(r#"{"type":"period"}"#).contains("needs a \"period\""));
    assert!(err(r#"{"type":"period","period":"PT0S"}"#).contains("must be positive"));
    assert!(
        err(r#"{"type":"period","period":"PT1H","timeZone":"Nowhere/Land"}"#)
            .contains("unknown time zone")
    );
    assert!(err(r#"{"type":"duration","duration":0}"#).contains("positive"));
    assert!(err(r#"{"type":"weekly"}"#).contains("unknown granularity type"));
    assert!(err("42").contains("granularity name"));
}

#[test]
fn serializes_to_druid_json() {
    let s = |g: &Granularity| serde_json::to_string(g).unwrap();
    assert_eq!(s(&Granularity::HOUR), "\"HOUR\"");
    assert_eq!(s(&Granularity::None), r#"{"type":"none"}"#);
    assert_eq!(s(&Granularity::All), r#"{"type":"all"}"#);
    let p = g(
        r#"{"type":"period","period":"pt1h","timeZone":"America/Los_Angeles","origin":"2020-01-01T00:30:00Z"}"#,
    );
    assert_eq!(
        s(&p),
        r#"{"type":"period","period":"PT1H","timeZone":"America/Los_Angeles","origin":"2020-01-01T00:30:00.000Z"}"#
    );
    assert_eq!(g(&s(&p)), p);
    let d = g(r#"{"type":"duration","duration":60000}"#);
    assert_eq!(
        s(&d),
        r#"{"type":"duration","duration":60000,"origin":"1970-01-01T00:00:00.000Z"}"#
    );
    assert_eq!(g(&s(&d)), d);
}

fn arb_granularity() -> impl Strategy<Value = Granularity> {
    let named = prop::sample::select(NamedGranularity::ALL.to_vec()).prop_map(Granularity::Named);
    let zones = prop::sample::select(vec![
        "UTC",
        "America/Los_Angeles",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
        "Asia/Kolkata",
    ]);
    let periods = prop::sample::select(vec![
        "PT1H", "PT6H", "PT15M", "P1D", "P2D", "P1W", "P1M", "P3M", "P1Y", "PT1H30M", "P1DT12H",
    ]);
    let period = (
        periods,
        zones,
        prop::option::of(-2_000_000_000_000i64..2_000_000_000_000),
    )
        .prop_map(|(p, z, o)| {
            Granularity::Period(
                PeriodGranularity::new(Period::parse(p).unwrap(), z.parse().unwrap(), o).unwrap(),
            )
        });
    let duration = (1i64..100_000_000, -1_000_000_000i64..1_000_000_000)
        .prop_map(|(d, o)| Granularity::Duration(DurationGranularity::new(d, o).unwrap()));
    prop_oneof![named, period, duration, Just(Granularity::None)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn buckets_partition_time(gr in arb_granularity(), ts in -3_000_000_000_000i64..4_000_000_000_000) {
        let b = gr.bucket(ts);
        prop_assert!(b.start <= ts && ts < b.end, "{} not in {:?} for {}", ts, b, gr);
        prop_assert_eq!(gr.bucket_start(b.start), b.start);
        prop_assert_eq!(gr.bucket_start(b.end - 1), b.start);
        prop_assert_eq!(gr.bucket_start(b.end), b.end);
    }

    #[test]
    fn buckets_partition_all_of_eternity(gr in arb_granularity(), ts in i64::MIN / 2..i64::MAX / 2) {
        let b = gr.bucket(ts);
        prop_assert!(b.start <= ts && ts < b.end, "{} not in {:?} for {}", ts, b, gr);
        prop_assert_eq!(gr.bucket_start(b.start), b.start);
        prop_assert_eq!(gr.bucket_start(b.end - 1), b.start);
    }

    #[test]
    fn bucket_start_is_monotone(gr in arb_granularity(), a in -3_000_000_000_000i64..4_000_000_000_000, d in 0i64..10_000_000_000) {
        prop_assert!(gr.bucket_start(a) <= gr.bucket_start(a + d));
    }

    #[test]
    fn local_day_buckets_start_at_local_midnight(ts in 0i64..4_000_000_000_000) {
        let la: Zone = "America/Los_Angeles".parse().unwrap();
        let gr = Granularity::Period(PeriodGranularity::new(Period::days(1), la, None).unwrap());
        let b = gr.bucket(ts);
        let start = la.to_local(b.start).unwrap();
        prop_assert_eq!(start.time(), chrono::NaiveTime::MIN);
        prop_assert!([23, 24, 25].contains(&(b.duration_millis() / 3_600_000)));
        prop_assert_eq!(b.duration_millis() % 3_600_000, 0);
    }

    #[test]
    fn serde_round_trip(gr in arb_granularity()) {
        let json = serde_json::to_string(&gr).unwrap();
        prop_assert_eq!(serde_json::from_str::<Granularity>(&json).unwrap(), gr);
    }
}
