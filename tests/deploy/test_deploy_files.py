"""Checks of deploy/ that can run on a machine without a container engine.

There is no Docker engine or Kubernetes cluster here, so the files are checked
by what can be checked: every YAML and JSON file parses; the systemd unit
verifies; the configuration the image and the manifests ship passes
`partnerpulse check-config`; the probe paths and port the manifests use answer
on a running instance; every metric name the Grafana dashboard and the
Prometheus rules query is exported by that instance; the image's runtime
packages provide every shared library the binary links.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set (ctest sets it; see tests/integration/CMakeLists.txt)")
    return value


def _yaml_files():
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def test_every_yaml_and_json_parses():
    files = _yaml_files()
    assert len(files) >= 10, files
    for p in files:
        docs = list(yaml.safe_load_all(p.read_text()))
        assert docs and all(d is not None for d in docs), p
    jsons = sorted(DEPLOY.rglob("*.json"))
    assert jsons
    for p in jsons:
        json.loads(p.read_text())


def test_systemd_unit_verifies():
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing (deploy/local/install-deps.sh installs systemd)")
    unit = (DEPLOY / "systemd" / "partnerpulse.service").read_text()
    binary = _env("PP_BIN")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "partnerpulse.service"
        path.write_text(unit.replace("/usr/local/bin/partnerpulse", binary))
        out = subprocess.run(["systemd-analyze", "verify", str(path)],
                             capture_output=True, text=True, timeout=60)
    lines = [l for l in (out.stdout + out.stderr).splitlines() if "partnerpulse.service" in l]
    assert out.returncode == 0 and not lines, out.stdout + out.stderr
    assert "Type=notify" in unit and "DynamicUser=yes" in unit and "StateDirectory=" in unit


def _shipped_configs():
    cm = yaml.safe_load((DEPLOY / "k8s" / "base" / "configmap.yaml").read_text())
    sts = yaml.safe_load((DEPLOY / "k8s" / "statefulset" / "kustomization.yaml").read_text())
    patched = sts["patches"][0]["patch"]
    sts_config = yaml.safe_load(patched)[0]["value"]
    return {
        "container": (DEPLOY / "container" / "config.yaml").read_text(),
        "configmap": cm["data"]["config.yaml"],
        "statefulset": sts_config,
    }


def test_shipped_configs_pass_check_config():
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS="kafka:9092", PARTNERPULSE_HTTP_TOKEN="t0ken",
               KAFKA_USERNAME="u", KAFKA_PASSWORD="p", POD_NAME="partnerpulse-0")
    for name, text in _shipped_configs().items():
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            f.write(text)
        try:
            out = subprocess.run([_env("PP_BIN"), "check-config", f.name], env=env,
                                 capture_output=True, text=True, timeout=30)
            assert out.returncode == 0, f"{name}: {out.stdout}{out.stderr}"
        finally:
            os.unlink(f.name)


def _probe_paths_and_port():
    dep = yaml.safe_load((DEPLOY / "k8s" / "base" / "deployment.yaml").read_text())
    c = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    paths = {c[k]["httpGet"]["path"] for k in ("livenessProbe", "readinessProbe", "startupProbe")}
    return ports, paths


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def running_instance():
    """The binary against the real broker, configured like the manifests."""
    port = _free_port()
    # The shipped config reads the default topic names; a fresh test broker
    # has none, and /readyz is ready only once input partitions are held.
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": _env("PP_BOOTSTRAP")})
    futures = admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1)
                                   for t in ("deals", "license-consumption", "support")])
    for topic, f in futures.items():
        try:
            f.result(30)
        except Exception as e:  # an existing topic is fine
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    cfg = yaml.safe_load(_shipped_configs()["container"].replace("${PARTNERPULSE_TENANT:-default}", "deploy"))
    cfg["application_id"] = f"deploy-check-{os.getpid()}"
    cfg["http"] = {"listen": f"127.0.0.1:{port}"}
    cfg["kafka"] = {"bootstrap.servers": _env("PP_BOOTSTRAP")}
    d = tempfile.mkdtemp()
    path = Path(d) / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    log = open(Path(d) / "stderr.log", "w")
    proc = subprocess.Popen([_env("PP_BIN"), "run", "--config", str(path)], stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if _get(base + "/healthz", 1)[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    log.close()
    shutil.rmtree(d)


def test_manifest_probes_answer(running_instance):
    ports, paths = _probe_paths_and_port()
    assert ports == {"http": 8080}
    listen = yaml.safe_load(_shipped_configs()["configmap"])["http"]["listen"]
    assert listen.endswith(":8080")
    assert paths == {"/healthz", "/readyz"}
    assert _get(running_instance + "/healthz")[0] == 200
    deadline = time.time() + 30
    while _get(running_instance + "/readyz")[0] != 200:
        assert time.time() < deadline, "/readyz never became ready"
        time.sleep(0.3)


def _exported_metric_names(text):
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            names.add(name)
            if kind == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names


def _queried_metric_names():
    exprs = []
    dash = json.loads((DEPLOY / "grafana" / "partnerpulse-dashboard.json").read_text())
    for panel in dash["panels"]:
        exprs += [t["expr"] for t in panel["targets"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "partnerpulse-rules.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return {m for e in exprs for m in re.findall(r"\bpartnerpulse_[a-z_]+\b", e)}


def test_dashboards_and_rules_use_exported_metrics(running_instance):
    status, text = _get(running_instance + "/metrics")
    assert status == 200
    exported = _exported_metric_names(text)
    queried = _queried_metric_names()
    assert len(queried) >= 8
    missing = queried - exported
    assert not missing, f"queried but not exported: {sorted(missing)}"


def test_image_runtime_packages_cover_linked_libraries():
    dockerfile = (DEPLOY / "container" / "Dockerfile").read_text()
    final = dockerfile.split("FROM debian:bookworm-slim", 1)[1]
    listed = set(re.findall(r"\b(lib[a-z0-9.+-]+)\b", final.split("rm -rf")[0]))
    ldd = subprocess.run(["ldd", _env("PP_BIN")], capture_output=True, text=True, check=True)
    needed = set()
    for line in ldd.stdout.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if not m:
            continue
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))],
                               capture_output=True, text=True)
        if owner.returncode == 0:
            pkg = owner.stdout.split(":")[0]
            needed.add(pkg)
    # Libraries of the base image itself (libc, libssl's deps, ...) come with
    # bookworm-slim or as dependencies of the listed packages.
    direct = {"librdkafka1", "libavro23", "libevent-2.1-7", "libjansson4", "libyaml-0-2"}
    assert direct <= needed | direct
    assert direct <= listed, f"runtime stage lacks {sorted(direct - listed)}"
    for pkg in needed:
        if pkg.startswith(("libevent", "librdkafka", "libavro", "libjansson", "libyaml", "libcurl", "libsystemd")):
            assert pkg in listed, f"the binary links {pkg} but the image does not install it"


def test_sd_notify_ready_and_stopping(tmp_path):
    """Type=notify: READY=1 once partitions are held, STOPPING=1 on SIGTERM."""
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": _env("PP_BOOTSTRAP")})
    topics = [f"notify-{os.getpid()}-{kind}" for kind in ("deals", "licenses", "support")]
    for f in admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)
                                  for t in topics]).values():
        f.result(30)
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(1.0)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "application_id": f"notify-{os.getpid()}",
        "topics": dict(zip(("deals", "licenses", "support"), topics)),
        "http": {"listen": "127.0.0.1:0"},
        "kafka": {"bootstrap.servers": _env("PP_BOOTSTRAP")},
    }))
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    proc = subprocess.Popen([_env("PP_BIN"), "run", "--config", str(cfg)], env=env,
                            stderr=subprocess.DEVNULL)
    got = []
    try:
        deadline = time.time() + 60
        while not any("READY=1" in m for m in got):
            assert time.time() < deadline, f"no READY=1 from the service: {got}"
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
        proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 30
        while not any("STOPPING=1" in m for m in got):
            assert time.time() < deadline, f"no STOPPING=1 after SIGTERM: {got}"
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                pass
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
