"""The README's in-memory API examples run as written (those reading ../shared/data skip without it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import SHARED_DATA

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### In-memory API"


def python_blocks(text: str, section: str) -> list[str]:
    """The ```python blocks of ``section`` (from its heading to the next heading of any level)."""
    start = text.index(section + "\n")
    end = re.compile(r"^#{1,6} ", re.MULTILINE).search(text, start + len(section))
    body = text[start:end.start() if end else len(text)]
    return re.findall(r"^```python\n(.*?)^```", body, re.MULTILINE | re.DOTALL)


def test_the_section_has_examples():
    blocks = python_blocks(README.read_text(encoding="utf-8"), SECTION)
    assert len(blocks) >= 2 and all("neuralcodec.compress(" in block for block in blocks)


@pytest.mark.parametrize("index", range(len(python_blocks(README.read_text(encoding="utf-8"), SECTION))))
def test_an_example_runs(index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    block = python_blocks(README.read_text(encoding="utf-8"), SECTION)[index]
    if "../shared/data" in block:
        if not SHARED_DATA.is_dir():
            pytest.skip(f"{SHARED_DATA} not available")
        block = block.replace("../shared/data", SHARED_DATA.as_posix())  # the README's paths are from the checkout
    monkeypatch.chdir(tmp_path)  # files the example writes land here
    exec(compile(block, f"README.md ({SECTION}, block {index + 1})", "exec"), {"__name__": "__readme__"})
