//! Planner tests: each supported form maps onto the native query Druid would run and answers
//! the rows the data implies; each refused form names what is unsupported.

use super::error::SqlError;
use super::request::{Parameter, SqlRequest};
use super::*;
use crate::spec::{AggKind, MetricSpec};
use crate::storage::{Segment, Store};
use crate::task::rollup::{DimValue, Index, Num, RowDims};
use crate::time::{parse_iso, Interval};
use parking_lot::RwLock;
use serde_json::{json, Map};
use std::sync::atomic::AtomicU64;

/// `wiki`: two hourly segments; dims page, language; metrics count, added (long), delta
/// (double).
fn shared() -> Shared {
    let s = Shared {
        host: "127.0.0.1".into(),
        port: 0,
        tls: false,
        store: Store::open(None).expect("memory store"),
        tasks: RwLock::default(),
        chat: RwLock::default(),
        next_reg: AtomicU64::new(0),
        zk: None,
        data_dir: None,
        null_handling: crate::NullHandling::default(),
        version: crate::version::DruidVersion::default(),
        service_name: "druid/overlord".into(),
        metadata: crate::metadata::Metadata::open(None)
            .expect("memory metadata")
            .0,
        supervisors: crate::supervisor::Manager::default(),
        locks: crate::locks::LockBox::default(),
        reports: crate::batch::Reports::default(),
        segment_load_delay: std::time::Duration::ZERO,
        max_task_payload_size: None,
    };
    let metrics = [
        MetricSpec {
            kind: AggKind::Count,
            name: "count".into(),
            field: None,
        },
        MetricSpec {
            kind: AggKind::LongSum,
            name: "added".into(),
            field: Some("added".into()),
        },
        MetricSpec {
            kind: AggKind::DoubleSum,
            name: "delta".into(),
            field: Some("delta".into()),
        },
    ];
    let rows = [
        ("2024-01-01T10:00:00Z", "A", "en", 3, 0.5),
        ("2024-01-01T10:02:00Z", "A", "en", 4, 1.5),
        ("2024-01-01T10:03:00Z", "B", "fr", 9, -2.0),
        ("2024-01-01T10:30:00Z", "C", "en", 1, 0.25),
        ("2024-01-01T11:05:00Z", "A", "ja", 10, 3.0),
        ("2024-01-01T11:10:00Z", "B", "", 2, 1.0),
    ];
    for hour in ["2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z"] {
        let start = parse_iso(hour).unwrap();
        let mut idx = Index::new(&["page".into(), "language".into()], &metrics, true);
        for (t, page, lang, added, delta) in rows {
            let ts = parse_iso(t).unwrap();
            if ts < start || ts >= start + 3_600_000 {
                continue;
            }
            let dim = |s: &str| {
                if s.is_empty() {
                    DimValue::Null
                } else {
                    DimValue::One(s.into())
                }
            };
            idx.add(
                ts,
                ts,
                RowDims::Fixed(vec![dim(page), dim(lang)]),
                &[Num::Missing, Num::Long(added), Num::Double(delta)],
            );
        }
        let seg = Segment {
            data_source: "wiki".into(),
            interval: Interval {
                start,
                end: start + 3_600_000,
            },
            version: "v1".into(),
            partition: 0,
            index: RwLock::new(idx),
        };
        s.store.add_live("task_1", std::sync::Arc::new(seg));
    }
    s
}

fn request(query: &str, context: Value, parameters: Vec<Parameter>) -> SqlRequest {
    let mut ctx: Map<String, Value> = context.as_object().cloned().unwrap_or_default();
    ctx.entry("sqlCurrentTimestamp")
        .or_insert(json!("2024-01-02T10:30:00Z"));
    SqlRequest {
        query: query.into(),
        format: request::ResultFormat::Array,
        header: false,
        types_header: false,
        sql_types_header: false,
        context: ctx,
        parameters,
    }
}

