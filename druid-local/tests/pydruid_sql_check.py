"""Independent SQL clients: pydruid's DB-API and its SQLAlchemy dialect list tables and columns
and run a GROUP BY over a time floor with a filter against druid-local; the rows must equal the
equivalent native query's, run with pydruid's native client.

Usage: pydruid_sql_check.py <base url> <dataSource>
Exits non-zero (with a message) when an answer differs.
"""
import sys
import warnings
import urllib.error  # noqa: F401  pydruid 0.6.9 uses urllib.request without importing it
import urllib.request  # noqa: F401
from urllib.parse import urlparse

from pydruid.client import PyDruid
from pydruid.db import connect
from pydruid.utils.aggregators import count, longsum
from pydruid.utils.filters import Dimension
from sqlalchemy import create_engine, func, inspect, select, text, types, MetaData, Table
from sqlalchemy.exc import SADeprecationWarning

# pydruid 0.6.9's dialect still names its DB-API hook dbapi(); SQLAlchemy 2 warns and goes on.
warnings.filterwarnings("ignore", category=SADeprecationWarning)

SQL = (
    "SELECT TIME_FLOOR(__time, 'PT30M') AS t, COUNT(*) AS n, SUM(added) AS s "
    "FROM {ds} WHERE language = 'en' GROUP BY 1 ORDER BY 1"
)


def check(what, got, want):
    if got != want:
        sys.exit("%s differs:\n  got  %r\n  want %r" % (what, got, want))


def main():
    base, ds = sys.argv[1], sys.argv[2]
    url = urlparse(base)

    native = PyDruid(base, "druid/v2").timeseries(
        datasource=ds,
        granularity={"type": "period", "period": "PT30M"},
        intervals="2024-01-01/2024-01-02",
        aggregations={"n": count("count"), "s": longsum("added")},
        filter=Dimension("language") == "en",
        context={"skipEmptyBuckets": True},
    )
    want = [(r["timestamp"], r["result"]["n"], r["result"]["s"]) for r in native.result]
    if not want:
        sys.exit("the native query answered no rows")

    # DB-API: rows, the description pydruid derives from them, client-side parameters.
    conn = connect(host=url.hostname, port=url.port, path="/druid/v2/sql/", scheme="http")
    cur = conn.cursor()
    cur.execute(SQL.format(ds=ds))
    check("DB-API rows", [tuple(r) for r in cur.fetchall()], want)
    check("DB-API columns", [d[0] for d in cur.description], ["t", "n", "s"])
    cur.execute("SELECT COUNT(*) AS n FROM %s WHERE page = %%(page)s" % ds, {"page": "A"})
    check("DB-API parameters", [tuple(r) for r in cur.fetchall()], [(3,)])
    header_conn = connect(host=url.hostname, port=url.port, path="/druid/v2/sql/", header=True)
    hcur = header_conn.cursor()
    hcur.execute(SQL.format(ds=ds))
    check("DB-API rows with header", [tuple(r) for r in hcur.fetchall()], want)

    # SQLAlchemy: the dialect's metadata queries, then the same statement.
    engine = create_engine("druid://%s:%d/druid/v2/sql/" % (url.hostname, url.port))
    insp = inspect(engine)
    check("tables in schema druid", insp.get_table_names(schema="druid"), [ds])
    if ds not in insp.get_table_names():
        sys.exit("get_table_names() lacks %s" % ds)
    if "druid" not in insp.get_schema_names():
        sys.exit("get_schema_names() lacks druid: %r" % insp.get_schema_names())
    cols = insp.get_columns(ds)
    check(
        "columns",
        [(c["name"], type(c["type"]).__name__, c["nullable"]) for c in cols],
        [
            ("__time", "TIMESTAMP", False),
            ("page", "String", True),
            ("language", "String", True),
            ("count", "BigInteger", False),
            ("added", "BigInteger", False),
        ],
    )
    with engine.connect() as c:
        # Called on the dialect: pydruid 0.6.9's has_table lacks the keyword arguments
        # SQLAlchemy 2's inspector passes.
        if not engine.dialect.has_table(c, ds) or engine.dialect.has_table(c, "nope"):
            sys.exit("has_table answers wrongly")
        check("SQLAlchemy rows", [tuple(r) for r in c.execute(text(SQL.format(ds=ds)))], want)
        # A statement SQLAlchemy writes itself, over the reflected table.
        table = Table(ds, MetaData(), autoload_with=engine)
        if not isinstance(table.c["__time"].type, types.TIMESTAMP):
            sys.exit("reflected __time is %r" % table.c["__time"].type)
        stmt = select(table.c.page, func.sum(table.c.added).label("s")).group_by(table.c.page)
        check("SQLAlchemy select", sorted(tuple(r) for r in c.execute(stmt)), [("A", 17), ("B", 11), ("C", 1)])
    print("pydruid sql ok")


if __name__ == "__main__":
    main()
