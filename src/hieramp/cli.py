"""The `hieramp` command: one subcommand per module in hieramp.commands."""
import argparse
import importlib
import signal
import sys
import threading

from .errors import UserError

SUBCOMMANDS = ("generate", "demo", "analyze", "distill", "bench", "export", "compare", "build", "doctor", "train", "evaluate",
               "finetune", "fid")


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes print one line, like every other user mistake (argparse prints the usage too)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    parser = OneLineParser(prog="hieramp", description="Deploy HierAmp-VAR for generative dataset distillation.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"hieramp.commands.{name}").add_parser(subparsers)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, torchrun, kill) ends a command as Ctrl-C does: staged outputs are removed."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None):
    """Runs one command; returns its exit code (2 for any user mistake, usage ones included)."""
    if threading.current_thread() is not threading.main_thread():      # only the main thread handles signals
        return _run(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:                   # argparse: --help, or a usage mistake already printed
        return done.code
    try:
        return args.run(args) or 0
    except UserError as err:
        print(f"hieramp {args.command}: error: {' '.join(str(err).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, Terminated)
        print(f"hieramp {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130


if __name__ == "__main__":
    sys.exit(main())