fn rows_ctx(s: &Shared, query: &str, context: Value) -> Value {
    match run(s, &request(query, context, Vec::new()), "q1") {
        Ok(out) => json!(out.rows),
        Err(e) => panic!("{query}: {e:?}"),
    }
}

fn rows(s: &Shared, query: &str) -> Value {
    rows_ctx(s, query, json!({}))
}

fn err(s: &Shared, query: &str) -> SqlError {
    match run(s, &request(query, json!({}), Vec::new()), "q1") {
        Ok(out) => panic!("{query} should fail, answered {:?}", out.rows),
        Err(e) => e,
    }
}

/// The native query a dataSource statement plans to.
fn native_of(s: &Shared, query: &str) -> Value {
    let stmt = parse::parse(query, &[]).unwrap();
    let env = bind::Env {
        now: parse_iso("2024-01-02T10:30:00Z").unwrap(),
        tz: chrono_tz::Tz::UTC,
    };
    let b = bind::bind(s, &stmt, &env).unwrap();
    let ctx = native::Ctx {
        tz: &chrono_tz::Tz::UTC,
        context: &Map::new(),
        query_id: "q1",
    };
    native::plan(&b, "wiki", &ctx).unwrap().native
}

#[test]
fn aggregates_without_grouping_are_a_timeseries() {
    let s = shared();
    let q = native_of(&s, "SELECT COUNT(*) AS n, SUM(added) AS s FROM wiki");
    assert_eq!(q["queryType"], "timeseries");
    assert_eq!(q["granularity"], "all");
    assert_eq!(
        q["aggregations"],
        json!([{"type": "count", "name": "a0"}, {"type": "longSum", "name": "a1", "fieldName": "added"}])
    );
    assert_eq!(
        rows(&s, "SELECT COUNT(*) AS n, SUM(added) AS s FROM wiki"),
        json!([[6, 29]])
    );
    assert_eq!(
        rows(
            &s,
            "SELECT COUNT(*), SUM(added) FROM wiki WHERE language = 'en'"
        ),
        json!([[3, 8]])
    );
    // MIN, MAX, AVG (an AVG of longs is a truncated BIGINT), MAX(__time) a TIMESTAMP.
    assert_eq!(
        rows(&s, "SELECT MIN(added), MAX(added), AVG(added), MAX(__time), SUM(delta), MIN(delta) FROM wiki"),
        json!([[1, 10, 4, "2024-01-01T11:10:00.000Z", 4.25, -2.0]])
    );
    // COUNT(col) skips nulls; FILTER makes a filtered aggregator.
    assert_eq!(
        rows(
            &s,
            "SELECT COUNT(language), COUNT(*) FILTER (WHERE page = 'A') FROM wiki"
        ),
        json!([[5, 3]])
    );
    // Quoted names, as the quickstart prints them.
    assert_eq!(
        rows(&s, r#"SELECT SUM("count") AS "count" FROM "wiki""#),
        json!([[6]])
    );
    // No matching rows still answer one row.
    assert_eq!(
        rows(&s, "SELECT COUNT(*) FROM wiki WHERE page = 'Z'"),
        json!([[0]])
    );
}

#[test]
fn time_floors_are_a_timeseries_granularity() {
    let s = shared();
    for floor in [
        "TIME_FLOOR(__time, 'PT1H')",
        "FLOOR(__time TO HOUR)",
        "DATE_TRUNC('hour', __time)",
    ] {
        let sql = format!("SELECT {floor} AS h, COUNT(*) AS n FROM wiki GROUP BY 1");
        let q = native_of(&s, &sql);
        assert_eq!(q["queryType"], "timeseries", "{sql}");
        assert_eq!(q["granularity"]["period"], "PT1H", "{sql}");
        assert_eq!(q["context"]["skipEmptyBuckets"], true);
        assert_eq!(
            rows(&s, &sql),
            json!([
                ["2024-01-01T10:00:00.000Z", 4],
                ["2024-01-01T11:00:00.000Z", 2]
            ]),
            "{sql}"
        );
    }
    // As Superset writes a time grain and a time range.
    assert_eq!(
        rows(&s, "SELECT TIME_FLOOR(CAST(__time AS TIMESTAMP), 'PT1H') AS \"__timestamp\", COUNT(*) AS \"count\" FROM druid.wiki AS wiki WHERE __time >= TIME_PARSE('2024-01-01T10:30:00') AND __time < TIME_PARSE('2024-01-02T00:00:00') GROUP BY TIME_FLOOR(CAST(__time AS TIMESTAMP), 'PT1H') ORDER BY \"count\" DESC LIMIT 10000"),
        json!([["2024-01-01T11:00:00.000Z", 2], ["2024-01-01T10:00:00.000Z", 1]])
    );
    let sql = "SELECT FLOOR(__time TO HOUR) AS h, SUM(added) FROM wiki GROUP BY FLOOR(__time TO HOUR) ORDER BY h DESC LIMIT 1";
    assert_eq!(native_of(&s, sql)["descending"], true);
    assert_eq!(rows(&s, sql), json!([["2024-01-01T11:00:00.000Z", 12]]));
    // In sqlTimeZone: buckets and printed offsets follow it.
    assert_eq!(
        rows_ctx(
            &s,
            "SELECT TIME_FLOOR(__time, 'P1D'), COUNT(*) FROM wiki GROUP BY 1",
            json!({"sqlTimeZone": "America/Los_Angeles"})
        ),
        json!([["2024-01-01T00:00:00.000-08:00", 6]])
    );
}

#[test]
fn one_dimension_ordered_and_limited_is_a_top_n() {
    let s = shared();
    let sql = "SELECT page, SUM(added) AS s FROM wiki GROUP BY page ORDER BY s DESC LIMIT 2";
    let q = native_of(&s, sql);
    assert_eq!(q["queryType"], "topN");
    assert_eq!(q["metric"], json!({"type": "numeric", "metric": "a0"}));
    assert_eq!(q["threshold"], 2);
    assert_eq!(rows(&s, sql), json!([["A", 17], ["B", 11]]));
    let sql = "SELECT page, COUNT(*) FROM wiki GROUP BY page ORDER BY page DESC LIMIT 2";
    assert_eq!(native_of(&s, sql)["metric"]["type"], "inverted");
    assert_eq!(rows(&s, sql), json!([["C", 1], ["B", 2]]));
}

#[test]
fn other_grouping_is_a_group_by() {
    let s = shared();
    let sql = "SELECT page, language, COUNT(*) FROM wiki GROUP BY page, language";
    let q = native_of(&s, sql);
    assert_eq!(q["queryType"], "groupBy");
    assert_eq!(q["dimensions"][1]["outputName"], "d1");
    // A null string is "" in legacy null handling.
    assert_eq!(
        rows(&s, sql),
        json!([
            ["A", "en", 2],
            ["A", "ja", 1],
            ["B", "", 1],
            ["B", "fr", 1],
            ["C", "en", 1]
        ])
    );
    let sql = "SELECT page, COUNT(*) AS n FROM wiki GROUP BY page HAVING COUNT(*) > 1 AND SUM(added) >= 11";
    assert_eq!(native_of(&s, sql)["having"]["type"], "and");
    assert_eq!(rows(&s, sql), json!([["A", 3], ["B", 2]]));
    let sql =
        "SELECT page AS p, SUM(added) AS s FROM wiki GROUP BY p ORDER BY s ASC LIMIT 2 OFFSET 1";
    let q = native_of(&s, sql);
    assert_eq!(q["limitSpec"]["offset"], 1);
    assert_eq!(q["limitSpec"]["columns"][0]["dimensionOrder"], "numeric");
    assert_eq!(rows(&s, sql), json!([["B", 11], ["A", 17]]));
    // A time floor with other keys: granularity plus dimensions, ordered here.
    let sql = "SELECT FLOOR(__time TO HOUR) AS h, page, COUNT(*) AS n FROM wiki GROUP BY 1, 2 ORDER BY n DESC, h LIMIT 2";
    let q = native_of(&s, sql);
    assert_eq!(q["queryType"], "groupBy");
    assert!(q.get("limitSpec").is_none());
    assert_eq!(
        rows(&s, sql),
        json!([
            ["2024-01-01T10:00:00.000Z", "A", 2],
            ["2024-01-01T10:00:00.000Z", "B", 1]
        ])
    );
    assert_eq!(
        rows(&s, "SELECT DISTINCT page FROM wiki"),
        json!([["A"], ["B"], ["C"]])
    );
}

#[test]
fn count_distinct_is_exact() {
    let s = shared();
    assert_eq!(
        rows(&s, "SELECT COUNT(DISTINCT language) FROM wiki"),
        json!([[3]])
    );
    let sql = "SELECT page, COUNT(DISTINCT language) AS langs, COUNT(*) AS n, SUM(added) AS s, AVG(delta) AS d FROM wiki GROUP BY page ORDER BY langs DESC, page";
    let q = native_of(&s, sql);
    assert_eq!(q["dimensions"][1]["dimension"], "language");
    assert_eq!(
        rows(&s, sql),
        json!([
            ["A", 2, 3, 17, 5.0 / 3.0],
            ["B", 1, 2, 11, -0.5],
            ["C", 1, 1, 1, 0.25]
        ])
    );
    assert_eq!(
        rows(
            &s,
            "SELECT page FROM wiki GROUP BY page HAVING APPROX_COUNT_DISTINCT(language) > 1"
        ),
        json!([["A"]])
    );
}

#[test]
fn rows_without_grouping_are_a_scan() {
    let s = shared();
    let sql = "SELECT __time, page, added FROM wiki WHERE page = 'B' ORDER BY __time DESC LIMIT 1";
    let q = native_of(&s, sql);
    assert_eq!(q["queryType"], "scan");
    assert_eq!(q["order"], "descending");
    assert_eq!(q["columns"], json!(["__time", "page", "added"]));
    assert_eq!(rows(&s, sql), json!([["2024-01-01T11:10:00.000Z", "B", 2]]));
    assert_eq!(
        rows(&s, "SELECT * FROM wiki LIMIT 1"),
        json!([["2024-01-01T10:00:00.000Z", "A", "en", 1, 3, 0.5]])
    );
    let out = run(
        &s,
        &request("SELECT * FROM wiki LIMIT 1", json!({}), vec![]),
        "q",
    )
    .unwrap();
    let names: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["__time", "page", "language", "count", "added", "delta"]
    );
    assert_eq!(
        rows(&s, "SELECT page AS p FROM wiki LIMIT 2 OFFSET 3"),
        json!([["C"], ["A"]])
    );
}

