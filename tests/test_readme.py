"""The README opens with two commands; the first (the main job) runs exactly as written.

It is run in a fresh copy of the project (the files git tracks; outside a git checkout, as in
an unpacked sdist, every file but build and cache leftovers), so it sees what a new clone sees.
The second command is `bash .ci/run`, which is what runs this test.
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEFTOVERS = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", "build", "dist"}


def project_files():
    """The project's files, relative to ROOT: git's list in a checkout, else the tree's."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        )
        return [name for name in listed.stdout.decode().split("\0") if name]
    return [
        str(path.relative_to(ROOT))
        for path in sorted(ROOT.rglob("*"))
        if path.is_file()
        and not any(
            part in LEFTOVERS or part.endswith(".egg-info") for part in path.relative_to(ROOT).parts
        )
        and not path.name.startswith("conduit-index")
    ]


def commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_two_commands():
    first, second = commands()
    assert "conduit index" in first and "conduit ask" in first
    assert second == "bash .ci/run"


def test_the_main_job_runs_offline_in_a_fresh_copy(tmp_path):
    copy = tmp_path / "conduit"
    for name in project_files():
        if (ROOT / name).is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((ROOT / name).read_bytes())
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path))}
    out = subprocess.run(
        ["bash", "-c", commands()[0]],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[1] docs/" in out.stdout and "No model is configured" in out.stdout
    assert (copy / "conduit-index.npz").exists()


def test_outside_a_checkout_the_copy_is_the_tree_less_leftovers(monkeypatch, tmp_path):
    tree = tmp_path / "conduit-llm-0.1.0"
    for name in ["README.md", "docs/a.md", ".venv/x.py", "c/__pycache__/m.pyc", "c.egg-info/P"]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("x")
    monkeypatch.setitem(globals(), "ROOT", tree)
    assert project_files() == ["README.md", "docs/a.md"]
