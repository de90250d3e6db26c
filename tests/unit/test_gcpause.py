"""Imports without garbage collection (``alignprep.gcpause``): pauses nest across threads,
collection always resumes, and only a process of one run freezes what it imported."""

from __future__ import annotations

import gc
import subprocess
import sys
import threading

from alignprep import gcpause

from ..conftest import CODE_DIR


def test_pauses_nest_across_threads_and_a_library_caller_is_never_frozen(monkeypatch):
    monkeypatch.setattr(gcpause, "_freeze", False)
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    entered, leave = threading.Event(), threading.Event()

    def other() -> None:
        with gcpause.paused():
            entered.set()
            leave.wait(30)

    thread = threading.Thread(target=other)
    gcpause.pause()
    thread.start()
    assert entered.wait(30)
    gcpause.resume()
    assert not gc.isenabled()  # the other thread still imports
    leave.set()
    thread.join(30)
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_collection_resumes_when_the_paused_block_raises(monkeypatch):
    monkeypatch.setattr(gcpause, "_freeze", False)
    try:
        with gcpause.paused():
            raise ImportError("a library that is not installed")
    except ImportError:
        pass
    assert gc.isenabled()


def test_a_process_of_one_run_freezes_what_was_alive_when_the_pause_ended():
    code = (
        "import gc\n"
        "from alignprep import gcpause\n"
        "gcpause.own_process()\n"
        "with gcpause.paused():\n"
        "    kept = [[i] for i in range(50_000)]\n"
        "    assert not gc.isenabled()\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=CODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    enabled, frozen = proc.stdout.split()
    assert enabled == "True"
    assert int(frozen) > 50_000  # the 50,000 lists, at least
