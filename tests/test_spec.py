"""Family spec validation: every user mistake is one line naming file, field and fix, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from capcast.errors import CapcastError
from capcast.spec import load_family

GOOD = """\
family: tiny
checkpoints:
  - name: tiny-s
    model: ./models/tiny-s
    revision: main
    params: 105792
    tokens: 2.0e7
  - name: tiny-m
    model: EleutherAI/pythia-70m
    params: 5.0e5
    tokens: 2.0e7
    flops: 1.3e13
target:
  name: tiny-xl
  params: 5.0e6
  tokens: 2.0e8
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "models" / "tiny-s").mkdir(parents=True)
    return tmp_path


def write(spec_dir: Path, text: str) -> Path:
    path = spec_dir / "family.yaml"
    path.write_text(text)
    return path


def test_good_spec_loads_with_default_compute(spec_dir: Path) -> None:
    family = load_family(write(spec_dir, GOOD))
    small, hub = family.checkpoints
    assert small.compute == pytest.approx(6 * 105792 * 2.0e7)
    assert hub.compute == 1.3e13  # explicit flops win over 6ND
    assert family.target.name == "tiny-xl"


MISTAKES = {
    "unknown key": (GOOD.replace("revision: main", "revison: main"), ["checkpoints[0].revison", "unknown key", "allowed keys"]),
    "missing params": (GOOD.replace("    params: 105792\n", ""), ["checkpoints[0].params", "missing", "add it"]),
    "missing tokens": (GOOD.replace("    tokens: 2.0e7\n    flops", "    flops"), ["checkpoints[1].tokens", "missing"]),
    "zero params": (GOOD.replace("params: 105792", "params: 0"), ["checkpoints[0].params", "positive"]),
    "negative tokens": (GOOD.replace("tokens: 2.0e8", "tokens: -3"), ["target.tokens", "positive"]),
    "not a number": (GOOD.replace("params: 105792", "params: big"), ["checkpoints[0].params", "number"]),
    "duplicate names": (GOOD.replace("name: tiny-m", "name: tiny-s"), ["duplicate checkpoint name 'tiny-s'", "unique"]),
    "missing local path": (GOOD.replace("./models/tiny-s", "./models/nope"), ["checkpoints[0].model", "does not exist", "fix the path"]),
    "malformed yaml": (GOOD.replace("family: tiny", "family: [tiny"), ["malformed YAML", "line"]),
    "no checkpoints": ("family: tiny\ncheckpoints: []\n", ["checkpoints", "at least one"]),
    "target without size": (GOOD.replace("  params: 5.0e6\n  tokens: 2.0e8\n", ""), ["target", "params and tokens, or flops"]),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_each_mistake_is_one_line_naming_file_field_and_fix(spec_dir: Path, case: str) -> None:
    text, expected = MISTAKES[case]
    path = write(spec_dir, text)
    with pytest.raises(CapcastError) as info:
        load_family(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in expected:
        assert fragment in message


@pytest.mark.parametrize("case", ["unknown key", "zero params", "malformed yaml", "missing local path"])
def test_cli_exits_2_with_one_line_and_no_traceback(spec_dir: Path, case: str) -> None:
    path = write(spec_dir, MISTAKES[case][0])
    proc = subprocess.run(
        [sys.executable, "-m", "capcast", "eval", str(path), "--tasks", "capcast_add_mc"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and str(path) in lines[0]
    assert "Traceback" not in proc.stderr


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(CapcastError, match="no such family spec file"):
        load_family(tmp_path / "absent.yaml")
