#!/usr/bin/env python3
"""Summarises schemathesis HAR reports (scripts/fuzz-api.sh): requests per
operation and status, then fails when any answer was a 5xx or when the orders
checkout was not exercised: an order created (201), fetched (200), cancelled
(200) and its events streamed (200).

    fuzz-report.py user.har staff.har
"""

import collections
import json
import re
import sys
from urllib.parse import urlsplit

# Concrete paths back to the document's templates.
TEMPLATES = [
    (re.compile(r"^/api/v1/orders/[^/]+/cancel/$"), "/api/v1/orders/{id}/cancel/"),
    (re.compile(r"^/api/v1/orders/[^/]+/events/$"), "/api/v1/orders/{id}/events/"),
    (re.compile(r"^/api/v1/(orders|products|users)/(?!me/)[^/]+/$"), r"/api/v1/\1/{id}/"),
]

REQUIRED = [
    ("POST", "/api/v1/orders/", 201, "orders created"),
    ("GET", "/api/v1/orders/{id}/", 200, "orders fetched"),
    ("POST", "/api/v1/orders/{id}/cancel/", 200, "orders cancelled"),
    ("GET", "/api/v1/orders/{id}/events/", 200, "order events streamed"),
]


def template(path):
    for pattern, replacement in TEMPLATES:
        if pattern.match(path):
            return pattern.sub(replacement, path)
    return path


def main(paths):
    counts = collections.Counter()
    total = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            har = json.load(f)
        for entry in har["log"]["entries"]:
            request, response = entry["request"], entry.get("response") or {}
            status = response.get("status", 0)
            counts[(request["method"], template(urlsplit(request["url"]).path), status)] += 1
            total += 1
    by_operation = collections.defaultdict(dict)
    for (method, path, status), n in counts.items():
        by_operation[(path, method)][status] = n
    print(f"{total} requests over {len(by_operation)} operations")
    for (path, method), statuses in sorted(by_operation.items()):
        seen = ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items()))
        print(f"  {method:6} {path:42} {seen}")
    failed = False
    server_errors = sum(n for (_, _, s), n in counts.items() if s >= 500 or s == 0)
    if server_errors:
        print(f"FAIL: {server_errors} answers were 5xx (or none)")
        failed = True
    for method, path, status, what in REQUIRED:
        n = counts[(method, path, status)]
        print(f"  {what}: {n} ({method} {path} → {status})")
        if n == 0:
            print(f"FAIL: no {what}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
