"""The README opens with two commands; the first (the main job) runs exactly as written.

It is run in a fresh copy of the repository (only the files git tracks), so it sees what a new
clone sees. The second command is `bash .ci/run`, which is what runs this test.
"""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands():
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_opens_with_two_commands():
    first, second = commands()
    assert "conduit index" in first and "conduit ask" in first
    assert second == "bash .ci/run"


def test_the_main_job_runs_offline_in_a_fresh_copy(tmp_path):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    copy = tmp_path / "conduit"
    for name in files.stdout.decode().split("\0"):
        if name and (ROOT / name).is_file():
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
