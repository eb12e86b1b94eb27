"""Every ```python block in docs/ runs offline, in order, one namespace per page.

Blocks that need a live provider are fenced as ```py and only shown. The API reference build
(mkdocs --strict) runs in .ci/run.
"""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_doc_examples_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    blocks = BLOCK.findall(page.read_text())
    assert blocks
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"{page.name}, block {i} failed:\n{code}") from exc


def test_every_guide_is_in_the_site_navigation():
    nav = (DOCS.parent / "mkdocs.yml").read_text()
    pages = {p.name for p in DOCS.glob("*.md")}
    missing = {p for p in pages if p not in nav}
    assert not missing, f"add these pages to mkdocs.yml's nav: {missing}"


def test_the_api_reference_extension_fences_doctests_and_rewrites_roles():
    import doctest
    import importlib.util

    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("doctest_fences", DOCS / "doctest_fences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert doctest.testmod(module).failed == 0
    text = "Add.\n\n>>> 1 + 1\n2\n\nMore, see :func:`~conduit.graphs.route`."
    assert module.roles(module.fence(text)) == (
        "Add.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nMore, see `route`."
    )


def test_the_providers_page_lists_the_registry():
    """docs/providers.md's provider table is the registry's, row for row."""
    from conduit.registry import PROVIDERS

    def code(x, empty="none"):
        return f"`{x}`" if x else empty

    def where(p):
        return "in process" if p.name == "mock" else "yours"

    expected = [
        f"| `{p.name}` | {', '.join(f'`{x}:`' for x in p.prefixes)} | {code(p.env_key)} | "
        f"{code(p.base_url_env)} | {code(p.base_url, where(p))} | `{p.default_model}` | "
        f"{code(p.embed_model, 'no')} |"
        for p in PROVIDERS
    ]
    page = (DOCS / "providers.md").read_text()
    table = page.split("<!-- registry-table")[1].split("<!-- /registry-table -->")[0]
    assert [line for line in table.splitlines() if line.startswith("| `")] == expected
