"""What `dlx run` shows on the console versus what it keeps in pipeline.log."""
import io

from pipelines.local import ConsoleFilter

KFP_OUTPUT = """\
10:28:01.633 - INFO - Executing task 'train'
10:28:01.634 - INFO - Streamed logs:

    [KFP Executor 2026-11-28 10:28:02,009 INFO]: Looking for component `train`
    [KFP Executor 2026-11-28 10:28:02,010 INFO]: Got executor_input:
    {
        "inputs": {
            "parameterValues": {"seed": 0}
        }
    }
    Epoch 1/2
    11/11 - 3s - accuracy: 0.71
    [KFP Executor 2026-11-28 10:28:04,011 INFO]: Wrote executor output file to /x/executor_output.json.
10:28:04.900 - INFO - Task 'train' finished with status SUCCESS
10:28:04.901 - INFO - Task 'train' outputs:
    model: Model( name='model',
                  uri='/x/train/model' )
--------------------------------------------------------------------------------
"""

FAILURE = """\
    Traceback (most recent call last):
      File "x.py", line 1, in <module>
    components.errors.DlxError: /data/train-labels-idx1-ubyte.gz: wrong magic number 2050
10:28:05.000 - INFO - Task 'prepare' finished with status FAILURE
    Traceback (most recent call last):
      File "y.py", line 2, in <module>
    ZeroDivisionError: division by zero
"""


def _run(text: str, verbose: bool = False) -> tuple[str, str]:
    log, console = io.StringIO(), io.StringIO()
    tee = ConsoleFilter(log, console, verbose)
    for chunk in (text[:50], text[50:123], text[123:]):  # writes arrive in arbitrary pieces
        tee.write(chunk)
    return log.getvalue(), console.getvalue()


def test_progress_is_shown_and_executor_chatter_only_logged():
    log, console = _run(KFP_OUTPUT)
    assert log == KFP_OUTPUT
    assert "Epoch 1/2" in console and "accuracy: 0.71" in console
    assert "Executing task 'train'" in console and "finished with status SUCCESS" in console
    assert "KFP Executor" not in console and "parameterValues" not in console
    assert "uri='/x/train/model'" not in console
    assert console.rstrip().endswith("-" * 80)


def test_dlx_error_tracebacks_are_hidden_but_bugs_keep_theirs():
    log, console = _run(FAILURE)
    assert log == FAILURE
    assert "DlxError" not in console and "x.py" not in console
    assert "finished with status FAILURE" in console
    assert "ZeroDivisionError: division by zero" in console and "y.py" in console


def test_verbose_shows_everything():
    assert _run(KFP_OUTPUT, verbose=True)[1] == KFP_OUTPUT
