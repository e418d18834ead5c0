"""Unit tests for scaffold.write: plan_writes / apply on real files in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from scaffold.errors import OutputError
from scaffold.write import CONFLICT, CREATE, OVERWRITE, UNCHANGED, apply
from scaffold.write import plan_writes as _plan_writes


def plan_writes(folder, files, **options):
    """The files by name in one folder, as new-layer writes them."""
    return _plan_writes({folder / name: content for name, content in files.items()}, **options)


def _leftovers(folder):
    return sorted(p.name for p in folder.glob(".*.tmp"))


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_files_are_created_exactly(tmp_path, umask_022):
    files = {"layer.py": "print('hi')\n", "test_layer.py": "def test():\n    assert 1\n"}
    changes = plan_writes(tmp_path, files, force=False)
    assert [c.status for c in changes] == [CREATE, CREATE]
    assert [c.path for c in changes] == [tmp_path / "layer.py", tmp_path / "test_layer.py"]
    assert not (tmp_path / "layer.py").exists()  # planning writes nothing
    apply(changes)
    for name, content in files.items():
        assert (tmp_path / name).read_bytes() == content.encode()
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    assert _leftovers(tmp_path) == []


def test_same_content_is_unchanged_and_not_touched(tmp_path):
    target = tmp_path / "layer.py"
    target.write_text("x = 1\n", encoding="utf-8")
    past = time.time_ns() - 3_600 * 10**9
    os.utime(target, ns=(past, past))
    changes = plan_writes(tmp_path, {"layer.py": "x = 1\n"}, force=False)
    assert [c.status for c in changes] == [UNCHANGED]
    apply(changes)
    assert target.stat().st_mtime_ns == past
    assert target.read_text(encoding="utf-8") == "x = 1\n"


def test_conflict_writes_nothing_at_all(tmp_path):
    existing = tmp_path / "layer.py"
    existing.write_text("old line\n", encoding="utf-8")
    files = {"layer.py": "new line\n", "test_layer.py": "fresh\n"}
    changes = plan_writes(tmp_path, files, force=False)
    assert {c.path.name: c.status for c in changes} == {
        "layer.py": CONFLICT,
        "test_layer.py": CREATE,
    }
    with pytest.raises(OutputError) as info:
        apply(changes)
    assert "layer.py" in str(info.value)
    assert "--force" in info.value.hint
    assert existing.read_text(encoding="utf-8") == "old line\n"
    assert not (tmp_path / "test_layer.py").exists()
    assert _leftovers(tmp_path) == []


def test_force_overwrites_and_shows_a_diff(tmp_path):
    existing = tmp_path / "layer.py"
    existing.write_text("same\nold line\n", encoding="utf-8")
    existing.chmod(0o640)
    (change,) = plan_writes(tmp_path, {"layer.py": "same\nnew line\n"}, force=True)
    assert change.status == OVERWRITE
    assert "-old line" in change.diff
    assert "+new line" in change.diff
    assert " same" in change.diff
    apply([change])
    assert existing.read_text(encoding="utf-8") == "same\nnew line\n"
    assert existing.stat().st_mode & 0o777 == 0o640  # permissions of the old file kept
    assert _leftovers(tmp_path) == []


def test_undecodable_existing_file_is_a_conflict(tmp_path):
    existing = tmp_path / "layer.py"
    existing.write_bytes(b"\xff\xfe binary")
    (change,) = plan_writes(tmp_path, {"layer.py": "x = 1\n"}, force=False)
    assert change.status == CONFLICT
    with pytest.raises(OutputError):
        apply([change])
    assert existing.read_bytes() == b"\xff\xfe binary"
    apply(plan_writes(tmp_path, {"layer.py": "x = 1\n"}, force=True))
    assert existing.read_text(encoding="utf-8") == "x = 1\n"


def test_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder", encoding="utf-8")
    with pytest.raises(OutputError, match="is a file"):
        plan_writes(out, {"layer.py": "x\n"}, force=False)
    assert out.read_text(encoding="utf-8") == "not a folder"


def test_missing_parents_are_created_by_apply_not_by_planning(tmp_path):
    out = tmp_path / "a" / "b" / "c"
    changes = plan_writes(out, {"layer.py": "x = 1\n"}, force=False)
    assert [c.status for c in changes] == [CREATE]
    assert not (tmp_path / "a").exists()
    apply(changes)
    assert (out / "layer.py").read_text(encoding="utf-8") == "x = 1\n"


def test_out_below_a_file_is_refused(tmp_path):
    (tmp_path / "file.txt").write_text("keep me\n", encoding="utf-8")
    out = tmp_path / "file.txt" / "sub" / "out"
    with pytest.raises(OutputError, match="is a file, not a folder") as info:
        plan_writes(out, {"layer.py": "x\n"}, force=False)
    assert f": {tmp_path / 'file.txt'} is a file" in str(info.value)
    assert (tmp_path / "file.txt").read_text(encoding="utf-8") == "keep me\n"


def test_a_failed_write_leaves_no_file_it_created_under_new_folders(tmp_path):
    out = tmp_path / "a" / "b"
    changes = plan_writes(out, {"first.py": "1\n", "second.py": "2\n"}, force=False)
    (out / "second.py").mkdir(parents=True)  # appears between planning and applying
    with pytest.raises(OutputError, match="cannot write"):
        apply(changes)
    assert sorted(p.name for p in out.iterdir()) == ["second.py"]  # first.py was taken back
    (out / "second.py").rmdir()
    with pytest.raises(OutputError, match="cannot create"):
        apply(plan_writes(tmp_path / "x" / ("n" * 300), {"a.py": "a\n"}, force=False))
    assert not (tmp_path / "x").exists()  # the folder it made on the way was removed


def test_missing_out_folder_is_created_by_apply(tmp_path):
    out = tmp_path / "out"
    changes = plan_writes(out, {"layer.py": "x = 1\n"}, force=False)
    assert [c.status for c in changes] == [CREATE]
    assert not out.exists()  # planning creates nothing
    apply(changes)
    assert (out / "layer.py").read_text(encoding="utf-8") == "x = 1\n"


def test_target_that_is_a_folder_is_refused(tmp_path):
    (tmp_path / "layer.py").mkdir()
    with pytest.raises(OutputError, match="is a folder") as info:
        plan_writes(tmp_path, {"layer.py": "x\n", "other.py": "y\n"}, force=True)
    assert str(tmp_path / "layer.py") in str(info.value)
    assert not (tmp_path / "other.py").exists()


def test_failed_rename_leaves_no_temporaries_and_no_other_file(tmp_path):
    changes = plan_writes(tmp_path, {"a.py": "a\n", "b.py": "b\n"}, force=False)
    (tmp_path / "a.py").mkdir()  # appears between planning and applying
    with pytest.raises(OutputError, match="cannot write"):
        apply(changes)
    assert not (tmp_path / "b.py").exists()
    assert _leftovers(tmp_path) == []
    assert (tmp_path / "a.py").is_dir()


def test_content_with_crlf_is_unchanged_after_writing(tmp_path):
    files = {"layer.py": "x = 1\r\ny = 2\r\n"}
    apply(plan_writes(tmp_path, files, force=False))
    assert (tmp_path / "layer.py").read_bytes() == b"x = 1\r\ny = 2\r\n"
    assert [c.status for c in plan_writes(tmp_path, files, force=False)] == [UNCHANGED]


_CHILD = """
import sys
from pathlib import Path
from scaffold.write import apply, plan_writes

out = Path(sys.argv[1])
contents = ["a" * 5_000_000 + "\\n", "b" * 4_000_000 + "\\n"]
apply(plan_writes({out / "big.txt": contents[0]}, force=True))
print("ready", flush=True)
turn = 1
while True:
    apply(plan_writes({out / "big.txt": contents[turn % 2]}, force=True))
    turn += 1
"""


@pytest.mark.parametrize("delay", [0.1, 0.2, 0.3])
def test_a_killed_write_never_leaves_a_partial_file(tmp_path, delay):
    first, second = "a" * 5_000_000 + "\n", "b" * 4_000_000 + "\n"
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(delay)
        assert child.poll() is None, "the writer stopped before it was killed"
        child.kill()  # SIGKILL: no cleanup, no finally blocks
        child.wait(timeout=10)
    content = (tmp_path / "big.txt").read_text(encoding="utf-8")
    assert len(content) in (len(first), len(second))
    assert content in (first, second)
