"""Deployment files, checked with the real tools: docker-compose, promtool and Prometheus, kubectl
kustomize with kubernetes-validate, and a scrape of the running platform for every metric that a
dashboard or an alert uses."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PARTS = {"gateway": "gateway", "fingerprint": "services/fingerprint", "face-recognition": "services/face-recognition",
         "face-verify": "services/face-verify", "contour-mask": "services/contour-mask"}
INFERENCE = [p for p in PARTS if p != "gateway"]
COMPOSE_ENV = {"POSTGRES_PASSWORD": "pw", "BIO_INTERNAL_SECRET": "internal", "BIO_GATEWAY_JWT_SECRET": "jwt",
               "BIO_KEK": "k1:" + "A" * 43 + "=", "BIO_GATEWAY_AUDIT_SECRET": "audit",
               "GRAFANA_ADMIN_PASSWORD": "admin"}
PROMQL_WORDS = {"sum", "by", "rate", "max", "min", "avg", "histogram_quantile", "le", "without", "on", "ignoring",
                "bool", "and", "or", "unless", "count", "clamp_min", "increase", "irate", "offset", "group_left",
                "group_right", "topk", "humanizePercentage", "humanizeDuration"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed in CI (make test-tools installs it)")
        pytest.skip(f"{name} not installed (make test-tools installs it)")
    return path


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- containers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("part", list(PARTS))
def test_dockerfile_per_part_is_multistage_non_root_with_healthcheck(part: str):
    path = DEPLOY / "docker" / f"{part}.Dockerfile"
    parser = DockerfileParser(path=str(path))
    instructions = parser.structure
    froms = [i for i in instructions if i["instruction"] == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    last_from = max(i["startline"] for i in froms)
    final = [i for i in instructions if i["startline"] > last_from]
    users = [i["value"] for i in final if i["instruction"] == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final image runs as a non-root user"
    assert any(i["instruction"] == "HEALTHCHECK" for i in final)
    # dependencies in a cached layer before the source: the first COPY of the package's source comes
    # after the pip install that reads only pyproject.toml files
    copies = [i for i in instructions if i["instruction"] == "COPY"]
    source_copy = next(i for i in copies if re.fullmatch(rf"{re.escape(PARTS[part])} {re.escape(PARTS[part])}", i["value"]))
    manifest_copy = next(i for i in copies if f"{PARTS[part]}/pyproject.toml" in i["value"])
    deps_install = next(i for i in instructions if i["instruction"] == "RUN" and "requirements.txt" in i["value"]
                        and "pip install" in i["value"])
    assert manifest_copy["startline"] < deps_install["startline"] < source_copy["startline"]
    if part in INFERENCE:
        args = [i["value"] for i in instructions if i["instruction"] == "ARG"]
        assert "VARIANT=cpu" in args, "CPU/CUDA variant build argument, CPU by default"
        text = path.read_text()
        assert "base-cuda" in text and "nvidia/cuda" in text


def test_requirements_script_filters_platform_packages_and_cpu_only_wheels(tmp_path: Path):
    req = load_module(DEPLOY / "docker" / "requirements.py")
    pkg = tmp_path / "svc"
    pkg.mkdir()
    (pkg / "pyproject.toml").write_text('[project]\nname="x"\ndependencies=["bio-shared", "dlib-bin>=20", "numpy>=1.26"]\n')
    assert req.requirements([pkg], "cpu") == ["dlib-bin>=20", "numpy>=1.26"]
    assert req.requirements([pkg], "cuda") == ["numpy>=1.26"]
    listed = req.requirements([ROOT / "shared", ROOT / "gateway"], "cpu")
    assert not any(r.startswith("bio-") for r in listed) and any(r.startswith("fastapi") for r in listed)


# -- compose --------------------------------------------------------------------------------------------
def compose_config(*files: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    args = [tool("docker-compose")]
    for f in files:
        args += ["-f", f]
    return subprocess.run([*args, "config"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], **(env if env is not None else COMPOSE_ENV)})


def test_compose_is_valid_and_complete():
    result = compose_config("docker-compose.yml")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    for part in PARTS:
        assert part in services
    for part in INFERENCE:
        worker = services[f"{part}-worker"]
        assert worker["image"] == services[part]["image"], "API and worker share an image"
        assert "worker" in worker["command"]
    for name in ("postgres", "redis", "prometheus"):
        assert "healthcheck" in services[name]
    for name, svc in services.items():
        if name.startswith(tuple(PARTS)):
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["command"] == ["bio-platform", "migrate"]
    assert {"pgdata", "redisdata", "blobs"} <= set(config["volumes"])
    # Prometheus scrapes every API and every worker defined here
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name in services:
        if name.startswith(tuple(PARTS)):
            port = 9100 if name.endswith("-worker") else 8000
            assert f"{name}:{port}" in targets, name


def test_compose_kubernetes_and_launcher_run_one_worker_per_fingerprint_shard(k8s_tree: Path, launch: ModuleType):
    """BIO_FINGERPRINT_SHARDS is the same everywhere and each shard 0..S-1 has its shard worker."""
    result = compose_config("docker-compose.yml")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    count = int(services["fingerprint"]["environment"]["BIO_FINGERPRINT_SHARDS"])
    assert count > 1
    shard_workers = sorted(n for n in services if n.startswith("fingerprint-shard-"))
    assert shard_workers == [f"fingerprint-shard-{i}-worker" for i in range(count)]
    for i, name in enumerate(shard_workers):
        svc = services[name]
        assert svc["image"] == services["fingerprint"]["image"]
        assert svc["command"] == ["bio-fingerprint", "shard-worker", "--shard", str(i)]
        assert svc["environment"]["BIO_FINGERPRINT_SHARDS"] == str(count)
    assert services["fingerprint-worker"]["environment"]["BIO_FINGERPRINT_SHARDS"] == str(count)

    docs = kustomize(k8s_tree, "cpu")
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("bio-config"))
    assert config["data"]["BIO_FINGERPRINT_SHARDS"] == str(count)
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    k8s_shards = sorted(n for n in deployments if n.startswith("fingerprint-shard-"))
    assert k8s_shards == shard_workers
    for i, name in enumerate(k8s_shards):
        assert deployments[name]["spec"]["template"]["spec"]["containers"][0]["args"] == [
            "bio-fingerprint", "shard-worker", "--shard", str(i)]

    plan = launch.build_plan({}, "127.0.0.1", 8000, 9101)
    env = {"BIO_FINGERPRINT_SHARDS": str(count)}
    launched = [p for p in launch.build_plan(env, "127.0.0.1", 8000, 9101) if "shard" in p.name]
    assert [p.name for p in launched] == shard_workers == [p.name for p in plan if "shard" in p.name]
    assert [p.argv[1:] for p in launched] == [["shard-worker", "--shard", str(i)] for i in range(count)]
    ports = [p.port for p in launch.build_plan(env, "127.0.0.1", 8000, 9101) if p.port]
    assert len(ports) == len(set(ports)), "every process has its own port"
    assert not [p for p in launch.build_plan({"BIO_FINGERPRINT_SHARDS": "1"}, "127.0.0.1", 8000, 9101)
                if "shard" in p.name]
    assert not [p for p in launch.build_plan(env, "127.0.0.1", 8000, 9101, services=["face_verify"])
                if "shard" in p.name]


def test_isolated_stack_ports_stay_below_the_kernels_ephemeral_range(launch: ModuleType):
    """A port picked inside the ephemeral range can be taken by an outgoing connection before the
    stack binds it (a worker's metrics port once went to a Redis client socket)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(50):
        base = launch.free_port_base(12)
        assert 20000 <= base and base + 12 <= low


def test_compose_refuses_missing_secrets():
    env = {k: v for k, v in COMPOSE_ENV.items() if k != "BIO_INTERNAL_SECRET"}
    result = compose_config("docker-compose.yml", env=env)
    assert result.returncode != 0 and "BIO_INTERNAL_SECRET" in result.stderr
    example = (ROOT / ".env.example").read_text()
    for key in COMPOSE_ENV:
        assert re.search(rf"^{key}=$", example, re.M), f"{key} listed without a value in .env.example"


def test_compose_gpu_override_reserves_gpus_for_inference_workers():
    result = compose_config("docker-compose.yml", "deploy/compose/gpu.yml")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for part in INFERENCE:
        devices = services[f"{part}-worker"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"
        assert services[part]["build"]["args"]["VARIANT"] == "cuda"
    assert "deploy" not in services["gateway"]


# -- monitoring files -----------------------------------------------------------------------------------
def test_alert_rules_pass_promtool():
    result = subprocess.run([tool("promtool"), "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for g in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
             for r in g["rules"]}
    assert {"BioServiceDown", "BioHighErrorRate", "BioJobFailures", "BioQueueBacklog", "BioHighLatency"} <= names


def test_prometheus_config_passes_promtool(tmp_path: Path):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run([tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_files_are_current():
    for script in (DEPLOY / "grafana" / "build_dashboards.py", DEPLOY / "k8s" / "build_manifests.py"):
        result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboards():
    boards = sorted(p.name for p in (DEPLOY / "grafana" / "dashboards").glob("*.json"))
    assert boards == ["contour-mask.json", "face-recognition.json", "face-verify.json", "fingerprint.json",
                      "overview.json"]
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    for board in boards:
        data = json.loads((DEPLOY / "grafana" / "dashboards" / board).read_text())
        assert data["panels"] and all(t["datasource"]["uid"] == uid for p in data["panels"] for t in p["targets"])


# -- Kubernetes -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(DEPLOY / "k8s", tree)
    shutil.copy(tree / "base" / "secrets.env.example", tree / "base" / "secrets.env")
    return tree


def kustomize(tree: Path, overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run([tool("kubectl"), "kustomize", str(tree / "overlays" / overlay)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_kustomize_overlays_build_and_validate(k8s_tree: Path, overlay: str, tmp_path: Path):
    docs = kustomize(k8s_tree, overlay)
    out = tmp_path / f"{overlay}.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    validator = Path(sys.executable).parent / "kubernetes-validate"
    result = subprocess.run([str(validator), "--strict", "-k", "1.32.0", "--quiet", str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

    kinds: dict[str, set[str]] = {}
    for d in docs:
        kinds.setdefault(d["kind"], set()).add(d["metadata"]["name"])
    apis = set(PARTS)
    workers = {f"{p}-worker" for p in INFERENCE}
    assert apis | workers <= kinds["Deployment"]
    assert apis <= kinds["Service"]
    assert apis | workers <= kinds["HorizontalPodAutoscaler"]
    assert kinds["Ingress"] == {"gateway"} and kinds["Job"] == {"bio-migrate"}
    assert "bio-config" in kinds["ConfigMap"] and any(n.startswith("bio-secrets") for n in kinds["Secret"])
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        container = d["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["requests"], d["metadata"]["name"]
        if d["metadata"]["name"] in apis:
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        gpu = container["resources"].get("limits", {}).get("nvidia.com/gpu")
        expect_gpu = overlay == "gpu" and d["metadata"]["name"] in workers
        assert (gpu == 1) == expect_gpu, d["metadata"]["name"]


# -- the running platform: dashboards, alerts and a real Prometheus ---------------------------------------
def used_metric_names() -> set[str]:
    exprs = [t["expr"] for board in (DEPLOY / "grafana" / "dashboards").glob("*.json")
             for p in json.loads(board.read_text())["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
              for r in g["rules"]]
    names = set()
    for expr in exprs:
        expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
        expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
        expr = re.sub(r"by \([^)]*\)", "", expr)
        for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
            if word not in PROMQL_WORDS and not re.fullmatch(r"\d+|e\d+", word):
                names.add(word)
    return names


def family(name: str) -> str:
    return re.sub(r"_(bucket|sum|count|total|created)$", "", name)


@pytest.fixture
def running_platform(launch: ModuleType, pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    var_dir = tmp_path / "var"
    base = launch.free_port_base(12)  # gateway, 4 APIs, 4 workers, webhooks worker, 2 fingerprint shard workers
    env = {"BIO_DATABASE_URL": pg_url, "BIO_REDIS_URL": redis_url, "BIO_ENV": "development"}
    try:
        yield launch.up(env, var_dir=var_dir, port_base=base, metrics_port_base=base + 5, timeout_s=120, quiet=True)
    finally:
        launch.down(var_dir, quiet=True)


def exercise(info: dict[str, Any], data_dir: Path) -> None:
    """Traffic that makes every kind of series appear: logins (one failing), a job per service."""
    with httpx.Client(base_url=info["gateway_url"], timeout=30) as http:
        http.post("/api/v1/auth/register", json={"email": "ops@example.org", "password": "correct horse battery"})
        http.post("/api/v1/auth/login", data={"username": "ops@example.org", "password": "wrong password"})
        token = http.post("/api/v1/auth/login",
                          data={"username": "ops@example.org", "password": "correct horse battery"}).json()
        h = {"Authorization": f"Bearer {token['access_token']}"}
        image = (data_dir / "fingerprints" / "fvc2002" / "DB1_B" / "101_1.tif").read_bytes()
        urls = []
        for prefix in ("/api/v1/fingerprint", "/api/v1/faces", "/api/v1/verify", "/api/v1/contours"):
            r = http.post(f"{prefix}/jobs/normalize", files={"file": ("p.tif", image)}, headers=h)
            assert r.status_code == 202, r.text
            urls.append(r.json()["status_url"])
        deadline = time.monotonic() + 60
        while urls and time.monotonic() < deadline:
            urls = [u for u in urls if http.get(u, headers=h).json()["status"] not in ("succeeded", "failed")]
            time.sleep(0.3)
        assert not urls, "jobs did not finish"


def scrape_targets(info: dict[str, Any]) -> dict[str, str]:
    """name -> host:port of every process with a /metrics endpoint."""
    return {name: f"127.0.0.1:{proc['port']}" for name, proc in info["processes"].items() if proc["port"]}


@pytest.mark.integration
def test_dashboards_and_alerts_use_only_exported_metrics(running_platform: dict[str, Any], data_dir: Path):
    exercise(running_platform, data_dir)
    exported: set[str] = set()
    targets = scrape_targets(running_platform)
    assert len(targets) == 12, targets  # gateway, four APIs, four workers, the webhooks worker, two shard workers
    for name, target in targets.items():
        text = httpx.get(f"http://{target}/metrics", timeout=10).text
        exported |= set(re.findall(r"^# TYPE (\S+)", text, re.M))
        # the webhooks worker ran no delivery in this traffic, the shard workers run searches, not jobs
        if name.endswith("-worker") and name != "webhooks-worker" and "-shard-" not in name:
            assert "bio_jobs_total" in text, f"{name} exports no job metrics"
    exported_families = {family(n) for n in exported}
    missing = {n for n in used_metric_names() if n != "up" and family(n) not in exported_families}
    assert not missing, f"dashboards or alerts use metrics nobody exports: {sorted(missing)}"


@pytest.mark.integration
def test_real_prometheus_scrapes_the_platform(running_platform: dict[str, Any], data_dir: Path, tmp_path: Path):
    binary = tool("prometheus")
    exercise(running_platform, data_dir)
    targets = scrape_targets(running_platform)
    jobs = {"bio-gateway": [t for n, t in targets.items() if n == "gateway"],
            "bio-api": [t for n, t in targets.items() if n != "gateway" and not n.endswith("-worker")],
            "bio-worker": [t for n, t in targets.items() if n.endswith("-worker")]}
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", tmp_path / "alerts.yml")
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": [str(tmp_path / "alerts.yml")],
              "scrape_configs": [{"job_name": job, "static_configs": [{"targets": t}]} for job, t in jobs.items()]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        def query(q: str) -> list[dict]:
            r = httpx.get(f"{api}/query", params={"query": q}, timeout=5)
            r.raise_for_status()
            return r.json()["data"]["result"]

        deadline = time.monotonic() + 60
        up: list[dict] = []
        while time.monotonic() < deadline:
            try:
                up = query('up{job=~"bio-.*"} == 1')
                if len(up) == len(targets) and query("bio_jobs_total"):
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert len(up) == len(targets), f"targets up: {up}\n{(tmp_path / 'prometheus.log').read_text()[-2000:]}"
        services = {r["metric"]["service"] for r in query("bio_http_requests_total")}
        assert {"gateway", "fingerprint", "face_recognition", "face_verify", "contour_mask"} <= services
        outcomes = {(r["metric"]["service"], r["metric"]["outcome"]) for r in query('bio_jobs_total{job="bio-worker"}')}
        assert {("fingerprint", "succeeded"), ("face_verify", "succeeded")} <= outcomes
        assert query('bio_auth_failures_total{reason="bad_credentials"}')
        assert query("bio_jobs_in_state")
        rules = httpx.get(f"{api}/rules", timeout=5).json()["data"]["groups"][0]["rules"]
        assert all(r["health"] == "ok" for r in rules), rules
    finally:
        proc.terminate()
        proc.wait(timeout=20)
