"""The apps are layered (pyproject.toml, [tool.importlinter]): accounts < media < contacts <
events < domains < audiences < campaigns < stats < privacy. `make lint` checks it; so does
this, and it shows that an import from a lower app into a higher one is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "accounts",
    "media",
    "contacts",
    "events",
    "domains",
    "audiences",
    "campaigns",
    "stats",
    "privacy",
)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin"},
    )


def test_the_apps_keep_their_layers():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.fixture
def copy_of_the_project(tmp_path: Path) -> Path:
    for app in APPS:
        shutil.copytree(
            ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("templates", "static")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_an_import_from_a_lower_app_into_a_higher_one_breaks_the_contract(copy_of_the_project):
    (copy_of_the_project / "contacts" / "planted.py").write_text(
        "from campaigns.models import Campaign  # noqa: F401\n"
    )

    result = _lint_imports(copy_of_the_project)

    assert result.returncode == 1
    assert "contacts is not allowed to import campaigns" in result.stdout
    assert "contacts.planted -> campaigns.models" in result.stdout
