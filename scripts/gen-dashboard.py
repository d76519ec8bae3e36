#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/bazaar.json; `--check` only verifies it is
up to date (CI).

The dashboard is generated so that panel layout and queries stay consistent;
edit this script, not the JSON.
"""
import json
import pathlib
import sys

DS = {"type": "prometheus", "uid": "prometheus"}
RATE = "$__rate_interval"


def panel(pid, title, exprs, unit, x, y, w=12, h=8, desc=""):
    return {
        "id": pid,
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": legend}
            for i, (e, legend) in enumerate(exprs)
        ],
    }


panels = [
    panel(1, "Request rate", [(f"sum by (service) (rate(http_requests_total[{RATE}]))", "{{service}}")],
          "reqps", 0, 0, desc="HTTP requests per second, by service."),
    panel(2, "Latency p99", [(
        f"histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket[{RATE}])))",
        "{{service}}")], "s", 12, 0, desc="99th percentile of request duration, by service."),
    panel(3, "Errors (5xx) per second", [
        (f'sum by (service) (rate(http_requests_total{{status=~"5.."}}[{RATE}]))', "{{service}} 5xx"),
        (f'sum by (service) (rate(http_requests_total{{status="429"}}[{RATE}]))', "{{service}} 429"),
    ], "reqps", 0, 8, desc="Server errors and rate-limited requests, by service."),
    panel(4, "Error ratio (5xx / all)", [(
        f'sum by (service) (rate(http_requests_total{{status=~"5.."}}[{RATE}]))'
        f" / sum by (service) (rate(http_requests_total[{RATE}]))", "{{service}}")],
        "percentunit", 12, 8),
    panel(5, "Outbox backlog", [("sum by (service) (events_outbox_backlog)", "{{service}}")],
          "short", 0, 16, desc="Events committed but not yet published to the bus. Should hover near 0."),
    panel(6, "Events", [
        (f"sum by (service) (rate(events_published_total[{RATE}]))", "published {{service}}"),
        (f"sum by (consumer) (rate(events_consumed_total[{RATE}]))", "consumed {{consumer}}"),
        (f"sum by (consumer) (rate(events_failed_total[{RATE}]))", "failed {{consumer}}"),
        (f"sum by (consumer) (rate(events_dead_lettered_total[{RATE}]))", "dead-lettered {{consumer}}"),
    ], "ops", 12, 16),
    panel(7, "Latency p99 by route (top 10)", [(
        f"topk(10, histogram_quantile(0.99, sum by (service, route, le) "
        f"(rate(http_request_duration_seconds_bucket[{RATE}]))))", "{{service}} {{route}}")],
        "s", 0, 24),
    panel(8, "Gateway upstream errors", [(
        f"sum by (upstream, kind) (rate(gateway_upstream_errors_total[{RATE}]))", "{{upstream}} {{kind}}")],
        "ops", 12, 24, desc="Upstream unavailable (503) or too slow (504), as seen by the gateway."),
    panel(9, "Database pool connections", [("sum by (service, state) (db_pool_connections)", "{{service}} {{state}}")],
          "short", 0, 32),
]

dashboard = {
    "uid": "bazaar-overview",
    "title": "Bazaar overview",
    "tags": ["bazaar"],
    "timezone": "utc",
    "schemaVersion": 39,
    "version": 1,
    "editable": False,
    "refresh": "10s",
    "time": {"from": "now-30m", "to": "now"},
    "panels": panels,
    "templating": {"list": []},
    "annotations": {"list": []},
}

out = pathlib.Path(__file__).resolve().parent.parent / "deploy/grafana/dashboards/bazaar.json"
text = json.dumps(dashboard, indent=2) + "\n"
if "--check" in sys.argv[1:]:
    if not out.exists() or out.read_text() != text:
        sys.exit(f"{out.name} is out of date: run python3 scripts/gen-dashboard.py")
    print(f"{out.name}: up to date")
else:
    out.write_text(text)
    print(f"wrote {out}")