#[test]
fn where_maps_to_intervals_and_filters() {
    let s = shared();
    let q = native_of(
        &s,
        "SELECT COUNT(*) FROM wiki WHERE __time >= TIMESTAMP '2024-01-01 11:00:00' AND page <> 'A'",
    );
    assert_eq!(
        q["intervals"],
        json!(["2024-01-01T11:00:00.000Z/146140482-04-24T15:36:27.903Z"])
    );
    assert_eq!(q["filter"]["type"], "not");
    let count = |w: &str| rows(&s, &format!("SELECT COUNT(*) FROM wiki WHERE {w}"))[0][0].clone();
    assert_eq!(count("__time >= TIMESTAMP '2024-01-01 11:00:00'"), 2);
    assert_eq!(count("__time < CURRENT_TIMESTAMP - INTERVAL '1' DAY"), 3);
    assert_eq!(
        count("__time BETWEEN '2024-01-01 10:02:00' AND '2024-01-01 10:30:00'"),
        3
    );
    assert_eq!(count("__time >= '2024-01-02'"), 0);
    assert_eq!(count("language IN ('fr', 'ja') OR page LIKE 'C%'"), 3);
    assert_eq!(count("added BETWEEN 3 AND 9"), 3);
    assert_eq!(count("NOT (page = 'A') AND language IS NOT NULL"), 2);
    assert_eq!(count("language IS NULL"), 1);
    assert_eq!(count("delta > 0.5"), 3);
    assert_eq!(count("page > 'A'"), 3);
    assert_eq!(
        count("(__time < TIMESTAMP '2024-01-01 10:01:00' OR page = 'C')"),
        2
    );
    let p = |ty: &str, v: Value| Parameter {
        ty: ty.into(),
        value: v,
    };
    let out = run(
        &s,
        &request(
            "SELECT COUNT(*) FROM wiki WHERE page = ? AND added > ?",
            json!({}),
            vec![p("VARCHAR", json!("A")), p("BIGINT", json!(3))],
        ),
        "q",
    )
    .unwrap();
    assert_eq!(json!(out.rows), json!([[2]]));
    // A TIMESTAMP parameter in milliseconds is an instant, whatever the time zone.
    let out = run(
        &s,
        &request(
            "SELECT COUNT(*) FROM wiki WHERE __time >= ?",
            json!({"sqlTimeZone": "Asia/Jakarta"}),
            vec![p(
                "TIMESTAMP",
                json!(parse_iso("2024-01-01T11:00:00Z").unwrap()),
            )],
        ),
        "q",
    )
    .unwrap();
    assert_eq!(json!(out.rows), json!([[2]]));
    // Timestamp text is read in sqlTimeZone.
    assert_eq!(
        rows_ctx(
            &s,
            "SELECT COUNT(*) FROM wiki WHERE __time >= TIMESTAMP '2024-01-01 18:00:00'",
            json!({"sqlTimeZone": "Asia/Jakarta"})
        ),
        json!([[2]])
    );
}

