"""``capcast --version`` prints capcast's and lm-eval's versions, as ``lm-eval --version`` users expect."""

import importlib.metadata
import subprocess
import sys


def test_version_needs_no_command():
    done = subprocess.run([sys.executable, "-m", "capcast", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"capcast {importlib.metadata.version('capcast')} (lm-eval {importlib.metadata.version('lm_eval')})"
