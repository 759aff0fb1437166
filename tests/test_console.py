"""What `dlx run` shows: kfp's records and the steps' output only in the log, a line per step, the
steps' progress events; plain lines without escapes off a terminal, a live display on one."""
import io
import json
import logging
import time

from components import progress
from dlx.console import LiveConsole, PlainConsole, epoch_text
from pipelines.local import _KfpRecords, _progress_events, _Tee

EPOCH = {"kind": "epoch", "done": 3, "total": 20, "label": "", "speed": 1234.5, "unit": "examples",
         "figures": {"loss": 0.12345, "accuracy": 0.9, "learning_rate": 0.001}}


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("root", logging.INFO, __file__, 1, message, None, None)


def test_kfp_records_go_to_the_log_and_become_step_events():
    log, events = io.StringIO(), []
    records = _KfpRecords(log, events.append, verbose=False)
    for message in ("Executing task \x1b[96m'train'\x1b[0m", "Streamed logs:\n",
                    "Task \x1b[96m'train'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m"):
        assert records.filter(_record(message)) is False  # kept off the console
    assert [(e["step"], e["state"]) for e in events] == [("train", "started"), ("train", "finished")]
    assert events[1]["seconds"] >= 0
    assert "Executing task 'train'" in log.getvalue() and "\x1b" not in log.getvalue()
    assert _KfpRecords(io.StringIO(), events.append, verbose=True).filter(_record("Streamed logs:\n")) is True
    _KfpRecords(io.StringIO(), events.append, verbose=False).filter(
        _record("Task 'prepare' finished with status FAILURE"))
    assert events[-1]["state"] == "failed"


def test_step_output_goes_to_the_log_and_with_verbose_to_the_console():
    log, events = io.StringIO(), []
    quiet = _Tee(log, events.append, verbose=False)
    quiet.write("    Epoch 1/2\n    11/11 - 3s")
    assert log.getvalue() == "    Epoch 1/2\n    11/11 - 3s" and events == []
    loud = _Tee(io.StringIO(), events.append, verbose=True)
    loud.write("a\nb")
    loud.write("c\n")
    assert events == [{"kind": "log", "line": "a"}, {"kind": "log", "line": "bc"}]


def test_progress_events_are_read_as_the_steps_write_them(tmp_path, monkeypatch):
    path, seen = tmp_path / "progress.jsonl", []
    monkeypatch.setenv(progress.PROGRESS_ENV, str(path))
    with _progress_events(path, seen.append):
        progress.phase("loading keras")
        progress.epoch(1, 2, {"loss": 0.5}, speed=10.0, unit="examples")
        time.sleep(0.5)
        assert [e["kind"] for e in seen] == ["phase", "epoch"]  # arrived while the step still runs
        progress.note("resuming")
    assert [e["kind"] for e in seen] == ["phase", "epoch", "note"]
    assert json.loads(path.read_text().splitlines()[1])["figures"] == {"loss": 0.5}


def test_progress_without_a_file_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    progress.phase("nothing to see")
    assert not any(tmp_path.iterdir())


def test_plain_console_prints_a_line_per_event_and_no_escapes():
    out = io.StringIO()
    with PlainConsole(out) as console:
        for event in ({"kind": "step", "step": "train", "state": "started"}, {"kind": "phase", "text": "loading keras"},
                      EPOCH, {"kind": "note", "text": "resuming from the checkpoint after epoch 2"},
                      {"kind": "step", "step": "train", "state": "finished", "seconds": 12.34}):
            console.handle(event)
    assert out.getvalue().splitlines() == [
        "train     loading keras",
        "train     epoch 3/20  loss 0.1235  accuracy 0.9  1,234 examples/s",
        "train     resuming from the checkpoint after epoch 2",
        "train     done in 12.3 s",
    ]
    assert "learning_rate" not in epoch_text(EPOCH)


def test_live_console_keeps_a_line_per_finished_step():
    out = io.StringIO()
    console = LiveConsole(out)
    console.console.force_terminal = True
    with console:
        console.handle({"kind": "step", "step": "prepare", "state": "started"})
        console.handle({"kind": "phase", "text": "preparing digits"})
        console.handle({"kind": "step", "step": "prepare", "state": "finished", "seconds": 1.5})
        console.handle({"kind": "step", "step": "train", "state": "started"})
        console.handle(EPOCH)
        console.handle({"kind": "step", "step": "train", "state": "failed", "seconds": 2.0})
    text = out.getvalue()
    assert "✓ prepare" in text and "1.5 s" in text and "✗ train" in text
