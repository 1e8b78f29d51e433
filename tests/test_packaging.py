"""The wheel a non-editable install builds carries every file the package reads at run time.

The tests run from an editable install, where the package is the source tree itself, so a
file that pyproject.toml's package-data leaves out goes unnoticed here and breaks only a
plain ``pip install``: the fused CPU kernels' C++ sources, the pages' assets.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_every_file_of_the_package(tmp_path):
    # a copy, so the build leaves no build/ or egg-info behind in the checkout
    project = tmp_path / "project"
    shutil.copytree(
        ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path)]
    result = subprocess.run(
        [*build, str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("lstmkit-*.whl")
    packed = set(zipfile.ZipFile(wheel).namelist())
    package = project / "src"
    expected = {
        path.relative_to(package).as_posix()
        for path in (package / "lstmkit").rglob("*")
        if path.is_file() and path.suffix != ".pyc"
    }
    missing = sorted(expected - packed)
    assert not missing, f"pyproject.toml's package-data leaves these out of the wheel: {missing}"
    # the check sees the kernels' sources at all (a wrong folder would make it pass emptily)
    assert "lstmkit/layers/backends/fused_cpu/common.h" in expected
