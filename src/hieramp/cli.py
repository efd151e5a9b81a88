"""The `hieramp` command: one subcommand per module in hieramp.commands."""
import argparse
import importlib
import sys

from .errors import UserError

SUBCOMMANDS = ("generate", "demo", "analyze", "distill", "bench", "export", "compare", "build", "doctor", "train", "evaluate",
               "finetune", "fid")


def build_parser():
    parser = argparse.ArgumentParser(prog="hieramp", description="Deploy HierAmp-VAR for generative dataset distillation.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"hieramp.commands.{name}").add_parser(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as err:
        print(f"hieramp {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hieramp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
