"""File stamps: what the TLS reloaders compare to notice a rotated certificate."""

from __future__ import annotations

import os
from pathlib import Path

from kits.filestamp import file_stamp


def replace_by_rename(path: Path, content: bytes) -> None:
    """Write `content` beside `path` and rename it over `path`, keeping the old mtime, as a
    rotation tool that preserves times would (same size, same mtime: only the inode differs)."""
    before = path.stat()
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(content)
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    fresh.replace(path)


def test_an_untouched_file_keeps_its_stamp(tmp_path: Path) -> None:
    path = tmp_path / "tls.crt"
    path.write_bytes(b"one")
    assert file_stamp(path) == file_stamp(path)


def test_replacing_a_file_by_rename_is_noticed_at_same_size_and_mtime(tmp_path: Path) -> None:
    path = tmp_path / "tls.crt"
    path.write_bytes(b"one")
    before = file_stamp(path)
    replace_by_rename(path, b"two")
    after = file_stamp(path)
    assert before is not None
    assert after is not None
    assert (after.size, after.mtime_ns) == (before.size, before.mtime_ns)
    assert after != before


def test_a_missing_file_has_no_stamp(tmp_path: Path) -> None:
    assert file_stamp(tmp_path / "absent") is None
