"""Imports run downward only (docs/design.md, "Layers"): a module may import its own package and
lower layers, never a higher layer or a sibling package of its own layer."""
import ast
from pathlib import Path

import hieramp

PACKAGE = Path(hieramp.__file__).parent

# Lowest first. A package may import itself; the base modules and the entry points may also
# import each other; any other import goes to a lower layer.
LAYERS = (
    {"errors", "checks", "files", "classes", "trt_import", "directory_manifest", "precision"},
    {"model"},
    {"export", "plugins"},
    {"engine"},
    {"runtime"},
    {"distill", "bench", "analyze", "train", "compare"},
    {"finetune", "evaluate"},                          # finetune: train's loss and step, bench's memory reading;
                                                       # evaluate: scores distilled sets, with train's digits scoring
    {"commands"},
    {"cli", "__init__", "__main__", "dit"},            # entry points: the command line, the public API (hieramp.dit: DiT's)
)
LAYER = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """`hieramp.export.graphs` -> `export`; `hieramp` (the package's __init__) -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(name: str, is_package: bool, source: str):
    """Every hieramp module that module `name` imports, at any depth (lazy imports count)."""
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "hieramp")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                target = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module.split(".")[0] == "hieramp":
                target = node.module
            else:
                continue
            # `from .. import trt_import` names a module, not an attribute of the package.
            yield from ([f"{target}.{a.name}" for a in node.names] if target == "hieramp" else [target])


def backward(name: str, unit: str, is_package: bool, source: str) -> list:
    found = []
    for target in imported(name, is_package, source):
        other = unit_of(target)
        sideways = LAYER[other] == LAYER[unit] not in (0, len(LAYERS) - 1)
        if other != unit and (LAYER[other] > LAYER[unit] or sideways):
            found.append(f"{name} ({unit}, layer {LAYER[unit]}) imports {target} ({other}, layer {LAYER[other]})")
    return found


def test_every_module_belongs_to_a_layer():
    units = {unit_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert units <= set(LAYER), f"add {sorted(units - set(LAYER))} to LAYERS here and in docs/design.md"


def test_imports_only_run_downward():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        unit = "__main__" if path.name == "__main__.py" else unit_of(name)
        found += backward(name, unit, path.name == "__init__.py", path.read_text())
    assert found == []


def test_the_rule_catches_backward_and_sideways_imports():
    lazy = "def f():\n    from ..runtime.loop import run_scales\n"
    assert backward("hieramp.model.sampling", "model", False, lazy) == [
        "hieramp.model.sampling (model, layer 1) imports hieramp.runtime.loop (runtime, layer 4)"]
    assert backward("hieramp.engine.builder", "engine", False, "import hieramp.commands.common\n")
    assert backward("hieramp.bench.run", "bench", False, "from ..distill import distill\n")
    assert backward("hieramp.runtime", "runtime", True, "from .backends import backend_class\nfrom ..model import VAR\n") == []
    assert backward("hieramp.files", "files", False, "from .errors import UserError\n") == []
    assert backward("hieramp.train.__main__", "__main__", False, "from ..cli import main\n") == []
