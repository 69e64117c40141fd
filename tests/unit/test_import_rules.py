"""Which package may import which (docs/development.md, Layout): `api/` and `worker/` are entry points
that never import each other; `shared/` stands on its own; `cli/` stands on `shared/` alone, so a
command-line tool never drags in the web app or the Celery tasks; the job store does not reach into
the code that applies commands. Read from the source with `ast`, so an import inside a function counts
as much as one at the top."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the top-level packages (or modules) it must not import
FORBIDDEN = {
    "api": ("worker", "cli"),
    "worker": ("api", "cli"),
    "shared": ("api", "worker", "cli"),
    "cli": ("api", "worker"),
    "shared/jobs": ("shared.stock.apply",),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute names only (the repository uses no relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            found.add(node.module or "")
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def breaks(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    wrong = [f"{path.relative_to(ROOT)} imports {module}"
             for path in files for module in sorted(imported_modules(path))
             for forbidden in FORBIDDEN[package] if breaks(module, forbidden)]
    assert wrong == []


def test_the_rule_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "tool.py"
    source.write_text("def main():\n    from api.schemas import StockOut\n    import worker.app\n")
    assert {"api.schemas", "api.schemas.StockOut", "worker.app"} <= imported_modules(source)
