"""The package's layers, checked on the import statements of its source files.

runtime and config at the bottom, then estimator, data, the systems and metrics,
and the book on top: a module may import only from layers below it (and its own
subpackage), so nothing in tsgen depends on the chapter runner.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tsgen"
SYSTEMS = {"imputation", "adaptation", "forecasting", "generation"}
# what each part of tsgen may import from tsgen (its own subpackage is always allowed)
ALLOWED = {
    "runtime": set(),
    "config": set(),
    "estimator": {"runtime", "config"},
    "data": {"runtime", "config", "estimator"},
    "metrics": {"runtime", "config", "estimator", "data"},
    **{
        s: {"runtime", "config", "estimator", "data", "metrics"} | SYSTEMS
        for s in SYSTEMS
    },
    # PyPOTS imported without its banner: usable from any layer that needs PyPOTS
    "_pypots": {"runtime"},
    "book": {"runtime", "config", "estimator", "data", "metrics", *SYSTEMS},
}


def tsgen_imports(path: Path) -> set[str]:
    """The top-level tsgen modules that ``path`` imports (``tsgen.x.y`` and ``..x`` both give ``x``)."""
    module = path.relative_to(PACKAGE.parent).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # "__init__" counts as a part, like a module name
                base = module[: len(module) - node.level]
                names = [".".join([*base, node.module] if node.module else base)]
                if not node.module:
                    names = [".".join([*base, alias.name]) for alias in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "tsgen" and len(parts) > 1:
                found.add(parts[1])
    return found


SOURCES = sorted(
    p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "__init__.py"
)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_respect_the_layers(path):
    part = path.relative_to(PACKAGE).with_suffix("").parts[0]
    if part == "__main__":
        return
    allowed = ALLOWED[part] | {part, "_pypots"}
    wrong = tsgen_imports(path) - allowed
    assert not wrong, (
        f"tsgen/{path.relative_to(PACKAGE)} ({part}) imports "
        f"{sorted(wrong)}; allowed: {sorted(allowed)}"
    )


def test_the_book_layer_is_imported_by_nothing_else():
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in SOURCES
        if p.relative_to(PACKAGE).parts[0] != "book" and "book" in tsgen_imports(p)
    ]
    assert offenders == []
