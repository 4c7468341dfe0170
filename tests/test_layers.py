"""The package's folders are layers: a module imports only from its own layer or earlier ones."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "skcreate"
LAYERS = ["data", "serving", "nn", "training", "estimators", "apps"]


def modules():
    """Dotted name (under skcreate) -> (file, is a package)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imports(name, path, is_package):
    """Every skcreate module ``name`` imports, at the top or inside a function."""
    here = name.split(".") if name else []
    if not is_package:
        here = here[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - node.level + 1]
            target = base + (node.module.split(".") if node.module else [])
            yield from (".".join(target + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("skcreate"):
            target = node.module.split(".")[1:]
            yield from (".".join(target + [alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name.split(".", 1)[1] for alias in node.names
                        if alias.name.startswith("skcreate."))


def layer(name):
    top = name.split(".")[0]
    return LAYERS.index(top) if top in LAYERS else None


MODULES = modules()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) is not None))
def test_imports_point_down(name):
    path, is_package = MODULES[name]
    up = sorted({target for target in imports(name, path, is_package)
                 if layer(target) is not None and layer(target) > layer(name)})
    assert not up, f"skcreate.{name} imports a later layer: {up}"


def test_every_module_is_in_a_layer():
    outside = sorted(n for n in MODULES if layer(n) is None)
    # the package's entry points and its version
    assert outside == ["", "__main__", "_version"]
