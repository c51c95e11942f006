"""Noticing that a file changed, cheaply, for everything that reloads files it serves from.

A stamp is what one `stat()` says about a file: modification time (ns), size, inode and device.
Comparing stamps is how the TLS reloaders decide to re-read a certificate. All four count:
Kubernetes rotates a mounted Secret by swapping a symlink to a freshly written directory, and a
rotation tool may `rename()` a new file over the old one; either can keep the size and (at coarse
timestamp granularity, or with preserved times) the mtime, but never the inode on the same device.
"""

from __future__ import annotations

import os
from typing import NamedTuple

__all__ = ["FileStamp", "file_stamp"]


class FileStamp(NamedTuple):
    mtime_ns: int
    size: int
    inode: int
    device: int


def file_stamp(path: str | os.PathLike[str]) -> FileStamp | None:
    """The stamp of the file at `path` (links followed), or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileStamp(st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
