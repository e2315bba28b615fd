"""PNG of an HTML page through headless Chromium, when one is installed.

A browser renders the SVG exactly as readers see it, so the PNG needs no second drawing
library. Chromium is optional (CI machines may lack it): `find_chromium` says whether the
feature is available and callers decide how to say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 60


def find_chromium() -> str | None:
    return next((path for name in _NAMES if (path := shutil.which(name))), None)


def screenshot(html: Path, png: Path, width: int, height: int, chromium: str) -> None:
    """Render `html` at `width`×`height` CSS pixels into `png`; raises on failure."""
    command = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
        f"--screenshot={png.resolve()}",
        html.resolve().as_uri(),
    ]
    if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox on
        command.insert(1, "--no-sandbox")
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0 or not png.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"chromium could not take the screenshot: {last}")
