"""The calibration report is moved into place whole, and not at all after an interrupt."""

import pytest


def test_staged_report_is_not_moved_into_place_after_an_interrupt(tmp_path):
    from gelato.calibration.report import SUBDIR, _commit
    from gelato.io import INTERRUPTED

    reports, staging = tmp_path / "reports", tmp_path / "staging"
    (reports / SUBDIR).mkdir(parents=True)
    (reports / "index.md").write_text("previous")
    (staging / SUBDIR).mkdir(parents=True)
    for name in ("index.md", "summary.json", "csim.md"):
        (staging / name).write_text("new")
    INTERRUPTED.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            _commit(staging, reports)
    finally:
        INTERRUPTED.clear()
    assert sorted(p.name for p in reports.iterdir()) == [SUBDIR, "index.md"]
    assert (reports / "index.md").read_text() == "previous"
    _commit(staging, reports)
    assert (reports / "index.md").read_text() == (reports / "csim.md").read_text() == "new"
