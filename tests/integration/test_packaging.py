"""The two distributions: the service (pyproject.toml) and the client on its own (client/).

Each is built from a copy of the repository, so the tests leave no build/ or *.egg-info behind and
two runs never share one. The service's wheel is checked for its packages and the files it needs
beside the code (the console's templates and static files, the migrations with their alembic.ini),
then installed without dependencies (this virtualenv has them) and run from site-packages: the
pre-start step migrates a database of its own. The client is installed into a new virtualenv that
has nothing of the service, and must import there.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "worker", "shared", "cli", "migrations")
NOT_PACKAGED = ("tests", "bench", "client", "deploy", "samples", "docs", "bin")
SKIP = shutil.ignore_patterns(".git", ".venv", "var", ".data", "__pycache__", "*.pyc", ".pytest_cache",
                              ".ruff_cache", "build", "dist", "*.egg-info")


def pip(python: Path | str, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pip {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(source: Path, out: Path) -> Path:
    """`pip wheel` with this virtualenv's setuptools (dev.txt locks it), so no index is needed."""
    pip(sys.executable, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(source))
    (wheel,) = out.glob("*.whl")
    return wheel


@pytest.fixture(scope="module")
def service_wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("service") / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    return build_wheel(source, tmp_path_factory.mktemp("service-wheel"))


def test_the_service_wheel_holds_its_packages_and_their_files(service_wheel):
    names = set(zipfile.ZipFile(service_wheel).namelist())
    expected = {str(path.relative_to(ROOT)) for package in PACKAGES for path in (ROOT / package).rglob("*")
                if path.is_file() and "__pycache__" not in path.parts}
    assert expected - names == set()
    assert {name.split("/")[0] for name in names} - set(PACKAGES) == {service_wheel.name.split("-")[0]
                                                                      + "-0.1.0.dist-info"}
    assert not [name for name in names if name.split("/")[0] in NOT_PACKAGED]
    for required in ("api/console/templates/base.html", "api/console/static/console.js",
                     "migrations/alembic.ini", "migrations/env.py", "migrations/script.py.mako"):
        assert required in names
    metadata = zipfile.ZipFile(service_wheel).read(
        next(name for name in names if name.endswith("METADATA"))).decode()
    base_in = [line.strip() for line in (ROOT / "requirements" / "base.in").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert [line.split(": ", 1)[1] for line in metadata.splitlines()
            if line.startswith("Requires-Dist: ")] == base_in


def test_the_installed_service_migrates_and_renders_from_site_packages(service_wheel, tmp_path):
    target = tmp_path / "site"
    pip(sys.executable, "install", "--no-deps", "--no-index", "--target", str(target), str(service_wheel))
    assert {"stock-prestart", "stock-keys", "stock-import-csv", "stock-reconcile"} <= {
        path.name for path in (target / "bin").iterdir()}
    url = make_url(os.environ["DATABASE_URL"])
    url = url.set(database=f"{url.database}_pkg")
    server = create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
    # From a folder of its own, with only site-packages and the installed copy on the path: the
    # repository's own packages must not be what answers.
    env = {**os.environ, "PYTHONPATH": str(target),
           "DATABASE_URL": url.render_as_string(hide_password=False)}
    check = ("import cli.prestart, api.console.pages as pages\n"
             f"assert cli.prestart.__file__.startswith({str(target)!r}), cli.prestart.__file__\n"
             "pages.templates.get_template('login.html')\n"
             "cli.prestart.main()\n")
    try:
        done = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "database ready" in done.stdout
        help_text = subprocess.run([str(target / "bin" / "stock-keys"), "--help"], cwd=tmp_path, env=env,
                                   capture_output=True, text=True, timeout=60)
        assert help_text.returncode == 0 and "create" in help_text.stdout, help_text.stderr
        with create_engine(url).connect() as conn:
            heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        newest = sorted(path.stem for path in (ROOT / "migrations" / "versions").glob("0*.py"))[-1]
        assert len(heads) == 1 and newest.startswith(heads[0])
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
        server.dispose()


def test_the_client_installs_on_its_own_in_a_new_virtualenv(tmp_path):
    source = tmp_path / "client"
    shutil.copytree(ROOT / "client", source, ignore=SKIP)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The index pip is set up with (a mirror, or PyPI) gives setuptools, httpx and tenacity.
    pip(python, "install", "--quiet", str(source))
    installed = {package["name"].lower().replace("_", "-")
                 for package in json.loads(pip(python, "list", "--format=json"))}
    assert {"stock-client", "httpx", "tenacity"} <= installed
    assert not installed & {"fastapi", "sqlalchemy", "celery", "redis", "pydantic", "alembic"}
    check = ("import stock_client, typing\n"
             "from stock_client import StockClient, RetryPolicy, parse_retry_after\n"
             "assert parse_retry_after('Sun, 06 Nov 1994 08:49:37 GMT') == 0.0\n"
             "assert typing.get_type_hints(StockClient.run)['return'] is stock_client.Job\n"
             "import pathlib; assert (pathlib.Path(stock_client.__file__).parent / 'py.typed').exists()\n")
    done = subprocess.run([str(python), "-c", check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