#[test]
fn system_tables_and_constants() {
    let s = shared();
    assert_eq!(
        rows(
            &s,
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'druid'"
        ),
        json!([["wiki"]])
    );
    assert_eq!(
        rows(&s, "SELECT COUNT(*) > 0 AS exists_ FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'wiki'"),
        json!([[true]])
    );
    assert_eq!(
        rows(&s, "SELECT COLUMN_NAME, DATA_TYPE, ORDINAL_POSITION, IS_NULLABLE, JDBC_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = 'druid' AND TABLE_NAME = 'wiki' ORDER BY ORDINAL_POSITION DESC LIMIT 3"),
        json!([["delta", "DOUBLE", "5", "NO", 8], ["added", "BIGINT", "4", "NO", -5], ["count", "BIGINT", "3", "NO", -5]])
    );
    assert_eq!(
        rows(
            &s,
            "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA ORDER BY 1"
        ),
        json!([
            ["INFORMATION_SCHEMA"],
            ["druid"],
            ["lookup"],
            ["sys"],
            ["view"]
        ])
    );
    assert_eq!(
        rows(
            &s,
            "SELECT datasource, COUNT(*) AS n, SUM(num_rows) FROM sys.segments GROUP BY datasource"
        ),
        json!([["wiki", 2, 6]])
    );
    assert_eq!(
        rows(
            &s,
            "SELECT is_realtime, \"start\" FROM sys.segments ORDER BY \"start\" LIMIT 1"
        ),
        json!([[1, "2024-01-01T10:00:00.000Z"]])
    );
    assert_eq!(rows(&s, "SELECT task_id FROM sys.tasks"), json!([]));
    // Queries the web console sends.
    assert_eq!(
        rows(&s, "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA IN ('druid', 'lookup') ORDER BY TABLE_SCHEMA, TABLE_NAME, CAST(ORDINAL_POSITION AS INTEGER) LIMIT 2"),
        json!([["wiki", "__time", "TIMESTAMP"], ["wiki", "page", "VARCHAR"]])
    );
    assert_eq!(
        rows(&s, "SELECT datasource, COUNT(*) FILTER (WHERE is_active = 1) AS num_segments, SUM(\"size\" * \"num_replicas\") FILTER (WHERE is_active = 1) AS replicated_size, SUM(\"num_rows\") FILTER (WHERE is_published = 1 AND is_overshadowed = 0) AS published_rows, MIN(\"start\") AS first_start, CASE WHEN SUM(is_realtime) > 0 THEN 'realtime' ELSE 'historical' END AS kind FROM sys.segments GROUP BY 1 ORDER BY 1"),
        json!([["wiki", 2, 0, null, "2024-01-01T10:00:00.000Z", "realtime"]])
    );
    let out = run(
        &s,
        &request("SELECT 1, 'x' AS y, UPPER('a') || 'b'", json!({}), vec![]),
        "q",
    )
    .unwrap();
    assert_eq!(json!(out.rows), json!([[1, "x", "Ab"]]));
    assert_eq!(out.columns[0].name, "EXPR$0");
    assert_eq!(out.columns[2].ty, types::SqlType::Varchar);
}

