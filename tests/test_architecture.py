"""The import graph of ``conduit/`` (deferred imports included) has no cycle, and no module
imports from a higher layer than its own (the layers of docs/architecture.md)."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "conduit"
LAYERS = ("data", "control", "exchange", "middleware", "compose", "face")


def layer_table():
    """module -> layer, read from the table in docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Layers", 1)[1]
    table = {}
    for row in re.findall(r"^\| *(\w+) *\| *(.+?) *\|$", section, flags=re.M):
        layer, modules = row
        if layer in LAYERS:
            for name in re.findall(r"`([\w.]+)`", modules):
                table[name] = layer
    return table


def modules(package=PACKAGE):
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(mods):
    """module -> the conduit modules it imports anywhere (in functions too)."""

    def resolve(name):
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                subs = {f"{base}.{a.name}" for a in node.names}
                found = {s for s in subs if s in mods}
                targets.update(found)
                if base != "conduit" or len(found) < len(subs):  # a name from the facade
                    targets.add(base)
        graph[name] = {r for t in targets if (r := resolve(t)) and r != name}
    return graph


def test_every_module_has_a_layer():
    table = layer_table()
    missing = sorted(set(modules()) - set(table) - {"conduit"})  # the facade is the face
    assert not missing, f"add these modules to the Layers table of docs/architecture.md: {missing}"
    stale = sorted(set(table) - set(modules()))
    assert not stale, f"the Layers table names modules that do not exist: {stale}"


def test_no_import_reaches_up_a_layer():
    table, graph = layer_table(), imports(modules())
    rank = {name: LAYERS.index(layer) for name, layer in table.items()}
    rank["conduit"] = LAYERS.index("face")  # the facade: nothing below it may import it
    upward = [
        f"{m} ({table.get(m, 'face')}) imports {t} ({table[t]})"
        for m, targets in graph.items()
        for t in targets
        if rank[t] > rank.get(m, rank["conduit"])
    ]
    assert not upward, "\n".join(sorted(upward))


def find_cycle(graph):
    """Return one import cycle of *graph* as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path, node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, node])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_import_cycle():
    cycle = find_cycle(imports(modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or ())


def test_the_checker_sees_a_cycle_through_a_deferred_import(tmp_path):
    package = tmp_path / "conduit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from conduit.b import g\n")
    (package / "b.py").write_text(
        "def g():\n    from conduit import a\n    from . import a as again\n"
    )
    (package / "c.py").write_text("def h():\n    import conduit\n    from conduit import x\n")
    (package / "d.py").write_text("from conduit import a\n")
    graph = imports(modules(package))
    assert graph["conduit.b"] == {"conduit.a"}
    assert graph["conduit.c"] == {"conduit"}  # the facade, reached from inside a function
    assert graph["conduit.d"] == {"conduit.a"}  # a submodule through the package: no facade
    assert find_cycle(graph) in (
        ["conduit.a", "conduit.b", "conduit.a"],
        ["conduit.b", "conduit.a", "conduit.b"],
    )
