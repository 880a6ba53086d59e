"""The package's shape: one-way imports, TF-free spine, small files, own docs.

Read from the source with ``ast`` (every import, including those inside
functions), so a new module is checked without being listed here, except
for its place in the dependency order (:data:`LAYERS`), which a new
module of tf_multvae must be given.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest
from conftest import REPO

PACKAGES = ("tf_multvae", "data_prep", "tuning", "benchmarks")

# tf_multvae's one-way dependency order: a module may import modules of
# its own layer or of layers before it, never after.
LAYERS = (
    # the spine without TensorFlow
    (
        "tf_multvae",
        "tf_multvae.cli",
        "tf_multvae.rundir",
        "tf_multvae.staging",
        "tf_multvae.config",
        "tf_multvae.features",
        "tf_multvae.records",
    ),
    # the spine with TensorFlow
    (
        "tf_multvae.datadir",
        "tf_multvae.data",
        "tf_multvae.ranking",
        "tf_multvae.metrics",
        "tf_multvae.sampled",
    ),
    ("tf_multvae.model",),
    ("tf_multvae.baselines",),
    ("tf_multvae.reports.evaluation", "tf_multvae.reports.runs"),
    ("tf_multvae.serving",),
    ("tf_multvae.training",),
    # the commands
    (
        "tf_multvae.train",
        "tf_multvae.baselines.command",
        "tf_multvae.baselines.grid",
        "tf_multvae.baselines.runner",
        "tf_multvae.baselines.__main__",
        "tf_multvae.reports",
    ),
)
TF_FREE = (
    "tf_multvae.cli",
    "tf_multvae.rundir",
    "tf_multvae.staging",
    "tf_multvae.config",
    "tf_multvae.features",
    "tf_multvae.records",
)
MAX_LINES = 300
LONG_REASON = "longer than 300 lines"  # what a long module's docstring says


def _modules() -> dict[str, object]:
    """Dotted module name -> path, for every module of PACKAGES."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path) -> set[str]:
    """The project modules a file imports (resolved to existing modules)."""
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            # "from pkg import module" imports the module (pkg/__init__ is
            # run on the way, but is not what the importer depends on);
            # "from module import name" imports the module.
            subs = {f"{node.module}.{a.name}" for a in node.names}
            names.update(subs & set(MODULES))
            if not subs <= set(MODULES):
                names.add(node.module)
    return {n for n in names if n in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _layer(module: str) -> int:
    """The index of the most specific LAYERS prefix of ``module``."""
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{module} has no place in LAYERS"
    return best[0]


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_tf_multvae_imports_only_downwards():
    wrong = [
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in GRAPH.items()
        if a.startswith("tf_multvae")
        for b in targets
        if b.startswith("tf_multvae")
        and _layer(b) > _layer(a)
        and not a.startswith(b + ".")  # a package's own __init__
    ]
    assert not wrong, "\n".join(wrong)


def test_library_packages_do_not_import_commands_or_benchmarks():
    for name, targets in GRAPH.items():
        if name.startswith(("tf_multvae", "data_prep")):
            assert not {t for t in targets if t.startswith("benchmarks")}
            assert not {t for t in targets if t.startswith("tuning")}, name


def _top_level_imports(path) -> set[str]:
    """Top-level packages a module imports when it is imported (imports
    inside functions run later, when called)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("module", TF_FREE)
def test_the_spine_imports_no_tensorflow(module):
    assert not _top_level_imports(MODULES[module]) & {"tensorflow", "keras"}
    for target in GRAPH[module]:
        assert target in TF_FREE or target == "tf_multvae", target


def test_config_loads_before_tensorflow_in_a_fresh_process():
    """So the package's TensorFlow settings precede TensorFlow's import."""
    code = (
        "import sys, tf_multvae.config, tf_multvae.rundir, tf_multvae.cli;"
        "assert 'tensorflow' not in sys.modules, 'TF was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_small_files_or_a_stated_reason():
    long = []
    for name, path in MODULES.items():
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES + 30 and LONG_REASON not in doc:
            long.append(f"{path.relative_to(REPO)}: {lines} lines")
    assert not long, "\n".join(long)


def _text_files():
    for pattern in ("*.py", "*.md", "*.toml", "*.cfg"):
        for path in REPO.rglob(pattern):
            if not {".venv", ".git", "build"} & set(path.parts):
                yield path


def test_no_pointer_outside_the_repository_or_to_the_tracker():
    """The design lives in docs/; nothing refers to a file a clone lacks
    or to issue numbers of the tracker."""
    outside = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared/(?!data)")
    tracker = re.compile(r"\b[Ii]ssue \d+|\bitem \d+ of issue")
    found = []
    for path in _text_files():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if outside.search(line) or tracker.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line}")
    assert not found, "\n".join(found)
