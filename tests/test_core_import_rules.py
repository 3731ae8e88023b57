"""The package rules hold: no optional imports by name, no import cycles inside a package."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "crm", "lending", "referral", "bot", "miniprogram_api", "admin", "finance", "payments", "postloan",
            "analytics")


def test_modules_are_imported_plainly_not_looked_up_by_name():
    # Only the composition root loads packages by name (core.plugins: <app>.models, .tasks, .cli, .web); no
    # module guards an import of ours as optional either (``except ImportError``: "not built yet" paths).
    pattern = re.compile(r"import_module\(|find_spec\(|except \(?(ImportError|ModuleNotFoundError)")
    found = [str(path.relative_to(ROOT)) for package in PACKAGES for path in (ROOT / package).rglob("*.py")
             if pattern.search(path.read_text(encoding="utf-8")) and path != ROOT / "core" / "plugins.py"]
    assert found == []


def test_every_package_is_checked_for_optional_imports():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(PACKAGES)


def test_the_import_contracts_including_no_cycles_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No import cycles inside the kernel and the domains" in proc.stdout