#[test]
fn refusals_name_what_is_unsupported() {
    let s = shared();
    let unsupported = |sql: &str, needle: &str| match err(&s, sql) {
        SqlError::Unsupported(m) => assert!(m.contains(needle), "{sql}: {m}"),
        other => panic!("{sql}: expected unsupported, got {other:?}"),
    };
    unsupported(
        "SELECT a.page FROM wiki a JOIN wiki b ON a.page = b.page",
        "JOIN",
    );
    unsupported("SELECT COUNT(*) FROM (SELECT page FROM wiki)", "subqueries");
    unsupported(
        "SELECT page FROM wiki WHERE page IN (SELECT page FROM wiki)",
        "subqueries",
    );
    unsupported(
        "SELECT page, ROW_NUMBER() OVER (ORDER BY page) FROM wiki",
        "window functions",
    );
    unsupported(
        "SELECT page FROM wiki UNION ALL SELECT page FROM wiki",
        "UNION",
    );
    unsupported(
        "SELECT REGEXP_EXTRACT(page, 'a') FROM wiki",
        "REGEXP_EXTRACT",
    );
    unsupported(
        "SELECT LOOKUP(page, 'x'), COUNT(*) FROM wiki GROUP BY 1",
        "LOOKUP",
    );
    unsupported("SELECT UPPER(page) FROM wiki", "UPPER(page)");
    unsupported(
        "SELECT added, COUNT(*) FROM wiki GROUP BY added",
        "metric column [added]",
    );
    unsupported("SELECT SUM(added * 2) FROM wiki", "over an expression");
    unsupported("SELECT COUNT(*) FROM wiki WHERE UPPER(page) = 'A'", "UPPER");
    unsupported(
        "SELECT SUM(added) / COUNT(*) FROM wiki",
        "over grouped values",
    );
    unsupported(
        "SELECT COUNT(DISTINCT page), COUNT(DISTINCT language) FROM wiki",
        "more than one column",
    );
    unsupported("WITH t AS (SELECT 1) SELECT * FROM t", "WITH");
    unsupported("EXPLAIN PLAN FOR SELECT 1", "EXPLAIN");
    let invalid = |sql: &str, needle: &str| match err(&s, sql) {
        SqlError::Invalid { message, .. } => assert!(message.contains(needle), "{sql}: {message}"),
        other => panic!("{sql}: expected a validation error, got {other:?}"),
    };
    invalid("SELECT * FROM nope", "Object 'nope' not found");
    invalid(
        "SELECT * FROM druid.nope",
        "Object 'nope' not found within 'druid'",
    );
    invalid(
        "SELECT nosuch FROM wiki",
        "Column 'nosuch' not found in any table",
    );
    invalid(
        "SELECT page, COUNT(*) FROM wiki",
        "Expression 'page' is not being grouped",
    );
    invalid(
        "SELECT FOO(page) FROM wiki",
        "No match found for function signature FOO",
    );
    invalid("SELECT SUM(page) FROM wiki", "Cannot apply 'SUM'");
    invalid(
        "SELECT COUNT(*) FROM wiki WHERE __time > 5",
        "<TIMESTAMP(3)> > <INTEGER>",
    );
    invalid("INSERT INTO wiki SELECT * FROM wiki", "INSERT");
    invalid(
        "SELECT COUNT(*) FROM wiki WHERE __time > TIMESTAMP '2024-01-01T00:00:00Z'",
        "Illegal TIMESTAMP literal '2024-01-01T00:00:00Z'",
    );
    invalid(
        "SELECT TIME_FLOOR(__time, 'PT0S'), COUNT(*) FROM wiki GROUP BY 1",
        "positive period",
    );
    unsupported(
        "SELECT COUNT(*) FROM wiki WHERE __time > CURRENT_TIMESTAMP - INTERVAL '99999999999' DAY",
        "INTERVAL",
    );
    match err(&s, "SELECT page FROM wiki ORDER BY page") {
        SqlError::CannotPlan(m) => assert!(m.contains("non-time column [[page]]"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(err(&s, "SELEC 1"), SqlError::Parse { .. }));
    match err(&s, "SELECT * FROM nope") {
        SqlError::Invalid { pos: Some(p), .. } => {
            assert_eq!((p.line, p.column, p.end_column), (1, 15, 18))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn odd_statements_answer_an_error_not_a_crash() {
    let s = shared();
    let deep = format!("SELECT {}1{} FROM wiki", "(".repeat(300), ")".repeat(300));
    let many = format!(
        "SELECT COUNT(*) FROM wiki WHERE page IN ({})",
        (0..5000)
            .map(|i| format!("'p{i}'"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for sql in [
        "",
        ";",
        "SELECT",
        "SELECT * FROM wiki WHERE",
        "SELECT page FROM wiki GROUP BY page ORDER BY 5",
        "SELECT * FROM wiki LIMIT -1",
        "SELECT MAX(page) FROM wiki",
        "SELECT COUNT(DISTINCT __time) FROM wiki",
        "SELECT TIME_FLOOR(page, 'PT1H'), COUNT(*) FROM wiki GROUP BY 1",
        "SELECT TIME_FLOOR(__time, 'nonsense'), COUNT(*) FROM wiki GROUP BY 1",
        "SELECT TIME_FLOOR(__time, 'PT1H', NULL, 'Nowhere/City'), COUNT(*) FROM wiki GROUP BY 1",
        "SELECT * FROM sys.segments WHERE 1 / 0 = 1",
        "SELECT CAST('x' AS TIMESTAMP) FROM wiki",
        "SELECT page FROM wiki WHERE page = NULL",
        "SELECT COUNT(*) FROM wiki GROUP BY COUNT(*)",
        "SELECT * FROM wiki, wiki",
        "SELECT ? FROM wiki",
        "SELECT :name FROM wiki",
        "SELECT 9223372036854775808",
        "SELECT -9223372036854775808 * 2",
        "SELECT * FROM wiki WHERE __time BETWEEN TIMESTAMP '2024-01-02 00:00:00' AND TIMESTAMP '2024-01-01 00:00:00'",
        "SELECT COUNT(*) FROM wiki WHERE __time >= TIMESTAMP '9999-12-31 23:59:59'",
        &deep,
        &many,
    ] {
        let _ = run(&s, &request(sql, json!({}), Vec::new()), "q");
    }
    // An empty time range answers no rows rather than failing.
    assert_eq!(
        rows(&s, "SELECT page FROM wiki WHERE __time BETWEEN TIMESTAMP '2024-01-02 00:00:00' AND TIMESTAMP '2024-01-01 00:00:00'"),
        json!([])
    );
    assert_eq!(rows(&s, &many), json!([[0]]));
}
