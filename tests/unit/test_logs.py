"""Logging helpers: per-step wall time and non-TTY progress lines."""

from __future__ import annotations

import logging
import re

import pytest

from alignprep.logs import progress, step


def test_step_logs_wall_time(caplog):
    with caplog.at_level(logging.INFO, logger="alignprep"), step("unit step"):
        pass
    assert re.search(r"step unit step: done in \d+\.\d\d s", caplog.text)


def test_step_logs_failure(caplog):
    with (
        caplog.at_level(logging.INFO, logger="alignprep"),
        pytest.raises(RuntimeError),
        step("bad step"),
    ):
        raise RuntimeError("boom")
    assert "step bad step: failed after" in caplog.text


def test_progress_without_tty_yields_everything_and_logs_plain_lines(caplog):
    with caplog.at_level(logging.INFO, logger="alignprep"):
        out = list(progress(range(5), "items", every_s=0.0, tty=False))
    assert out == [0, 1, 2, 3, 4]
    lines = [r.getMessage() for r in caplog.records]
    assert [m for m in lines if re.fullmatch(r"items: \d/5 after .* s", m)]  # periodic
    assert re.fullmatch(r"items: 5/5 done in .* s", lines[-1])  # final


def test_heartbeat_without_tty_logs_while_the_call_runs(caplog):
    import time

    from alignprep.logs import heartbeat

    with (
        caplog.at_level(logging.INFO, logger="alignprep"),
        heartbeat("warp", every_s=0.05, tty=False),
    ):
        time.sleep(0.3)
    beats = [r.getMessage() for r in caplog.records if r.getMessage().startswith("warp: still")]
    assert 2 <= len(beats) <= 7
    assert re.fullmatch(r"warp: still running after \d+ s", beats[0])


def test_heartbeat_on_a_tty_draws_elapsed_time(capsys):
    import time

    from alignprep.logs import heartbeat

    with heartbeat("warp", tty=True):
        time.sleep(1.3)
    assert re.search(r"warp: 00:0[01]", capsys.readouterr().err)
