#!/usr/bin/env python3
"""Write the Grafana dashboards (deploy/grafana/dashboards/*.json) from one description.

    python deploy/grafana/build_dashboards.py          # rewrite the JSON files
    python deploy/grafana/build_dashboards.py --check  # exit 1 if a committed file differs

Every query refers only to metrics the platform exports (a test scrapes the running platform and
checks each metric name used here against it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bio_shared.services import platform_services

OUT = Path(__file__).parent / "dashboards"
DS = {"type": "prometheus", "uid": "prometheus"}
NOISE = 'route!~"/metrics|/healthz|/readyz"'


def q95(metric: str, by: str, selector: str = "") -> str:
    matcher = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile(0.95, sum by ({by}, le) (rate({metric}_bucket{matcher}[5m])))"


def panel(title: str, exprs: list[tuple[str, str]], *, unit: str = "short", kind: str = "timeseries") -> dict:
    return {
        "type": kind, "title": title, "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"datasource": DS, "expr": e, "legendFormat": legend, "refId": chr(65 + i)}
                    for i, (e, legend) in enumerate(exprs)],
    }


def dashboard(uid: str, title: str, panels: list[dict]) -> dict:
    for i, p in enumerate(panels):  # two panels a row, 8 units high
        p["id"] = i + 1
        p["gridPos"] = {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8}
    return {"uid": uid, "title": title, "tags": ["bio"], "timezone": "utc", "schemaVersion": 39, "version": 1,
            "refresh": "30s", "time": {"from": "now-6h", "to": "now"}, "editable": False, "panels": panels}


def overview() -> dict:
    return dashboard("bio-overview", "Biometric platform: overview", [
        panel("Targets up", [("up{job=~\"bio-.*\"}", "{{job}} {{instance}}")]),
        panel("Requests per second by service", [(f"sum by (service) (rate(bio_http_requests_total{{{NOISE}}}[5m]))", "{{service}}")], unit="reqps"),
        panel("5xx ratio by service", [("sum by (service) (rate(bio_http_requests_total{status=~\"5..\"}[5m])) / "
                                        "sum by (service) (rate(bio_http_requests_total[5m]))", "{{service}}")], unit="percentunit"),
        panel("p95 latency by service", [(q95("bio_http_request_duration_seconds", "service", NOISE), "{{service}}")], unit="s"),
        panel("Jobs by outcome", [("sum by (service, outcome) (rate(bio_jobs_total[5m]))", "{{service}} {{outcome}}")], unit="ops"),
        panel("Jobs waiting and running", [("max by (service, status) (bio_jobs_in_state)", "{{service}} {{status}}")]),
        panel("Authentication failures by reason", [("sum by (reason) (rate(bio_auth_failures_total[5m]))", "{{reason}}")], unit="ops"),
        panel("Rate-limit rejections", [("sum by (scope) (rate(bio_rate_limit_rejections_total[5m]))", "{{scope}}")], unit="ops"),
        panel("Gateway upstream errors", [("sum by (service, kind) (rate(bio_gateway_upstream_errors_total[5m]))", "{{service}} {{kind}}")], unit="ops"),
        panel("Enrolled (gallery and template counts)", [("max by (service, gallery) (bio_gallery_size)", "{{service}} {{gallery}}")]),
    ])


# Panels on metrics only one service exports.
EXTRA_PANELS = {
    "contour_mask": lambda: [
        panel("Result cache lookups", [("sum by (result) (rate(bio_contour_cache_total[5m]))", "{{result}}")], unit="ops"),
        panel("Time per stage (p95)", [(q95("bio_contour_stage_seconds", "stage"), "{{stage}}")], unit="s"),
    ],
}


def service_dashboard(name: str, title: str) -> dict:
    s = f'service="{name}"'
    extra = EXTRA_PANELS.get(name, lambda: [])()
    return dashboard(f"bio-{name.replace('_', '-')}", f"Biometric platform: {title}", [
        panel("Requests per second by route", [(f"sum by (route, status) (rate(bio_http_requests_total{{{s},{NOISE}}}[5m]))", "{{route}} {{status}}")], unit="reqps"),
        panel("Latency by route (p95)", [(q95("bio_http_request_duration_seconds", "route", f"{s},{NOISE}"), "{{route}}")], unit="s"),
        panel("Jobs by kind and outcome", [(f"sum by (kind, outcome) (rate(bio_jobs_total{{{s}}}[5m]))", "{{kind}} {{outcome}}")], unit="ops"),
        panel("Job duration (p95) by kind", [(q95("bio_job_duration_seconds", "kind", s), "{{kind}}")], unit="s"),
        panel("Queue wait (p95) by kind", [(q95("bio_job_queue_wait_seconds", "kind", s), "{{kind}}")], unit="s"),
        panel("Jobs waiting and running", [(f"max by (status) (bio_jobs_in_state{{{s}}})", "{{status}}")]),
        panel("Inference time (p95) by model", [(q95("bio_inference_seconds", "model", s), "{{model}}")], unit="s"),
        panel("Gallery and template counts", [(f"max by (gallery) (bio_gallery_size{{{s}}})", "{{gallery}}")]),
        *extra,
    ])


def build() -> dict[str, dict]:
    boards = {"overview.json": overview()}
    for service in platform_services():  # the platform's list, bio_shared/services.toml
        boards[f"{service.folder}.json"] = service_dashboard(service.name, service.title)
    return boards


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for filename, board in build().items():
        text = json.dumps(board, indent=2) + "\n"
        path = OUT / filename
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(filename)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("dashboards out of date (run deploy/grafana/build_dashboards.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
