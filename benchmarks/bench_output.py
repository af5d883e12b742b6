"""How a benchmark leaves its results: OUT/STEM.json (the numbers) and OUT/STEM.md (the table), echoed."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(out: Path, stem: str, results: dict, lines: list[str]) -> None:
    """Write ``results`` to OUT/STEM.json and the Markdown ``lines`` to OUT/STEM.md, and print the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
