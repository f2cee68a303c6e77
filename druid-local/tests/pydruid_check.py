"""Independent client check: pydruid runs a timeseries and a groupBy against druid-local.

Usage: pydruid_check.py <base url> <dataSource> <interval>
Exits non-zero (with a message) when a result differs from what the data implies.
"""
import json
import sys
import urllib.error  # noqa: F401  pydruid 0.6.9 uses urllib.request without importing it
import urllib.request  # noqa: F401

from pydruid.client import PyDruid
from pydruid.utils.aggregators import longsum
from pydruid.utils.filters import Dimension


def main():
    base, ds, interval = sys.argv[1], sys.argv[2], sys.argv[3]
    client = PyDruid(base, "druid/v2")

    ts = client.timeseries(
        datasource=ds,
        granularity="all",
        intervals=interval,
        aggregations={"events": longsum("count"), "added": longsum("added")},
        filter=Dimension("language") == "en",
    )
    want_ts = [{"timestamp": "2024-01-01T10:00:00.000Z", "result": {"events": 2, "added": 7}}]
    if ts.result != want_ts:
        sys.exit("timeseries differs: %s != %s" % (json.dumps(ts.result), json.dumps(want_ts)))

    gb = client.groupby(
        datasource=ds,
        granularity="all",
        intervals=interval,
        dimensions=["page"],
        aggregations={"events": longsum("count")},
    )
    got = [(r["event"]["page"], r["event"]["events"]) for r in gb.result]
    if got != [("A", 2), ("B", 1)]:
        sys.exit("groupBy differs: %s" % json.dumps(gb.result))
    print("pydruid ok")


if __name__ == "__main__":
    main()
