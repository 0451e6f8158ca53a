"""Every kpibot process tunes the garbage collector the same way (bot.runtime)."""

import gc
import subprocess
import sys

import pytest

from bot import runtime


def test_the_collector_is_tuned_and_frozen_once_per_process(monkeypatch: pytest.MonkeyPatch):
    before = gc.get_threshold()
    monkeypatch.setattr(runtime, "_frozen", False)
    gc.unfreeze()
    try:
        runtime.tune_gc()
        assert gc.get_threshold() == runtime.GC_THRESHOLDS
        first = gc.get_freeze_count()
        assert first > 0
        kept = [[i] for i in range(1000)]  # tracked objects made after start-up
        runtime.tune_gc()  # a second command in the same process freezes nothing more
        assert gc.get_freeze_count() == first
        runtime.tune_gc(refreeze=True)  # a server freezes what it built before serving
        assert gc.get_freeze_count() >= first + len(kept)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_kpibot_command_runs_with_the_tuned_collector(tmp_path):
    """The command line applies it before any command runs (here ``--version``)."""
    code = (
        "import gc\n"
        "from bot.surfaces.cli import main\n"
        "main(['--version'])\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    ).stdout
    assert f"{runtime.GC_THRESHOLDS} True" in out
