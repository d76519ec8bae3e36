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


# Every per-service query is narrowed by the `service` variable.
SVC = 'service=~"$service"'

panels = [
    # RED per service: rate, errors, duration.
    panel(1, "Request rate", [(f"sum by (service) (rate(http_requests_total{{{SVC}}}[{RATE}]))", "{{service}}")],
          "reqps", 0, 0, desc="HTTP requests per second, by service."),
    panel(2, "Latency p50 / p99", [
        (f"histogram_quantile(0.5, sum by (service, le) (rate(http_request_duration_seconds_bucket{{{SVC}}}[{RATE}])))",
         "{{service}} p50"),
        (f"histogram_quantile(0.99, sum by (service, le) (rate(http_request_duration_seconds_bucket{{{SVC}}}[{RATE}])))",
         "{{service}} p99"),
    ], "s", 12, 0, desc="Median and 99th percentile of request duration, by service (SLO: 99 % under 500 ms)."),
    panel(3, "Errors (5xx) and rate-limited (429) per second", [
        (f'sum by (service) (rate(http_requests_total{{status=~"5..",{SVC}}}[{RATE}]))', "{{service}} 5xx"),
        (f'sum by (service) (rate(http_requests_total{{status="429",{SVC}}}[{RATE}]))', "{{service}} 429"),
    ], "reqps", 0, 8, desc="Server errors and rate-limited requests, by service."),
    panel(4, "Error ratio (5xx / all)", [(
        f'sum by (service) (rate(http_requests_total{{status=~"5..",{SVC}}}[{RATE}]))'
        f" / sum by (service) (rate(http_requests_total{{{SVC}}}[{RATE}]))", "{{service}}")],
        "percentunit", 12, 8, desc="SLO: 99.9 % of requests without a 5xx (alerts: BazaarErrorBudget*Burn)."),
    panel(5, "Outbox backlog", [(f"sum by (service) (events_outbox_backlog{{{SVC}}})", "{{service}}")],
          "short", 0, 16, desc="Events committed but not yet published to the bus. Should hover near 0."),
    panel(6, "Events", [
        (f"sum by (service) (rate(events_published_total{{{SVC}}}[{RATE}]))", "published {{service}}"),
        (f"sum by (service) (rate(events_publish_failed_total{{{SVC}}}[{RATE}]))", "publish failed {{service}}"),
        (f"sum by (consumer) (rate(events_consumed_total{{{SVC}}}[{RATE}]))", "consumed {{consumer}}"),
        (f"sum by (consumer) (rate(events_failed_total{{{SVC}}}[{RATE}]))", "failed {{consumer}}"),
        (f"sum by (consumer) (rate(events_duplicates_total{{{SVC}}}[{RATE}]))", "duplicates {{consumer}}"),
        (f"sum by (consumer) (rate(events_dead_lettered_total{{{SVC}}}[{RATE}]))", "dead-lettered {{consumer}}"),
    ], "ops", 12, 16),
    panel(7, "Latency p99 by route (top 10)", [(
        f"topk(10, histogram_quantile(0.99, sum by (service, route, le) "
        f"(rate(http_request_duration_seconds_bucket{{{SVC}}}[{RATE}]))))", "{{service}} {{route}}")],
        "s", 0, 24),
    panel(8, "Gateway upstream errors", [(
        f"sum by (upstream, kind) (rate(gateway_upstream_errors_total[{RATE}]))", "{{upstream}} {{kind}}")],
        "ops", 12, 24, desc="Upstream unavailable (503) or too slow (504), as seen by the gateway."),
    panel(9, "Database pool connections", [(f"sum by (service, state) (db_pool_connections{{{SVC}}})", "{{service}} {{state}}")],
          "short", 0, 32),
    panel(10, "Gateway breakers and upstream health", [
        ("max by (upstream) (gateway_breaker_state)", "breaker {{upstream}}"),
        ("sum by (upstream) (gateway_upstream_instance_healthy)", "healthy instances {{upstream}}"),
    ], "short", 12, 32, desc="Breaker per upstream: 0 closed, 1 open, 2 half-open (alert: BazaarCircuitBreakerOpen)."),
    panel(11, "Rate limiting", [
        (f"sum (rate(gateway_rate_limited_total[{RATE}]))", "429s"),
        (f"sum (rate(gateway_rate_limit_redis_errors_total[{RATE}]))", "Redis errors (limited locally)"),
    ], "ops", 0, 40),
    panel(12, "Checkout saga: outcomes", [
        (f"sum by (status, reason) (rate(orders_finished_total[{RATE}]))", "{{status}} {{reason}}"),
        (f"sum by (step, cause) (rate(orders_saga_retries_total[{RATE}]))", "retry {{step}} ({{cause}})"),
        (f"sum (rate(orders_saga_compensations_total[{RATE}]))", "compensations"),
    ], "ops", 12, 40, desc="Orders reaching a final status, step retries and compensations."),
    panel(13, "Checkout saga: latency and orders under way", [
        (f"histogram_quantile(0.5, sum by (le) (rate(orders_saga_lifetime_seconds_bucket[{RATE}])))", "placement to final p50"),
        (f"histogram_quantile(0.99, sum by (le) (rate(orders_saga_lifetime_seconds_bucket[{RATE}])))", "placement to final p99"),
        ("max (orders_saga_oldest_age_seconds)", "oldest under way (age)"),
    ], "s", 0, 48, desc="Alert BazaarSagaStuck fires when the oldest order under way is over 60 s old."),
    panel(14, "Orders under way", [("sum (orders_in_saga)", "pending, awaiting payment or compensating")],
          "short", 12, 48),
    panel(15, "Notifications", [
        (f"sum by (kind, outcome) (rate(notifications_sends_total[{RATE}]))", "{{kind}} {{outcome}}"),
    ], "ops", 0, 56, desc="Email send attempts: sent, retried (transient), failed for good (alert: BazaarNotificationFailures)."),
    panel(16, "Process: CPU and memory", [
        (f"sum by (component, instance) (rate(process_cpu_seconds_total[{RATE}]))", "CPU {{instance}}"),
        ("sum by (component, instance) (process_resident_memory_bytes) / 2^30", "RSS GiB {{instance}}"),
    ], "short", 12, 56, desc="Per scraped target (under `bazaar up` every port is the same process)."),
]

SERVICE_VARIABLE = {
    "name": "service",
    "label": "Service",
    "type": "query",
    "datasource": DS,
    "query": {"query": "label_values(http_requests_total, service)", "refId": "service"},
    "definition": "label_values(http_requests_total, service)",
    "refresh": 2,
    "includeAll": True,
    "multi": True,
    "allValue": ".*",
    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    "sort": 1,
}

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
    "templating": {"list": [SERVICE_VARIABLE]},
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
