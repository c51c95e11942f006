"""The gRPC front door's TLS reload decision, without a server."""

from __future__ import annotations

from pathlib import Path

from adapter import ensure_self_signed
from keda.tls import ReloadingServerCredentials, TlsFiles
from tests.unit.kits.test_filestamp import replace_by_rename


def test_a_certificate_replaced_by_rename_is_reloaded(tmp_path: Path) -> None:
    first = ensure_self_signed(tmp_path / "a", service="s", namespace="n")
    reloading = ReloadingServerCredentials(TlsFiles(first.cert_file, first.key_file))
    assert reloading._fetch() is None
    # The same pair written again by rename: same size and mtime, a new inode.
    replace_by_rename(first.cert_file, first.cert_file.read_bytes())
    assert reloading._fetch() is not None
    assert reloading.reloads == 1
    assert reloading._fetch() is None
