"""House rules that keep the library usable without the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_in_textgen_imports_streamlit() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "textgen").rglob("*.py"))
        if "streamlit" in _imported_modules(path)
    ]
    assert offenders == [], f"textgen/ must not import streamlit: {offenders}"


def test_importing_every_textgen_module_loads_no_streamlit() -> None:
    modules = [
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in sorted((ROOT / "textgen").rglob("*.py"))
        if path.name not in ("__main__.py",)
    ]
    modules = [m[: -len(".__init__")] if m.endswith(".__init__") else m for m in modules]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print('streamlit' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_launcher_uses_only_the_standard_library() -> None:
    """`python3 -m textgen.launch` runs before .venv exists, with the system Python."""
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for path in (ROOT / "textgen" / "launch.py", ROOT / "textgen" / "__init__.py"):
        assert _imported_modules(path) <= allowed, path


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python3 -m textgen.launch test" in readme
    assert "python3 -m textgen.launch test" in ci
