"""The `electra-ja` command: every stage registers its subcommands as `electra_ja.commands` entry points
(setup.cfg), so this dispatcher imports no later stage and a client-only install still works.

Errors a user can fix (InputError) print as one line and exit 2; nothing else is caught, because anything
else is a bug whose traceback we want to see.

Example:
    electra-ja corpus --source data/corpus/wagahaiwa_nekodearu.txt --out build/corpus
"""

import argparse
import os
import sys
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
        sub.set_defaults(run=command.run)
    return parser


def run(argv: list[str], commands: dict[str, Command], prog: str = "electra-ja") -> int:
    args = build_parser(commands, prog).parse_args(argv)
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


def main(argv: list[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, registered_commands())


def stage_main(package: str) -> None:
    """`python -m STAGE ...`: the same commands, limited to one stage package."""
    sys.exit(run(sys.argv[1:], registered_commands(package), prog=f"python -m {package}"))
