"""The rooms and the one-way flow hold: no import cycle, lower layers never import higher ones,
product code never imports the local world (testbed), bench and tests never import each other,
and no module finds files through `__file__` outside its own package."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Each top-level package and what it may import. The flow runs one way: packager (source to
#: release.json) → cdn (push) → rum (real viewers, from the CDN's logs) → probes (probe, score
#: and gate, beside the real viewers) → steering → preview (a release served with a page that
#: plays it) → cluster (Dask: where encode jobs run) → release (the flow, and catalogs of
#: titles) → render/cli.
PRODUCT = ["packager", "cdn", "rum", "probes", "steering", "preview", "cluster", "release"]
#: Dask stays at the edge of the house: these never import it (cluster/ runs their jobs on it).
BELOW_DASK = ("packager", "cdn", "rum", "probes", "steering", "preview")
LAYERS: dict[str, set[str]] = {
    **{name: set(PRODUCT[:i]) for i, name in enumerate(PRODUCT)},
    "render": set(PRODUCT),
    "testbed": set(PRODUCT),
    "cli": {*PRODUCT, "render", "testbed"},
    "tests": {*PRODUCT, "render", "testbed", "cli", "tests"},
    "bench": {*PRODUCT, "testbed", "bench"},
}
OURS = set(LAYERS)


def top_level_packages() -> set[str]:
    return {p.parent.name for p in REPO.glob("*/__init__.py")}


def test_every_top_level_package_has_a_layer() -> None:
    assert top_level_packages() - OURS == set(), "a new package needs its place in LAYERS"


def modules() -> Iterator[tuple[str, Path]]:
    for top in sorted(OURS - {"cli"}):
        for path in sorted((REPO / top).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            yield ".".join(p for p in parts if p != "__init__"), path
    yield "cli", REPO / "cli.py"


def imports(path: Path, ours: bool = True) -> set[str]:
    """Every module (of ours, unless `ours` is False) the file imports, anywhere in it (also
    inside functions and TYPE_CHECKING blocks: a cycle hidden behind one is still a cycle)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if not ours or name.split(".")[0] in OURS}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    known = dict(modules())
    return {name: {m for m in imports(path) if m in known and m != name}
            for name, path in known.items()}


def test_every_package_imports_only_the_layers_below_it(graph: dict[str, set[str]]) -> None:
    assert set(LAYERS) >= {name.split(".")[0] for name in graph}, "a new package needs a layer"
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items() for target in targets
        if target.split(".")[0] != module.split(".")[0]
        and target.split(".")[0] not in LAYERS[module.split(".")[0]]
    )
    assert wrong == []


def test_nothing_below_the_cluster_imports_dask() -> None:
    offenders = sorted(
        f"{name} imports {module}"
        for name, path in modules() if name.split(".")[0] in BELOW_DASK
        for module in imports(path, ours=False)
        if module.split(".")[0] in ("dask", "distributed")
    )
    assert offenders == []



def test_no_module_import_cycle(graph: dict[str, set[str]]) -> None:
    """Tarjan's strongly connected components: every component must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert len(graph) > 50  # the walk saw the code base, not an empty directory
    assert cycles == []


def test_no_module_finds_files_outside_its_package() -> None:
    """`Path(__file__).parent.parent` from product code reaches the checkout, which an
    installed wheel does not have."""
    offenders = []
    for name, path in modules():
        if name.split(".")[0] in ("tests", "bench"):
            continue
        text = path.read_text()
        if "__file__" in text and (".parent.parent" in text or ".parents[" in text):
            offenders.append(name)
    assert offenders == []


def test_no_file_points_outside_the_repository() -> None:
    """The product's docs live in the repository: no link or path into the workplace around
    it (a reader of the wheel or a clone has neither)."""
    # .venv-latest: `make test-latest`'s venv (its scripts name their absolute paths)
    skip = {".git", ".venv", ".venv-latest", "node_modules", "build", "bench/out", "cdnpack-demo",
            ".hypothesis"}
    offenders = []
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO).as_posix()
        if not path.is_file() or any(relative == s or relative.startswith(s + "/") for s in skip):
            continue
        if "__pycache__" in relative or "_cache/" in relative:
            continue
        if path.suffix not in (".py", ".md", ".toml", ".yaml", ".yml", ".json", ".mjs", ".html",
                               ".js", ".sql", ".txt", "") or path == Path(__file__):
            continue
        text = path.read_text(errors="replace")
        if "../shared" in text or "/work/" in text:
            offenders.append(relative)
    assert offenders == []


def test_benchmarks_run_as_modules() -> None:
    """`python bench/probe.py` puts bench/ first on sys.path, where bench/rum.py and
    bench/steering.py shadow the product's rum and steering packages: every documented bench
    command is `python -m bench.NAME`, and names a bench that exists."""
    commands = []
    for doc in ("Makefile", "BENCHMARKS.md", "README.md"):
        text = (REPO / doc).read_text()
        assert "python bench/" not in text, f"{doc} runs a bench as a script"
        commands += [(doc, word) for word in text.split() if word.startswith("bench.")]
    assert len(commands) >= 10
    for doc, word in commands:
        name = word.strip("`.,;:)").removeprefix("bench.")
        assert (REPO / "bench" / f"{name}.py").is_file(), f"{doc}: {word}"
