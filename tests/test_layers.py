"""The package is layered: every import points down the list below, and no module imports itself back
through others (no cycle). Imports inside functions count too: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neuralcodec"

LAYERS = [
    "neuralcodec.errors",
    "neuralcodec.fileio",
    "neuralcodec.limits",
    "neuralcodec.entropy",
    "neuralcodec.container",
    "neuralcodec.pretrained",
    "neuralcodec.metrics",
    "neuralcodec.media",
    "neuralcodec.train",
    "neuralcodec.perception",
    "neuralcodec.codecs",
    "neuralcodec.codecs.base",
    "neuralcodec.codecs.common",
    "neuralcodec.codecs.image",
    "neuralcodec.codecs.video",
    "neuralcodec.codecs.lossless",
    "neuralcodec.codecs.registry",
    "neuralcodec.eval",
    "neuralcodec.api",
    "neuralcodec.memory",
    "neuralcodec.batch",
    "neuralcodec.demo",
    "neuralcodec.cli",
    "neuralcodec.__main__",
]
"""Bottom to top. A module may import its own layer's modules and any layer below it."""
TOP = "neuralcodec"
"""The package's __init__ (the public API): it may import anything, lazily."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str) -> set[str]:
    """Every neuralcodec module ``path`` imports (``from X import name`` counts X.name when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == TOP and name in MODULES}


def layer_of(module: str) -> int:
    matches = [i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    return {module: imported_modules(path, module) - {module} for module, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        if module != TOP:
            layer_of(module)


def test_imports_point_down() -> None:
    upward = [f"{module} (layer {LAYERS[layer_of(module)]}) imports {target} (layer {LAYERS[layer_of(target)]})"
              for module, targets in import_graph().items() if module != TOP
              for target in targets if target != TOP and layer_of(target) > layer_of(module)]
    assert not upward, "upward imports:\n" + "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    graph = import_graph()
    graph = {m: {t for t in targets if t != TOP and not m.startswith(t + ".")} for m, targets in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_checks_catch_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: a module of a low layer importing the CLI is reported."""
    fake = tmp_path / "neuralcodec" / "limits.py"
    fake.parent.mkdir()
    fake.write_text("from neuralcodec.cli import main\n")
    assert "neuralcodec.cli" in {t for t in imported_modules(fake, "neuralcodec.limits")}
    assert layer_of("neuralcodec.cli") > layer_of("neuralcodec.limits")


def test_the_cli_starts_without_torch() -> None:
    """`codec --help` and argument errors stay fast: building the CLI imports no torch (codecs load it when used)."""
    import subprocess
    import sys

    code = "import sys, neuralcodec.cli; neuralcodec.cli.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip() == "False"
