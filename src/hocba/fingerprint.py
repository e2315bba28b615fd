"""What tells a process that files it loaded changed, without reading them again.

The worker looks every couple of seconds at its trust and reference directories, and a
scrape of its metrics at the CRLs; parsing them again each time would cost a national
school list or CRL per look.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def dir_fingerprint(path: Path | None) -> str:
    """Names, sizes and mtimes of every file below `path`: changes when any file does."""
    if path is None or not path.exists():
        return ""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        # the name as the file system holds it: a name that is not UTF-8 must not raise
        digest.update(os.fsencode(file) + f":{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
