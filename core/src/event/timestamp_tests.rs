use super::*;
use crate::event::Event;
use bytes::Bytes;
use proptest::prelude::*;

fn ex(format: &str) -> TimestampExtractor {
    TimestampExtractor::new(&TimestampSpec::new("ts", format)).unwrap()
}

const T: i64 = 1_546_311_600_000; // 2019-01-01T03:00:00Z

#[test]
fn every_named_format() {
    let cases: &[(&str, &str, i64)] = &[
        ("auto", r#"{"ts":1546311600000}"#, T),
        ("auto", r#"{"ts":"1546311600000"}"#, T),
        ("auto", r#"{"ts":"2019-01-01T03:00:00Z"}"#, T),
        ("auto", r#"{"ts":"2019-01-01 04:00:00+01:00"}"#, T),
        // Druid's `auto` keeps the instant read before a zone id (as UTC) and only relabels
        // the zone: the row is stored at 22:00Z, not 03:00Z.
        (
            "AUTO",
            r#"{"ts":"2018-12-31 22:00:00 America/New_York"}"#,
            T - 5 * 3_600_000,
        ),
        ("iso", r#"{"ts":"2019-01-01T03:00:00.000Z"}"#, T),
        ("iso", r#"{"ts":"\"2019-01-01T03:00:00Z\""}"#, T),
        ("iso", r#"{"ts":2019}"#, 1_546_300_800_000),
        ("millis", r#"{"ts":1546311600000}"#, T),
        ("millis", r#"{"ts":"1546311600000"}"#, T),
        ("millis", r#"{"ts":1546311600000.9}"#, T),
        ("posix", r#"{"ts":1546311600}"#, T),
        ("posix", r#"{"ts":"1546311600"}"#, T),
        ("micro", r#"{"ts":1546311600000000}"#, T),
        ("nano", r#"{"ts":1546311600000000000}"#, T),
        ("nano", r#"{"ts":"1546311600000000000"}"#, T),
        ("ruby", r#"{"ts":1546311600.25}"#, T + 250),
        ("ruby", r#"{"ts":"1546311600.5"}"#, T + 500),
        ("yyyy-MM-dd HH:mm:ss", r#"{"ts":"2019-01-01 03:00:00"}"#, T),
        ("yyyyMMddHH", r#"{"ts":2019010103}"#, T),
        // Druid's eternity ends, and a signed year (Druid reads "-2026" as ISO, not millis).
        (
            "auto",
            r#"{"ts":"146140482-04-24T15:36:27.903Z"}"#,
            i64::MAX / 2,
        ),
        (
            "iso",
            r#"{"ts":"-146136543-09-08T08:23:32.096Z"}"#,
            i64::MIN / 2,
        ),
        ("auto", r#"{"ts":"-2026"}"#, -126_101_577_600_000),
        ("auto", r#"{"ts":"2026-W45-1 10:00"}"#, 1_793_613_600_000),
    ];
    for (format, json, want) in cases {
        assert_eq!(
            ex(format).extract(json.as_bytes()),
            Ok(*want),
            "{format} {json}"
        );
    }
}

#[test]
fn finds_the_column_among_other_fields() {
    let e = ex("millis");
    let json = br#"{"a":[1,{"ts":5}],"b":{"ts":6},"t\u0073":1546311600000,"c":"x"}"#;
    assert_eq!(e.extract(json), Ok(T));
    // The last duplicate wins.
    assert_eq!(e.extract(br#"{"ts":1,"ts":2}"#), Ok(2));
    let ev = Event::from_json(Bytes::from_static(br#"{"ts":1546311600000,"x":1}"#), &e).unwrap();
    assert_eq!(ev.timestamp_millis(), T);
    assert_eq!(ev.raw().as_ref(), br#"{"ts":1546311600000,"x":1}"#);
}

#[test]
fn bad_events_are_outcomes_with_reasons() {
    let e = ex("iso");
    assert_eq!(
        e.extract(br#"{"x":1}"#),
        Err(TimestampError::Missing {
            column: "ts".into()
        })
    );
    assert_eq!(
        e.extract(br#"{"ts":null}"#).unwrap_err().label(),
        "missing_timestamp"
    );
    assert_eq!(
        e.extract(b"[1,2]"),
        Err(TimestampError::NotAnObject { found: "an array" })
    );
    assert_eq!(e.extract(b"\"s\"").unwrap_err().label(), "not_an_object");
    assert_eq!(
        e.extract(br#"{"ts":"#).unwrap_err().label(),
        "malformed_json"
    );
    assert_eq!(
        e.extract(br#"{"ts":"2019-01-01"} x"#).unwrap_err().label(),
        "malformed_json"
    );
    let err = e.extract(br#"{"ts":"yesterday"}"#).unwrap_err();
    assert_eq!(err.label(), "unparseable_timestamp");
    let msg = err.to_string();
    assert!(
        msg.contains("\"yesterday\"") && msg.contains("'ts'") && msg.contains("'iso'"),
        "{msg}"
    );
    assert!(ex("millis").extract(br#"{"ts":"12.5"}"#).is_err());
    assert!(ex("posix").extract(br#"{"ts":true}"#).is_err());
    assert!(ex("posix").extract(br#"{"ts":{"a":1}}"#).is_err());
    assert!(ex("posix")
        .extract(br#"{"ts":9223372036854775807}"#)
        .is_err());
    assert!(ex("yyyy-MM-dd").extract(br#"{"ts":"01/01/2019"}"#).is_err());
}

#[test]
fn missing_value_fills_in() {
    let mut spec = TimestampSpec::new("ts", "auto");
    spec.missing_value = Some(serde_json::json!("2019-01-01T03:00:00Z"));
    let e = TimestampExtractor::new(&spec).unwrap();
    assert_eq!(e.extract(br#"{"x":1}"#), Ok(T));
    assert_eq!(e.extract(br#"{"ts":null}"#), Ok(T));
    assert_eq!(e.extract(br#"{"ts":5}"#), Ok(5));
    spec.missing_value = Some(serde_json::json!(T));
    assert_eq!(
        TimestampExtractor::new(&spec).unwrap().extract(b"{}"),
        Ok(T)
    );
    spec.missing_value = Some(serde_json::json!("soon"));
    assert_eq!(
        TimestampExtractor::new(&spec).unwrap_err().field(),
        "missingValue"
    );
}

#[test]
fn bad_formats_are_refused_up_front() {
    let err = TimestampExtractor::new(&TimestampSpec::new("ts", "yyyy-MM-dd GGG")).unwrap_err();
    assert_eq!(err.field(), "format");
    assert!(err.to_string().contains("'G'"));
}

proptest! {
    #[test]
    fn iso_formats_read_every_instant_they_print(ms in any::<i64>()) {
        let iso = crate::time::format_iso_millis(ms);
        prop_assert_eq!(ex("auto").extract(format!(r#"{{"ts":"{iso}"}}"#).as_bytes()), Ok(ms));
        prop_assert_eq!(ex("iso").extract(format!(r#"{{"ts":"{iso}"}}"#).as_bytes()), Ok(ms));
    }

    #[test]
    fn formats_agree_on_random_instants(ms in -30_000_000_000_000i64..30_000_000_000_000) {
        let secs = ms.div_euclid(1000);
        let iso = crate::time::format_iso_millis(ms);
        prop_assert_eq!(ex("millis").extract(format!(r#"{{"ts":{ms}}}"#).as_bytes()), Ok(ms));
        prop_assert_eq!(ex("auto").extract(format!(r#"{{"ts":"{iso}"}}"#).as_bytes()), Ok(ms));
        prop_assert_eq!(ex("iso").extract(format!(r#"{{"ts":"{iso}"}}"#).as_bytes()), Ok(ms));
        prop_assert_eq!(ex("posix").extract(format!(r#"{{"ts":{secs}}}"#).as_bytes()), Ok(secs * 1000));
        prop_assert_eq!(ex("nano").extract(format!(r#"{{"ts":"{}"}}"#, i128::from(ms) * 1_000_000).as_bytes()).ok(),
            i64::try_from(i128::from(ms) * 1_000_000).ok().map(|_| ms));
        let pat = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%d %H:%M:%S%.3f").to_string();
        prop_assert_eq!(ex("yyyy-MM-dd HH:mm:ss.SSS").extract(format!(r#"{{"ts":"{pat}"}}"#).as_bytes()), Ok(ms));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = ex("auto").extract(&bytes);
        let _ = ex("auto").extract_well_formed(&bytes);
    }

    #[test]
    fn the_well_formed_scan_agrees_with_the_full_parse(
        doc in json_object(),
        pretty in any::<bool>(),
        format in prop::sample::select(vec!["auto", "iso", "millis", "posix"]),
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&doc).unwrap()
        } else {
            serde_json::to_string(&doc).unwrap()
        };
        let ex = ex(format);
        prop_assert_eq!(ex.extract_well_formed(text.as_bytes()), ex.extract(text.as_bytes()));
    }
}

/// Objects whose keys are often `ts` (also escaped, repeated or nested) and whose values are
/// of every JSON kind, timestamps among them.
fn json_object() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        (-30_000_000_000_000i64..30_000_000_000_000)
            .prop_map(|ms| serde_json::Value::from(crate::time::format_iso_millis(ms))),
        "[ -~\\\"\u{e9}\u{1F600}\n\t]{0,12}".prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    });
    prop::collection::vec((key(), value), 0..6).prop_map(|kv| {
        // Repeated keys cannot live in a map; one `ts` key keeps its place.
        serde_json::Value::Object(kv.into_iter().collect())
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ts".to_string()),
        Just("t\"s".to_string()),
        Just("ts\n".to_string()),
        "[a-z\\\"\u{e9}]{0,4}",
    ]
}

#[test]
fn the_well_formed_scan_takes_the_last_of_repeated_keys() {
    let doc = br#"{"ts":1,"x":{"ts":5},"ts":2}"#;
    assert_eq!(ex("millis").extract_well_formed(doc), Ok(2));
    assert_eq!(ex("millis").extract(doc), Ok(2));
    let doc = br#"{"t\u0073":3,"ts":4,"t\u0073":7}"#;
    assert_eq!(ex("millis").extract_well_formed(doc), Ok(7));
    assert_eq!(ex("millis").extract(doc), Ok(7));
}
