"""A fixed, fast slice of the fuzz suite (tests/fuzzing.py; `make fuzz` runs thousands of cases)."""

from __future__ import annotations

from pathlib import Path

from fuzzing import make_cases, run_cases, summarize

SLICE_CASES = 40
SLICE_SEED = 2026


def test_a_slice_of_damaged_crafted_and_hostile_files_gets_typed_errors_in_bounded_memory(tmp_path: Path) -> None:
    cases = make_cases(SLICE_CASES, SLICE_SEED, tmp_path)
    assert {case.action for case in cases} == {"decode", "encode"}
    outcomes, baseline_rss_mb = run_cases(cases, memory_mb=2048, timeout=300)
    summary = summarize(outcomes, 2048, 300, baseline_rss_mb)
    assert summary["findings"] == [], summary["findings"]
    assert summary["by_result"].get("decode/typed", 0) > SLICE_CASES // 2
    assert all(outcome.peak_rss_mb > 0 for outcome in outcomes)
    assert summary["cases_over_1gb_above_warm_worker"] == 0
