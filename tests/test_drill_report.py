"""Drill verdicts and reports: the verdict follows checks and objectives; the reports
(md/json/html/png) are written, carry RTO/RPO, and never a registered secret."""

import json

from harness.drills.model import DrillResult, DrillRun, Objectives
from harness.drills.report import write_reports
from harness.runtime.redact import REDACTOR


def result(rto_objective=30.0):
    return DrillResult(drill="demo", description="a demo", profile="staging",
                       started_utc="2026-01-01T00:00:00Z",
                       objectives=Objectives(rto_seconds=rto_objective))


def test_pass_needs_checks_ok_and_rto_within_objective():
    r = result()
    run = DrillRun(r)
    run.fault("boom")
    run.restored("back")
    run.check("fine", True)
    r.rpo = {"lost": 2, "unit": "write(s)", "unexpected_loss": 0}
    assert r.verdict == "PASS" and r.rto_seconds is not None
    run.check("broken", False)
    assert r.verdict == "FAIL"
    assert "check failed: broken" in r.reasons


def test_no_restore_or_slow_restore_or_unexpected_loss_fails():
    r = result()
    DrillRun(r).fault("boom")
    assert "service was not restored (no RTO)" in r.reasons
    r.fault_at, r.restored_at = 0.0, 45.0
    assert any("exceeds the objective" in x for x in r.reasons)
    r.restored_at = 1.0
    r.rpo = {"lost": 3, "unexpected_loss": 1}
    assert any("lost beyond" in x for x in r.reasons)


def test_reports_are_written_with_figures_and_without_secrets(tmp_path):
    secret = "tok-9f3k2j4h5g6"
    REDACTOR.add(secret)
    r = result()
    run = DrillRun(r)
    run.setup(f"token {secret} used")  # a careless message: redacted on the way in
    run.fault("disaster")
    run.restored("back")
    r.rpo = {"lost": 6, "unit": "write(s)", "window_seconds": 1.5, "unexpected_loss": 0}
    r.duration = run.now()
    out = write_reports(r, tmp_path / "rep")
    data = json.loads(out["json"].read_text())
    assert data["verdict"] == "PASS" and data["rto_seconds"] >= 0
    assert data["rpo"]["lost"] == 6
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    for key in ("md", "html", "json"):
        text = out[key].read_text()
        assert secret not in text
        assert "RPO" in text or "rpo" in text
    assert "6 write(s) lost" in out["md"].read_text()
    assert "data:image/png;base64," in out["html"].read_text()


def test_without_the_reports_extra_the_reports_say_the_png_is_missing(tmp_path, monkeypatch):
    """matplotlib is the `reports` extra: without it md/json/html are written and the
    md and html say why there is no timeline picture."""
    import harness.drills.report as report

    monkeypatch.setattr(report, "can_draw", lambda: False)
    r = result()
    run = DrillRun(r)
    run.fault("boom")
    run.restored("back")
    out = write_reports(r, tmp_path)
    assert set(out) == {"json", "md", "html"} and not (tmp_path / "timeline.png").exists()
    for kind in ("md", "html"):
        assert "heracles-harness[reports]" in out[kind].read_text()
    assert json.loads(out["json"].read_text())["drill"] == "demo"
