"""`tests.services.need`: skips on a developer machine, fails in CI."""

from __future__ import annotations

import pytest

from tests.services import need


def test_a_met_need_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    need(True, "never shown")


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_a_missing_service_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI=true and no Redis"):
        need(False, "no Redis")


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_a_missing_service_skips_outside_ci(monkeypatch: pytest.MonkeyPatch,
                                            ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="no Redis"):
        need(False, "no Redis")


def test_ci_entry_point_sets_ci() -> None:
    """`.ci/run` provides the services, so it must make their absence a failure."""
    from pathlib import Path

    script = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "\nexport CI=true\n" in script
