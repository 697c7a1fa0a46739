"""Downloading published data files with checksum verification and atomic writes.

Only the official (or officially mirrored) URLs listed in the data set registry
are ever fetched.  A download streams into a temporary file next to the
destination while hashing; if the MD5 (or the expected size) does not match,
the temporary file is deleted and nothing is left in the cache.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from .files import atomic_write

__all__ = ["download_file"]

_log = logging.getLogger("striate.data")
_CHUNK = 1 << 20
TIMEOUT_S = 60.0

# The opener is looked up through the module at call time so tests can replace it.
urlopen = urllib.request.urlopen


def download_file(urls: Sequence[str], dest: str | os.PathLike, md5: str,
                  size: int | None = None) -> Path:
    """Fetch a file from the first mirror that delivers it intact, into ``dest``.

    Args:
        urls: mirrors to try in order (http(s):// or file://).
        dest: final path of the file (written atomically).
        md5: the published MD5 hex digest; a mismatch rejects that mirror's copy.
        size: the published size in bytes, if known (longer bodies are cut off early).

    Returns:
        ``dest`` as a Path.

    Raises:
        DataError: every mirror failed; the message lists each URL and why.
    """
    dest = Path(dest)
    failures = []
    for url in urls:
        try:
            _fetch_one(url, dest, md5.lower(), size)
            return dest
        except DataError as e:
            failures.append(f"{url}: {e}")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            failures.append(f"{url}: {type(e).__name__}: {e}")
    raise DataError(f"could not download {dest.name}:\n  " + "\n  ".join(failures))


def _fetch_one(url: str, dest: Path, md5: str, size: int | None) -> None:
    """Stream one URL into ``dest`` atomically; DataError on a checksum or size mismatch."""
    _log.info("downloading %s -> %s", url, dest)
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    with urlopen(url, timeout=TIMEOUT_S) as response, atomic_write(dest) as out:
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                break
            received += len(chunk)
            if size is not None and received > size:
                raise DataError(f"received more than the published {size} bytes; refusing the file")
            digest.update(chunk)
            out.write(chunk)
        if size is not None and received != size:
            raise DataError(f"received {received} bytes, the published file has {size} (truncated download)")
        if digest.hexdigest() != md5:
            raise DataError(f"MD5 checksum mismatch: expected {md5}, received {digest.hexdigest()}; "
                            f"the download was discarded")
