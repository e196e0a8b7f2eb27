"""``python -m ci_scripts.runtime preprocess|train|evaluate|bias|explain|serve|... [options]``.

The container's ENTRYPOINT: SageMaker training runs ``<image> train``, hosting ``<image> serve``,
and processing jobs set ContainerEntrypoint to ``python -m ci_scripts.runtime preprocess`` (or
evaluate, bias, explain, baseline, monitor, batch_check, batch_capture).
Only the chosen step's module is imported, so ``--help`` and input errors stay fast. Bad input
(StepError) ends as one ``error: ...`` line on stderr and exit status 1; for train the line also
goes to ``$OPT_ML_ROOT/output/failure``, where SageMaker reads a training job's FailureReason, and
for a processing step to ``$OPT_ML_ROOT/output/message``, its job's ExitMessage. A job ends without
the interpreter's teardown (quick_exit.py), as the local backend's warm steps do.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence

from . import paths, quick_exit
from .errors import StepError

COMMANDS = {
    "preprocess": "split the dataset 80/10/10 (processing job)",
    "train": "fit the model (training job)",
    "evaluate": "score the model on the test split (processing job)",
    "bias": "DPL/DPPL of a facet on the test split (processing job)",
    "explain": "permutation feature importance on the test split (processing job)",
    "baseline": "describe the training features for the monitor (processing job)",
    "monitor": "drift, quality, bias and attribution drift of captured traffic (processing job)",
    "batch_check": "check a batch run's input files before they are scored (processing job)",
    "batch_capture": "a batch run's inputs and outputs as capture records (processing job)",
    "serve": "answer /ping and /invocations (hosting)",
}
USAGE = "usage: python -m ci_scripts.runtime {" + ",".join(COMMANDS) + "} [options]"


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to ``<command>.main(rest)``; return the process exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        if args and args[0] in ("-h", "--help"):
            print(USAGE)
            for name, summary in COMMANDS.items():
                print(f"  {name:<11} {summary}")
            return 0
        given = f"unknown command {args[0]!r}" if args else "missing command"
        print(f"{USAGE} ({given})", file=sys.stderr)
        return 2
    command, rest = args[0], args[1:]
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        module = importlib.import_module(f".{command}", __package__)
        return int(module.main(rest) or 0)
    except StepError as exc:
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        if command != "serve":
            _write_failure(message, command)
        return 1


def _write_failure(message: str, command: str) -> None:
    """Best effort: outside SageMaker the directory may not be writable, and that is fine."""
    try:
        failure = paths.failure_file() if command == "train" else paths.exit_message_file()
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(message + "\n", encoding="utf-8")
    except OSError:
        pass


if __name__ == "__main__":
    # Every job ends without the interpreter's teardown (quick_exit.py): 0.3-0.5 s of CPU
    # freeing pandas and scikit-learn that no job needs; its files and exit status are kept.
    quick_exit.end_process(main())
