#!/usr/bin/env python3
"""Share of requests over 1 ms and over 2.5 ms between two /metrics dumps of the gateway, per
histogram (request, audit wait, upstream): says where the slow requests were slow, which the
histograms' coarse buckets cannot say as a percentile.  usage: hist_tail.py BEFORE AFTER
"""

import re
import sys

BUCKET = re.compile(r'(waguard_\w+)_bucket\{.*le="([^"]+)".*\} (\S+)')
METRICS = (
    ("request", "waguard_request_duration_seconds"),
    ("audit wait", "waguard_audit_wait_duration_seconds"),
    ("upstream", "waguard_upstream_duration_seconds"),
)


def buckets(path):
    """Cumulative bucket counts by (metric, le), summed over label sets."""
    out = {}
    with open(path) as f:
        for line in f:
            m = BUCKET.match(line)
            if m:
                key = (m.group(1), m.group(2))
                out[key] = out.get(key, 0) + float(m.group(3))
    return out


def main():
    before, after = buckets(sys.argv[1]), buckets(sys.argv[2])

    def over(metric, le):
        total = after.get((metric, "+Inf"), 0) - before.get((metric, "+Inf"), 0)
        under = after.get((metric, le), 0) - before.get((metric, le), 0)
        return "n/a" if total <= 0 else f"{100 * (total - under) / total:.1f}%"

    print("; ".join(
        f"{name} {over(metric, '0.001')} over 1 ms, {over(metric, '0.0025')} over 2.5 ms"
        for name, metric in METRICS
    ))


if __name__ == "__main__":
    main()
