"""The committed protobuf code is what `python protos/generate.py` makes from protos/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_generated_code_is_fresh(tmp_path):
    out = tmp_path / "python"
    subprocess.run([sys.executable, str(ROOT / "protos" / "generate.py"), "--out", str(out)], check=True)
    committed = ROOT / "gen" / "python"
    assert files_under(out) == files_under(committed), "run `make protos` and commit gen/python"
    stale = [name for name in files_under(out) if not filecmp.cmp(out / name, committed / name, shallow=False)]
    assert not stale, f"stale generated files (run `make protos`): {stale}"


def test_every_generated_file_is_tracked_by_git():
    """An untracked generated file would pass the comparison above locally but be missing in CI."""
    listed = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard", "gen"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == "", f"untracked generated files: {listed.stdout}"
