"""The `electra-ja` command: every stage registers its subcommands as `electra_ja.commands` entry points
(setup.cfg), so this dispatcher imports no later stage and a client-only install still works.

Errors a user can fix (InputError) print as one line and exit 2; nothing else is caught, because anything
else is a bug whose traceback we want to see.

Example:
    electra-ja corpus --source data/corpus/wagahaiwa_nekodearu.txt --out build/corpus
"""

import argparse
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from data_prep.errors import InputError  # noqa: E402  (after the TF log level is set)

ENTRY_POINT_GROUP = "electra_ja.commands"
EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its flags and what it runs.

    Example:
        corpus_command = Command("clean and split a corpus", add_corpus_arguments, run_corpus)
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], None]


def registered_commands(package: str | None = None) -> dict[str, Command]:
    """Installed subcommands by name, optionally only those a given stage package provides."""
    found = entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.load() for ep in found if package is None or ep.value.startswith(f"{package}.")}


def build_parser(commands: dict[str, Command], prog: str = "electra-ja") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Japanese ELECTRA: data, pretraining, NER, serving.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in commands.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.add_argument("--verbose", action="store_true",
                         help="also show TensorFlow's own log lines (as TF_CPP_MIN_LOG_LEVEL=0 does)")
        sub.set_defaults(run=command.run)
    return parser


def run(argv: list[str], commands: dict[str, Command], prog: str = "electra-ja", quiet: bool = False) -> int:
    """Runs one command; `quiet` (the console scripts') hides TensorFlow's log lines unless --verbose asks."""
    args = build_parser(commands, prog).parse_args(argv)
    if args.verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    elif quiet:
        hide_tensorflow_start_up()
    try:
        args.run(args)
    except InputError as error:
        print(f"{prog} {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted; finished outputs are kept, partial ones were not written",
              file=sys.stderr)
        return 130
    return 0


def hide_tensorflow_start_up() -> None:
    """Hides TensorFlow's log lines from this process on, unless TF_CPP_MIN_LOG_LEVEL=0 asks for them; a benchmark
    run as a script calls it before it imports TensorFlow, to show what `electra-ja` shows. TensorFlow's C++ code
    writes its start-up lines (absl's "All log messages before absl::InitializeLog()", oneDNN, CUDA) to the stderr
    file descriptor whatever TF_CPP_MIN_LOG_LEVEL says. Python's own stderr moves to a copy of that descriptor, so the
    command's lines and errors still show, and the descriptor C++ writes to goes to /dev/null; TensorFlow's and Keras'
    Python warnings are hidden too."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for module in ("tensorflow", "keras", "keras_hub", "tf_keras"):
        warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")


def main(argv: list[str] | None = None) -> int:
    """The console script. Without `argv` the process is the command and TensorFlow's log lines are hidden (they
    go to the process's stderr descriptor); with it (a caller's process, a test) nothing is redirected."""
    return run(sys.argv[1:] if argv is None else argv, registered_commands(), quiet=argv is None)


def stage_main(package: str) -> None:
    """`python -m STAGE ...`: the same commands, limited to one stage package."""
    sys.exit(run(sys.argv[1:], registered_commands(package), prog=f"python -m {package}", quiet=True))
