#!/usr/bin/env python3
"""Write the Kubernetes base manifests (deploy/k8s/base/*.yaml) from one description.

    python deploy/k8s/build_manifests.py           # rewrite base/
    python deploy/k8s/build_manifests.py --check   # exit 1 if a committed file differs

Nine Deployments differ only in a few fields, so they are generated rather than copied by hand; the
overlays (cpu, gpu) are plain kustomize files. Tests build both overlays with `kubectl kustomize` and
validate every object with kubernetes-validate.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from bio_shared.services import PlatformService, platform_services

BASE = Path(__file__).parent / "base"
Resources = tuple[str, str, str]  # cpu request, memory request, memory limit
# Sizing per service folder: (API resources, worker resources, max workers); the services themselves
# come from the platform's list (bio_shared/services.toml), and one without an entry gets DEFAULT_SIZING.
DEFAULT_SIZING: tuple[Resources, Resources, int] = (("250m", "512Mi", "1Gi"), ("1", "1Gi", "2Gi"), 8)
SIZING: dict[str, tuple[Resources, Resources, int]] = {
    "face-recognition": (("500m", "1Gi", "2Gi"), ("1", "1Gi", "2Gi"), 8),
    "face-verify": (("250m", "512Mi", "1Gi"), ("1", "1500Mi", "3Gi"), 8),
    "contour-mask": (("250m", "512Mi", "1Gi"), ("1", "1Gi", "2Gi"), 6),
}
# Shards of the fingerprint two-stage 1:N search: one Deployment per shard (queue fingerprint-shard-I), as
# BIO_FINGERPRINT_SHARDS in the ConfigMap; a shard's templates take about 25 kB each in memory.
FINGERPRINT_SHARDS = 2
SHARD_WORKER: Resources = ("1", "2Gi", "4Gi")
LABEL = "app.kubernetes.io/name"
PART = "app.kubernetes.io/component"
SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "capabilities": {"drop": ["ALL"]}}
ENV_FROM = [{"configMapRef": {"name": "bio-config"}}, {"secretRef": {"name": "bio-secrets"}}]
VOLUMES = [{"name": "blobs", "persistentVolumeClaim": {"claimName": "bio-blobs"}},
           {"name": "tmp", "emptyDir": {}}]
MOUNTS = [{"name": "blobs", "mountPath": "/var/lib/bio"}, {"name": "tmp", "mountPath": "/tmp"}]


def meta(name: str, part: str, **extra: object) -> dict:
    return {"name": name, "labels": {LABEL: name, PART: part, "app.kubernetes.io/part-of": "bio"}, **extra}


def resources(cpu: str, memory: str, limit_memory: str) -> dict:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": limit_memory}}


def deployment(name: str, part: str, container: dict, replicas: int, scrape_port: int) -> dict:
    container.setdefault("securityContext", CONTAINER_SECURITY)
    container.setdefault("envFrom", ENV_FROM)
    container.setdefault("volumeMounts", MOUNTS)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, part),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL: name}},
            "template": {
                "metadata": {"labels": {LABEL: name, PART: part, "app.kubernetes.io/part-of": "bio"},
                             "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(scrape_port),
                                             "prometheus.io/path": "/metrics"}},
                "spec": {"securityContext": SECURITY, "containers": [container], "volumes": VOLUMES,
                         "terminationGracePeriodSeconds": 60},
            },
        },
    }


def api(name: str, image: str, args: list[str], res: tuple[str, str, str], replicas: int) -> list[dict]:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 15, "timeoutSeconds": 3,
             "failureThreshold": 4}
    container = {
        "name": "api", "image": image, "args": args,
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3},
        "livenessProbe": probe,
        "startupProbe": {**probe, "periodSeconds": 5, "failureThreshold": 36},  # model loading: up to 3 min
        "resources": resources(*res),
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, "api"),
               "spec": {"selector": {LABEL: name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return [deployment(name, "api", container, replicas, 8000), service]


def worker(name: str, image: str, args: list[str], res: tuple[str, str, str], part: str = "worker") -> dict:
    container = {
        "name": "worker", "image": image, "args": args,
        "env": [{"name": "BIO_WORKER_METRICS_PORT", "value": "9100"},
                {"name": "BIO_WORKER_METRICS_ADDR", "value": "0.0.0.0"},
                {"name": "PROMETHEUS_MULTIPROC_DIR", "value": "/tmp/prometheus"}],
        "ports": [{"name": "metrics", "containerPort": 9100}],
        "livenessProbe": {"httpGet": {"path": "/metrics", "port": "metrics"}, "initialDelaySeconds": 60,
                          "periodSeconds": 30, "timeoutSeconds": 5},
        "resources": resources(*res),
    }
    return deployment(name, part, container, 1, 9100)


def hpa(name: str, kind_max: tuple[int, int], target_cpu: int = 70) -> dict:
    low, high = kind_max
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": meta(name, "autoscaling"),
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                   "target": {"type": "Utilization",
                                                                              "averageUtilization": target_cpu}}}]}}


def build() -> dict[str, list[dict]]:
    files: dict[str, list[dict]] = {}
    services_json = json.dumps({s.name: f"http://{s.folder}" for s in platform_services()},
                               separators=(",", ":"))
    files["config.yaml"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("bio-config", "config"),
         "data": {"BIO_ENV": "production", "BIO_VAR_DIR": "/var/lib/bio", "BIO_LOG_LEVEL": "INFO",
                  "BIO_REDIS_URL": "redis://redis:6379/0", "BIO_GATEWAY_SERVICES": services_json,
                  "BIO_GATEWAY_TRUST_FORWARDED_FOR": "true", "BIO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1",
                  "BIO_FINGERPRINT_SHARDS": str(FINGERPRINT_SHARDS),
                  "HOME": "/tmp"}},  # read-only root filesystem: libraries write caches under HOME
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("bio-blobs", "storage"),
         "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "50Gi"}}}},
    ]
    files["migrate.yaml"] = [{
        "apiVersion": "batch/v1", "kind": "Job", "metadata": meta("bio-migrate", "migration"),
        "spec": {"backoffLimit": 6, "ttlSecondsAfterFinished": 3600, "template": {
            "metadata": {"labels": {LABEL: "bio-migrate", PART: "migration"}},
            "spec": {"restartPolicy": "OnFailure", "securityContext": SECURITY,
                     "containers": [{"name": "migrate", "image": "bio-gateway", "args": ["bio-platform", "migrate"],
                                     "envFrom": ENV_FROM, "securityContext": CONTAINER_SECURITY,
                                     "resources": resources("100m", "256Mi", "512Mi"),
                                     "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}],
                     "volumes": [{"name": "tmp", "emptyDir": {}}]}}}}]
    files["gateway.yaml"] = [
        *api("gateway", "bio-gateway", ["bio-platform", "serve", "--host", "0.0.0.0", "--port", "8000"],
             ("250m", "256Mi", "512Mi"), 2),
        hpa("gateway", (2, 10)),
        worker("gateway-worker", "bio-gateway", ["bio-platform", "worker"], ("100m", "256Mi", "512Mi")),
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": meta("gateway", "ingress", annotations={"nginx.ingress.kubernetes.io/proxy-body-size": "25m",
                                                              "nginx.ingress.kubernetes.io/proxy-read-timeout": "180"}),
         "spec": {"ingressClassName": "nginx",
                  "tls": [{"hosts": ["bio.example.org"], "secretName": "bio-tls"}],
                  "rules": [{"host": "bio.example.org", "http": {"paths": [{
                      "path": "/", "pathType": "Prefix",
                      "backend": {"service": {"name": "gateway", "port": {"name": "http"}}}}]}}]}},
    ]
    for service in platform_services():
        files[f"{service.folder}.yaml"] = service_docs(service)
    return files


def service_docs(service: PlatformService) -> list[dict]:
    folder, cli, image = service.folder, service.cli, f"bio-{service.folder}"
    api_res, worker_res, max_workers = SIZING.get(folder, DEFAULT_SIZING)
    docs = [*api(folder, image, [cli, "serve", "--host", "0.0.0.0", "--port", "8000"], api_res, 1),
            hpa(folder, (1, 5)),
            worker(f"{folder}-worker", image, [cli, "worker"], worker_res),
            hpa(f"{folder}-worker", (1, max_workers))]
    if service.name == "fingerprint":  # shard workers of the 1:N search; replicas of one share its queue
        # component "search": CPU matching, so the GPU overlay (component=worker) leaves them alone
        docs += [worker(f"{folder}-shard-{i}-worker", image, [cli, "shard-worker", "--shard", str(i)], SHARD_WORKER,
                        part="search") for i in range(FINGERPRINT_SHARDS)]
    if service.beat:  # one scheduler for the periodic schedule, never scaled
        beat = worker(f"{folder}-beat", image, ["celery", "-A", f"{service.package}.tasks", "beat",
                                                "--schedule", "/tmp/celerybeat-schedule"],
                      ("50m", "256Mi", "512Mi"))
        container = beat["spec"]["template"]["spec"]["containers"][0]
        container["name"] = "beat"
        for key in ("ports", "livenessProbe", "env"):
            container.pop(key)
        beat["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] = "false"
        beat["spec"]["strategy"] = {"type": "Recreate"}
        docs.append(beat)
    return docs


def render(docs: list[dict]) -> str:
    return "\n---\n".join(yaml.safe_dump(d, sort_keys=False, width=120) for d in docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for filename, docs in build().items():
        text = "# generated by deploy/k8s/build_manifests.py: edit that, then run it\n" + render(docs)
        path = BASE / filename
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(filename)
        else:
            path.write_text(text)
    if stale:
        print("k8s base out of date (run deploy/k8s/build_manifests.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
