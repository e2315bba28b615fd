"""`fingerprint.dir_fingerprint`: what tells a worker that trust or reference files changed."""

from __future__ import annotations

import os
from pathlib import Path

from hocba.fingerprint import dir_fingerprint


def test_it_changes_when_a_file_changes_and_not_otherwise(tmp_path: Path) -> None:
    (tmp_path / "schools.csv").write_text("code,name\n")
    before = dir_fingerprint(tmp_path)
    assert dir_fingerprint(tmp_path) == before
    (tmp_path / "schools.csv").write_text("code,name\n79000001,THPT\n")
    assert dir_fingerprint(tmp_path) != before


def test_a_file_name_that_is_not_utf8_is_fingerprinted_not_refused(tmp_path: Path) -> None:
    """Such a name (a stray file from another system) raised UnicodeEncodeError, which no
    caller expected: a worker that lands would not have started."""
    (tmp_path / "schools.csv").write_text("code,name\n")
    before = dir_fingerprint(tmp_path)
    stray = os.path.join(os.fsencode(tmp_path), b"copy-\xff.csv")
    with open(stray, "wb") as out:
        out.write(b"x")
    assert dir_fingerprint(tmp_path) not in ("", before)
