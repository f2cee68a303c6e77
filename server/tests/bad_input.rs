//! One table of bad inputs (bodies, headers, URLs, config files): each gets a clear answer
//! naming the problem, nothing crashes, and the good events beside a bad one still go.

mod common;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tranquility::spec::TranquilityConfig;
use tranquility_server::{app, ServerConfig};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn good() -> String {
    format!(r#"{{"timestamp":{},"page":"good"}}"#, now())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A request and what must come of it.
struct Case {
    name: &'static str,
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: StatusCode,
    /// Text the answer must contain (the problem, named).
    says: &'static str,
    /// Events of `wiki` that must be sent (good events beside bad ones).
    sent: usize,
}

fn json(name: &'static str, uri: &'static str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        method: "POST",
        uri,
        headers: vec![("content-type", "application/json")],
        body: body.into(),
        status: StatusCode::BAD_REQUEST,
        says: "",
        sent: 0,
    }
}

impl Case {
    fn answers(mut self, status: StatusCode, says: &'static str) -> Self {
        self.status = status;
        self.says = says;
        self
    }

    fn sends(mut self, sent: usize) -> Self {
        self.sent = sent;
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    fn without(mut self, name: &'static str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self
    }
}

/// The body limit of the test server: large enough for the deeply nested bodies.
const LIMIT: usize = 512 * 1024;

fn cases() -> Vec<Case> {
    use StatusCode as S;
    let deep = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
    let deeper = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // Smile: the header, then 100 000 array starts and as many ends.
    let deep_smile: Vec<u8> = b":)\n\x00"
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0xF8, 100_000))
        .chain(std::iter::repeat_n(0xF9, 100_000))
        .collect();
    let numbers_smile = serde_smile::to_vec(&serde_json::json!([1, 2, 3])).unwrap();
    let deep_object = format!(
        r#"{}{{"timestamp":{}}}{}"#,
        r#"{"a":"#.repeat(300),
        now(),
        "}".repeat(300)
    );
    let big_event = format!(
        r#"{{"timestamp":{},"pad":"{}"}}"#,
        now(),
        "x".repeat(LIMIT + 1)
    );
    let bomb = gzip(&vec![b' '; 1 << 20]);
    let smile =
        serde_smile::to_vec(&serde_json::json!([{"timestamp": now(), "page": "a"}])).unwrap();
    vec![
        json("no content type", "/v1/post/wiki", good())
            .without("content-type")
            .answers(S::BAD_REQUEST, "Expected contentType"),
        json("xml content type", "/v1/post/wiki", good())
            .header("content-type", "application/xml")
            .answers(S::BAD_REQUEST, "Expected contentType"),
        json("unclosed object", "/v1/post/wiki", r#"{"timestamp":"#)
            .answers(S::BAD_REQUEST, "Malformed JSON"),
        json("unclosed array", "/v1/post/wiki", format!("[{},", good()))
            .answers(S::BAD_REQUEST, "Malformed JSON"),
        json(
            "trailing garbage",
            "/v1/post/wiki",
            format!("{} junk", good()),
        )
        .answers(S::BAD_REQUEST, "Malformed JSON"),
        json(
            "invalid UTF-8 in a string",
            "/v1/post/wiki",
            &b"{\"timestamp\":\"\xff\xfe\"}"[..],
        )
        .answers(S::BAD_REQUEST, "Malformed JSON"),
        json("arrays nested 1000 deep", "/v1/post/wiki", deep)
            .answers(S::BAD_REQUEST, "Malformed JSON"),
        json("arrays nested 100 000 deep", "/v1/post/wiki", deeper)
            .answers(S::BAD_REQUEST, "Malformed JSON"),
        json(
            "Smile arrays nested 100 000 deep",
            "/v1/post/wiki",
            deep_smile,
        )
        .header("content-type", "application/x-jackson-smile")
        .answers(S::BAD_REQUEST, "Malformed JSON"),
        json("an array of numbers", "/v1/post/wiki", "[1,2,3]")
            .answers(S::BAD_REQUEST, "3 elements, none an object (number)"),
        json("an array of strings", "/v1/post/wiki", r#"["a","b"]"#)
            .answers(S::BAD_REQUEST, "none an object (string)"),
        json("a lone string", "/v1/post/wiki", r#""hello""#)
            .answers(S::BAD_REQUEST, "found 1 element, none an object (string)"),
        json("a lone null", "/v1/post/wiki", "null")
            .answers(S::BAD_REQUEST, "none an object (null)"),
        json("Smile numbers", "/v1/post/wiki", numbers_smile)
            .header("content-type", "application/x-jackson-smile")
            .answers(S::BAD_REQUEST, "none an object (number)"),
        json(
            "text with no line that parses",
            "/v1/post/csvds",
            "1,a,2,extra\n3,b,4,more\n",
        )
        .header("content-type", "text/plain")
        .answers(S::BAD_REQUEST, "no line of the body parses"),
        json(
            "an event nested 300 deep beside a good one",
            "/v1/post/wiki",
            format!("[{}, {}]", good(), deep_object),
        )
        .answers(S::OK, "\"unparseable\":1")
        .sends(1),
        json(
            "truncated Smile",
            "/v1/post/wiki",
            smile[..smile.len() - 4].to_vec(),
        )
        .header("content-type", "application/x-jackson-smile")
        .answers(S::BAD_REQUEST, "Malformed JSON: Smile"),
        json("JSON sent as Smile", "/v1/post/wiki", good())
            .header("content-type", "application/x-jackson-smile")
            .answers(S::BAD_REQUEST, "Malformed JSON: Smile"),
        json("gzip header on a plain body", "/v1/post/wiki", good())
            .header("content-encoding", "gzip")
            .answers(S::BAD_REQUEST, "Malformed gzip"),
        json("unknown content encoding", "/v1/post/wiki", good())
            .header("content-encoding", "br")
            .answers(S::BAD_REQUEST, "Unrecognized request Content-Encoding"),
        json("body over the limit", "/v1/post/wiki", big_event)
            .answers(S::PAYLOAD_TOO_LARGE, "larger than the limit"),
        json("gzip bomb", "/v1/post/wiki", bomb)
            .header("content-encoding", "gzip")
            .answers(S::PAYLOAD_TOO_LARGE, "larger than the limit"),
        json(
            "async flag not a boolean",
            "/v1/post/wiki?async=maybe",
            good(),
        )
        .answers(S::BAD_REQUEST, "Expected true or false"),
        json("unknown dataSource in the URL", "/v1/post/nope", good())
            .answers(S::BAD_REQUEST, "No definition for dataSource 'nope'"),
        json(
            "unknown dataSource in the event",
            "/v1/post",
            r#"{"dataSource":"nope","timestamp":1}"#,
        )
        .answers(S::BAD_REQUEST, "No definition for dataSource 'nope'"),
        json(
            "event naming no dataSource",
            "/v1/post",
            r#"{"timestamp":1}"#,
        )
        .answers(S::BAD_REQUEST, "Missing 'dataSource' or 'feed'"),
        json(
            "dataSource that is not a string",
            "/v1/post",
            r#"{"dataSource":7,"timestamp":1}"#,
        )
        .answers(S::BAD_REQUEST, "Missing 'dataSource' or 'feed'"),
        json(
            "text without a dataSource in the URL",
            "/v1/post",
            "a line\n",
        )
        .header("content-type", "text/plain")
        .answers(S::BAD_REQUEST, "Must include dataSource in URL"),
        json(
            "text that is not UTF-8",
            "/v1/post/csvds",
            &b"1,a,2\n\xff\n"[..],
        )
        .header("content-type", "text/plain")
        .answers(S::BAD_REQUEST, "Malformed string on line[2]"),
        json(
            "missing timestamp beside a good event",
            "/v1/post/wiki",
            format!(r#"[{}, {{"page":"x"}}]"#, good()),
        )
        .answers(S::OK, "\"unparseable\":1")
        .sends(1),
        json(
            "unparseable timestamp beside a good event",
            "/v1/post/wiki",
            format!(r#"[{}, {{"timestamp":"yesterday"}}]"#, good()),
        )
        .answers(S::OK, "\"unparseable\":1")
        .sends(1),
        json(
            "timestamp beyond any calendar",
            "/v1/post/wiki",
            format!(r#"[{}, {{"timestamp":1e300}}]"#, good()),
        )
        .answers(S::OK, "\"unparseable\":1")
        .sends(1),
        json(
            "timestamp of the wrong type",
            "/v1/post/wiki",
            format!(r#"[{}, {{"timestamp":[1,2]}}]"#, good()),
        )
        .answers(S::OK, "\"unparseable\":1")
        .sends(1),
        json(
            "non-object events beside a good one",
            "/v1/post/wiki",
            format!(r#"[{}, 7, "s", null, [1]]"#, good()),
        )
        .answers(S::OK, "\"unparseable\":4")
        .sends(1),
        json("non-object event on /v1/post", "/v1/post", "[3]")
            .answers(S::BAD_REQUEST, "Malformed JSON"),
        json("empty body", "/v1/post/wiki", "").answers(S::OK, "\"received\":0"),
        json("wrong method", "/v1/post/wiki", good()).answers(S::METHOD_NOT_ALLOWED, ""),
        json("unknown path", "/v2/post/wiki", good()).answers(S::NOT_FOUND, "Not found"),
    ]
    .into_iter()
    .map(|mut c| {
        if c.name == "wrong method" {
            c.method = "PUT";
        }
        c
    })
    .collect()
}

#[tokio::test]
async fn every_bad_request_gets_a_clear_answer_and_spares_the_good_events() {
    let cases = cases();
    assert!(cases.len() >= 37);
    for case in cases {
        let (state, wiki, csv) = common::state(ServerConfig {
            max_body_bytes: LIMIT,
            ..ServerConfig::default()
        });
        let mut request = Request::builder().method(case.method).uri(case.uri);
        for (name, value) in &case.headers {
            request = request.header(*name, *value);
        }
        let response = app(state.clone())
            .oneshot(request.body(Body::from(case.body.clone())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, case.status, "{}: {text}", case.name);
        assert!(
            text.contains(case.says),
            "{}: expected {:?} in {text}",
            case.name,
            case.says
        );
        wiki.pipeline.flush().await;
        assert_eq!(wiki.sent_count(), case.sent, "{}: events sent", case.name);
        for source in [&wiki, &csv] {
            let tally = source.pipeline.metrics().snapshot();
            assert!(tally.is_balanced(), "{}: {tally:?}", case.name);
        }
    }
}

#[test]
fn every_bad_config_names_the_file_the_place_and_the_value() {
    let spec = |extra: &str| {
        format!(
            r#"{{"dataSources":[{{"spec":{{"dataSchema":{{"dataSource":"wiki",
            "parser":{{"type":"string","parseSpec":{{"format":"json",
              "timestampSpec":{{"column":"timestamp","format":"auto"}},"dimensionsSpec":{{"dimensions":[]}}}}}},
            "metricsSpec":[],"granularitySpec":{{"segmentGranularity":"hour","queryGranularity":"none"}}}},
            "tuningConfig":{{"type":"realtime"{extra}}}}}}}],"properties":{{}}}}"#
        )
    };
    let with_props = |props: &str| spec("").replace(r#""properties":{}"#, props);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "bad period",
            spec(r#","windowPeriod":"PT10X""#),
            vec!["bad.json", "windowPeriod", "PT10X"],
        ),
        (
            "server port not a number",
            with_props(r#""properties":{"http.port":"eighty"}"#),
            vec!["bad.json", "http.port", "eighty"],
        ),
        (
            "negative partitions",
            with_props(r#""properties":{"task.partitions":"-1"}"#),
            vec!["bad.json", "task.partitions", "-1"],
        ),
        (
            "unknown serialization",
            with_props(r#""properties":{"serialization.format":"xml"}"#),
            vec!["bad.json", "serialization.format", "xml"],
        ),
        (
            "dataSources of the wrong shape",
            r#"{"dataSources":"wiki"}"#.to_string(),
            vec!["bad.json", "dataSources"],
        ),
        (
            "not JSON at all",
            "{ this is not json".to_string(),
            vec!["bad.json"],
        ),
        (
            "granularity no one knows",
            spec("").replace(
                r#""segmentGranularity":"hour""#,
                r#""segmentGranularity":"fortnight""#,
            ),
            vec!["bad.json", "segmentGranularity", "fortnight"],
        ),
    ];
    for (name, text, must) in cases {
        let error = match TranquilityConfig::from_str(&text, "bad.json") {
            Err(e) => e.to_string(),
            Ok(config) => match ServerConfig::from_config(&config) {
                Err(e) => e.to_string(),
                Ok(_) => match config
                    .data_sources()
                    .iter()
                    .map(|ds| {
                        tranquility::spec::CoreProperties::from_properties(&ds.properties)
                            .map(|_| ())
                    })
                    .collect::<Result<Vec<_>, _>>()
                {
                    Err(e) => e.to_string(),
                    Ok(_) => panic!("{name}: accepted"),
                },
            },
        };
        for word in must {
            assert!(
                error.contains(word),
                "{name}: {word:?} missing from: {error}"
            );
        }
    }
}
