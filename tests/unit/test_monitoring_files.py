"""The monitoring files (Prometheus scrape config and alerts, Grafana provisioning and dashboard)
agree with docker-compose.yml, with each other and with Grafana's own dashboard model.

That every query names a series the service really exports is checked against live scrapes in
tests/e2e/test_operations.py; here the files are read without any server.
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus as grafana_prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard, Panel, RowPanel

from tests.support.promql import metric_names

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "stock.json"
PROVISIONING = DEPLOY / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]


@pytest.fixture(scope="module")
def scrape_config() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """{container path: repository path} of a service's bind mounts from the repository."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def _container_path(service: dict[str, Any], path: str) -> Path:
    """The repository file a service sees at `path`, through its bind mounts."""
    for target, source in _mounts(service).items():
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return REPO / source / Path(path).relative_to(target)
    raise AssertionError(f"{path} is not mounted from the repository")


def _listening_ports(name: str, service: dict[str, Any]) -> set[int]:
    ports = {int(str(p)) for p in service.get("expose", [])}
    ports |= {int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])}
    command = service.get("command") or []
    if "--port" in command:
        ports.add(int(command[command.index("--port") + 1]))
    return ports


def test_bind_mounts_name_files_in_the_repository(services):
    for name, service in services.items():
        for source in _mounts(service).values():
            assert (REPO / source).exists(), f"{name} mounts missing {source}"


def _targets(job: dict[str, Any]) -> list[tuple[str, int]]:
    """(service, port) of a scrape job: static targets, and DNS names (every replica of a service)."""
    targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1]))
               for static in job.get("static_configs", []) for t in static["targets"]]
    for dns in job.get("dns_sd_configs", []):
        assert dns.get("type", "SRV") == "A", "compose's DNS answers A records, one per replica"
        targets += [(name, int(dns["port"])) for name in dns["names"]]
    return targets


def test_every_scrape_target_is_a_compose_service_listening_on_that_port(services, scrape_config):
    jobs = {job["job_name"]: job for job in scrape_config["scrape_configs"]}
    assert {"stock-api", "stock-worker"} <= set(jobs)
    for job in jobs.values():
        for host, port in _targets(job):
            assert host in services, f"scrape target {host}:{port}: no service {host}"
            assert port in _listening_ports(host, services[host]), f"{host} does not listen on {port}"


def test_every_worker_and_api_replica_is_scraped(services, scrape_config):
    """Several worker replicas, each serving 9200 in its own container, and the webhooks worker:
    found by DNS, not listed."""
    jobs = {job["job_name"]: job for job in scrape_config["scrape_configs"]}
    worker_port = int(services["worker"]["environment"]["WORKER_METRICS_PORT"])
    assert int(services["webhooks"]["environment"]["WORKER_METRICS_PORT"]) == worker_port
    assert _targets(jobs["stock-worker"]) == [("worker", worker_port), ("webhooks", worker_port)]
    assert _targets(jobs["stock-api"]) == [("api", int(services["api"]["environment"]["API_METRICS_PORT"]))]
    assert not jobs["stock-worker"].get("static_configs") and not jobs["stock-api"].get("static_configs")


def test_the_worker_serves_metrics_where_prometheus_looks(services):
    worker = services["worker"]["environment"]
    # A worker consuming stock.0 serves on WORKER_METRICS_PORT + 0, on an address other containers reach.
    assert int(worker["WORKER_METRICS_PORT"]) in _listening_ports("worker", services["worker"])
    assert worker["WORKER_METRICS_HOST"] == "0.0.0.0"


def test_the_api_adds_up_its_processes_metrics_in_a_fresh_directory(services):
    api = services["api"]
    directory = api["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert directory in api.get("tmpfs", []), "a tmpfs: empty at every start"
    assert "--workers" in api["command"]


def test_prometheus_loads_the_alert_rules_it_is_given(services, scrape_config):
    for rule_file in scrape_config["rule_files"]:
        rules = yaml.safe_load(_container_path(services["prometheus"], rule_file).read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                assert {"alert", "expr", "for", "labels", "annotations"} <= rule.keys(), rule
                assert rule["labels"]["severity"] in {"page", "ticket"}
                assert metric_names(rule["expr"]), rule["alert"]


def test_mysql_logs_slow_queries(services):
    command = services["mysql"]["command"]
    assert "--slow-query-log=ON" in command
    long_query = next(arg for arg in command if arg.startswith("--long-query-time="))
    assert 0 < float(long_query.split("=")[1]) <= 1


def test_grafana_provisions_the_datasource_and_the_dashboard(services, dashboard):
    grafana = services["grafana"]
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    host, port = re.fullmatch(r"http://([\w-]+):(\d+)", datasource["url"]).groups()
    assert int(port) in _listening_ports(host, services[host])
    assert _container_path(grafana, "/etc/grafana/provisioning/datasources/prometheus.yml").exists()
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "stock.yml").read_text())["providers"]
    assert _container_path(grafana, provider["options"]["path"]) == DASHBOARD.parent
    used = {target["datasource"]["uid"] for panel in dashboard["panels"] if panel["type"] != "row"
            for target in panel["targets"]} | {panel["datasource"]["uid"] for panel in dashboard["panels"]
                                               if panel["type"] != "row"}
    assert used == {datasource["uid"]}


def test_the_dashboard_is_a_grafana_dashboard(dashboard):
    assert dashboard["uid"] and 8 <= len(dashboard["uid"]) <= 40
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    # Decoded with Grafana's own generated model: every panel a panel or a row, every query a
    # Prometheus query.
    register_default_plugins()
    model = Dashboard.from_json(dashboard)
    assert model.schema_version == dashboard["schemaVersion"] >= 36
    panels = [p for p in model.panels if isinstance(p, Panel)]
    assert len(panels) + sum(isinstance(p, RowPanel) for p in model.panels) == len(dashboard["panels"])
    assert len(panels) >= 10
    for panel in panels:
        assert panel.type_val in {"timeseries", "stat", "gauge", "table", "bargauge"}, panel.title
        assert panel.targets, f"{panel.title}: no query"
        for query in panel.targets:
            assert isinstance(query, grafana_prometheus.Dataquery), panel.title
            assert query.ref_id and metric_names(query.expr), panel.title
        assert len({q.ref_id for q in panel.targets}) == len(panel.targets), panel.title


def test_the_dashboard_layout_is_sound(dashboard):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(set(ids)) == len(ids), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                   for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered


def test_the_operations_guide_lists_every_dashboard_panel(dashboard):
    guide = (REPO / "docs" / "operations.md").read_text()
    operations = " ".join(guide[guide.index("## Operations"):].split())
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["title"] in operations, f"docs/operations.md lacks the panel {panel['title']!r}"
