"""The walls between Hindsight's packages, checked on the import graph built from the source with ``ast``.

Every import counts, also one inside a function: a lazy import hides a dependency, it does not remove it.
The walls are written down in ``CONTRIBUTING.md`` and ``docs/architecture.md``.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vision", "hindsight_training")
#: The science: pure functions of tracks and reports.
SCIENCE = ("vision.gait", "vision.clean", "vision.quality", "vision.muscle", "vision.tracks")
#: What the science must not know about.
APPLICATION = ("vision.model", "vision.pose", "vision.storage", "vision.jobs", "vision.dashboard")
#: A runtime module longer than this is split.
MAX_RUNTIME_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The project module an imported dotted name lives in (the longest prefix that is a module)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return name


@cache
def _imports() -> dict[str, frozenset[str]]:
    """Module -> every name it imports (project modules resolved; third-party names as written)."""
    modules = _modules()
    graph: dict[str, frozenset[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found.update(_resolve(a.name, modules) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(_resolve(node.module, modules))
                found.update(_resolve(f"{node.module}.{a.name}", modules) for a in node.names)
        found.discard(name)
        graph[name] = frozenset(found)
    return graph


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _offences(sources: tuple[str, ...], targets: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{m} imports {t}"
        for m, names in _imports().items()
        if _within(m, sources)
        for t in names
        if _within(t, targets)
    )


def _cycles(prefix: str) -> list[list[str]]:
    """Strongly connected components (Tarjan) of more than one module among the modules under ``prefix``."""
    graph = {m: sorted(t for t in ts if _within(t, (prefix,))) for m, ts in _imports().items() if _within(m, (prefix,))}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_the_packages():
    graph = _imports()
    assert "vision.model.detector" in graph and "hindsight_training.train" in graph
    assert "vision.model.engine" in graph["vision.model.detector"]
    assert "torch" in graph["hindsight_training.network"]


def test_the_runtime_never_imports_torch_or_the_training_package():
    assert _offences(("vision",), ("torch", "hindsight_training")) == []


def test_the_science_never_imports_the_application():
    assert _offences(SCIENCE, APPLICATION) == []


def test_storage_never_analyses():
    analysis = ("vision.analysis", *SCIENCE, "vision.overlay", "vision.video")
    assert _offences(("vision.storage",), analysis) == []


def test_the_dashboard_never_imports_the_science_io_or_model():
    assert _offences(("vision.dashboard",), ("vision.gait", "vision.clean", "vision.io", "vision.model")) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package):
    assert _cycles(package) == []


def test_no_runtime_module_is_over_the_line_limit():
    long = {
        m: n
        for m, p in _modules().items()
        if m.startswith("vision")
        if (n := len(p.read_text().splitlines())) > MAX_RUNTIME_LINES
    }
    assert long == {}


def test_no_private_name_is_taken_from_another_module():
    """In the model runtime and the training package (dunder names such as ``__version__`` are public)."""
    modules = _modules()
    taken = []
    for name, path in modules.items():
        if not _within(name, ("vision.model", "hindsight_training")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != name:
                taken += [
                    f"{name} takes {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert sorted(taken) == []


def _runtime_path_offences() -> list[str]:
    docstrings: set[int] = set()
    out = []
    for m, p in _modules().items():
        if not m.startswith("vision"):
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                doc = node.body[0] if node.body else None
                if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant):
                    docstrings.add(id(doc.value))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "parents"
            ):
                out.append(f"{m}:{node.lineno} parents[...]")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:  # noqa: SIM102
                if "../shared" in node.value:
                    out.append(f"{m}:{node.lineno} '../shared'")
    return sorted(out)


def test_the_runtime_finds_nothing_through_the_source_tree():
    assert _runtime_path_offences() == []


def test_the_shipped_model_is_package_data():
    from vision.model.manifest import default_model_path, model_files

    path = default_model_path()
    assert path.is_relative_to(ROOT / "vision"), "the shipped model is found inside the package"
    assert all(f.is_file() for f in model_files(path).values())
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"model/weights/*.onnx"' in pyproject and '"model/weights/*.json"' in pyproject


def test_the_runtime_imports_and_loads_the_model_without_torch():
    """With torch unimportable, every runtime module imports and the shipped model detects."""
    import subprocess
    import sys

    skip = ("vision.dashboard", "vision.storage", "vision.__main__")  # pages run on import; __main__ runs the CLI
    names = [m for m in _modules() if _within(m, ("vision",)) and not _within(m, skip)]
    code = (
        "import sys, importlib, numpy as np\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"for m in {names!r}: importlib.import_module(m)\n"
        "from vision.model.detector import DogPoseModel\n"
        "DogPoseModel.load().detect(np.full((96, 128, 3), 128, np.uint8))\n"
        "assert 'hindsight_training' not in sys.modules and 'torch' not in sys.modules\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
