"""The wheel carries the templates; the package finds them without the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_wheel_contains_the_templates(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    (wheel,) = tmp_path.glob("scaffold_layers-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("layer.py.jinja", "test_layer.py.jinja"):
        assert f"scaffold/templates/{template}" in names
    assert "scaffold/cli.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "scaffold = scaffold.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_templates_are_found_as_package_resources():
    from importlib import resources

    folder = resources.files("scaffold.templates")
    assert (folder / "layer.py.jinja").is_file()
    assert (folder / "test_layer.py.jinja").is_file()
