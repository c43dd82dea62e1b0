"""The code stays ruff clean and type checks (the same checks a developer runs by hand)."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, check=False
    )


def test_ruff_check():
    result = _run("ruff", "check", "moshi", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = _run("ruff", "format", "--check", "moshi", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    result = _run("mypy", "moshi")
    assert result.returncode == 0, result.stdout + result.stderr


# The layers of moshi/, bottom to top (a package, or a module directly under moshi/).
LAYERS = [
    {"moshi", "audio", "hub", "checkpoint", "config_reader", "nn"},
    {"kernels"},
    {"codec", "lm"},  # peers: they never import each other
    {"models", "quantize", "tiny", "small"},
    {"tts", "stt"},
    {"stream", "train", "data", "eval"},
    {"cli"},
    {"__main__"},
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}
MODULES = {
    ".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): p
    for p in (REPO / "moshi").rglob("*.py")
}


def _imports(module: str) -> set[str]:
    """The moshi modules `module` imports anywhere (in functions, under TYPE_CHECKING too)."""
    here = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) + 1 - node.level] if node.level else [])
            target = ".".join(p for p in (base, node.module) if p)
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names}
    return {m for m in found if m.split(".")[0] == "moshi"}


def test_imports_point_down_the_layers():
    unit = lambda m: m.split(".")[1] if "." in m else m  # noqa: E731
    graph = {m: _imports(m) for m in MODULES}
    bad = [f"{m}: unit {unit(m)!r} is in no layer" for m in MODULES if unit(m) not in LAYER]
    for m, targets in graph.items():
        for t in targets:
            if unit(t) != unit(m) and LAYER.get(unit(t), -1) >= LAYER.get(unit(m), -1):
                bad.append(f"{m} imports {t}: not a lower layer")
            if m < t and m in graph.get(t, ()):
                bad.append(f"{m} and {t} import each other")
    assert not bad, "\n".join(bad)


def test_test_modules_import_no_test_module():
    """Helpers the tests share live in tests/support/ (fixtures in conftest.py files)."""
    bad = []
    for path in (REPO / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""  # `from tests.x import test_y` counts too
                names = [module, *(f"{module}.{a.name}" for a in node.names)]
            bad += [
                f"{path.relative_to(REPO)} imports {n}"
                for n in names
                if re.search(r"(^|\.)(test_\w+|conftest)(\.|$)", n)
            ]
    assert not bad, "\n".join(bad)


def test_every_package_ships():
    """pyproject.toml lists packages by name: a new one left out would miss from the wheel."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "moshi").rglob("__init__.py")}
    assert found - {"moshi.web"} <= listed, sorted(found - listed)
