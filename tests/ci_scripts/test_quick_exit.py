"""quick_exit: a process ends as a normal exit would leave things, without the teardown.

Run as real processes, each way: ``sys.exit`` (the normal exit) and ``quick_exit.end_process``
must give the same exit status and leave the same files, atexit marks, thread output and stdout;
only the teardown (module globals' ``__del__``) is skipped by the quick one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # holds ci_scripts/

CHILD = """
import atexit, os, sys, threading, time
from ci_scripts.runtime import quick_exit

out, how, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
unclosed = open(out + ".txt", "w")  # never closed: only a flush keeps what it holds
unclosed.write("kept text")
raw = open(out + ".bin", "wb")
raw.write(b"kept bytes")
atexit.register(lambda: open(out + ".atexit", "w").write("ran"))


def late():
    # Written only once the exit has begun (the main thread is stopped then, before the other
    # threads are joined), so the file says the exit waited for this thread, however fast or
    # slow the machine.
    while threading.main_thread().is_alive():
        time.sleep(0.005)
    open(out + ".thread", "w").write("joined")


threading.Thread(target=late).start()  # not a daemon: exit waits for it


class TornDown:
    def __del__(self):
        os.write(2, b"torn down\\n")


KEEP = TornDown()  # its __del__ runs only in the interpreter's teardown
sys.stdout.write("no newline")  # still in the buffer: stdout is a pipe
if how == "normal":
    sys.exit(status)
quick_exit.end_process(status)
"""


def _run(tmp_path: Path, how: str, status: int) -> tuple[int, dict[str, str], str, str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / how
    done = subprocess.run(
        [sys.executable, str(script), str(out), how, str(status)],
        cwd=ROOT,
        # a bare environment; no bytecode written beside the sources
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    left = {
        suffix: (out.parent / (out.name + suffix)).read_text()
        for suffix in (".txt", ".bin", ".atexit", ".thread")
        if (out.parent / (out.name + suffix)).exists()
    }
    return done.returncode, left, done.stdout, done.stderr


@pytest.mark.parametrize(("status", "expected"), [(0, 0), (3, 3), (259, 3), (-1, 255)])
def test_a_quick_exit_leaves_what_a_normal_one_leaves(
    tmp_path: Path, status: int, expected: int
) -> None:
    normal = _run(tmp_path, "normal", status)
    quick = _run(tmp_path, "quick", status)
    assert normal[0] == quick[0] == expected
    assert (
        normal[1]
        == quick[1]
        == {
            ".txt": "kept text",
            ".bin": "kept bytes",
            ".atexit": "ran",
            ".thread": "joined",
        }
    )
    assert normal[2] == quick[2] == "no newline"
    # the teardown is what is skipped: the normal exit ran the global's __del__, the quick not
    assert "torn down" in normal[3]
    assert quick[3] == ""


@pytest.mark.parametrize(("code", "status", "said"), [(None, 0, ""), (4, 4, ""), ("no", 1, "no\n")])
def test_exit_status_is_the_one_sys_exit_gives(
    code: object, status: int, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ci_scripts.runtime.quick_exit import exit_status

    assert exit_status(code) == status
    assert capsys.readouterr().err == said
