"""House rules that keep the library usable without the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT


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


# The layers, lowest first. A module may import textgen modules of its own package and of lower
# layers, never of a higher layer nor of another package in its own layer. What many layers use
# sits low: persistence (the run store) and scoring below data and training.
LAYERS = (
    ("core",),  # errors, text, atomic files, config base, CSV/JSON export, CPU features
    ("store", "scoring"),  # the run store; metrics of text against references
    ("data",),  # corpora, samples, tokenizers, the tf.data pipeline
    ("models",),  # the model families behind one step interface
    ("decoding",),  # greedy, beam and sampling over that interface
    ("training",),  # planning, the trainer, checkpoints, jobs, estimates
    ("runs",),  # bundles, rename, overview, metrics CSV
    ("analysis",),  # evaluation, leaderboard, comparison, attention views, curves, report
    ("cli",),  # python -m textgen
)
# Modules directly in textgen/ and the package they count as: the launcher uses the standard
# library only (tested above), `python -m textgen` is the command line.
TOP_LEVEL = {"textgen": "core", "textgen.__main__": "cli", "textgen.launch": "core"}


def _layer_of(module: str) -> tuple[int, str]:
    package = TOP_LEVEL.get(module) or module.split(".")[1]
    for index, packages in enumerate(LAYERS):
        if package in packages:
            return index, package
    raise AssertionError(f"{module} is in no layer: put it in one of the packages of LAYERS")


def _textgen_imports(path: Path, module: str) -> set[str]:
    """Every textgen module `path` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "textgen")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "textgen":
                continue
            if target == "textgen":  # from textgen import data: the package itself
                found.update(f"textgen.{alias.name}" for alias in node.names)
            else:
                found.add(target)
    return found


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted((ROOT / "textgen").rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        modules[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return modules


def layer_violations() -> list[str]:
    problems = []
    for module, path in _modules().items():
        layer, package = _layer_of(module)
        for imported in sorted(_textgen_imports(path, module)):
            if imported == "textgen":
                continue
            other_layer, other_package = _layer_of(imported)
            if other_layer > layer or (other_layer == layer and other_package != package):
                problems.append(f"{module} (layer {package}) imports {imported} (layer {other_package})")
    return problems


def test_every_import_runs_down_the_layers() -> None:
    """See LAYERS; the README's architecture section names the same order."""
    assert layer_violations() == []


def test_textgen_holds_no_module_outside_the_packages() -> None:
    """New code goes into the package of its concern (LAYERS), not next to them."""
    strays = [m for m, path in _modules().items()
              if path.parent == ROOT / "textgen" and path.name != "__init__.py" and m not in TOP_LEVEL]
    assert strays == []


def test_the_readme_names_the_layers_in_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    order = " < ".join(" / ".join(f"`{p}`" for p in packages) for packages in LAYERS)
    assert order in readme


MAX_FUNCTION_LINES = 60
# Functions allowed over MAX_FUNCTION_LINES (from `def` to the last line), and why. Keep it short:
# a new long function fails the test below; split it, or add it here with a reason.
LONG_FUNCTIONS: dict[str, str] = {
    # "path:function": "why it reads better whole". None today: every function fits.
}


def _long_functions() -> dict[str, int]:
    found = {}
    paths = sorted((ROOT / "textgen").rglob("*.py")) + sorted((ROOT / "pages").rglob("*.py")) + [ROOT / "app.py"]
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found[f"{path.relative_to(ROOT).as_posix()}:{node.name}"] = length
    return found


def test_no_function_is_longer_than_60_lines_but_the_listed_ones() -> None:
    found = _long_functions()
    assert sorted(set(found) - set(LONG_FUNCTIONS)) == [], f"over {MAX_FUNCTION_LINES} lines: {found}"
    assert sorted(set(LONG_FUNCTIONS) - set(found)) == [], "no longer long: take it off LONG_FUNCTIONS"
