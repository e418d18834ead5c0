"""Test-wide settings: scaffold's on-disk cache goes to a folder of this run, not the user's."""

from __future__ import annotations

import os
import tempfile

os.environ["SCAFFOLD_CACHE_DIR"] = tempfile.mkdtemp(prefix="scaffold-test-cache-")
