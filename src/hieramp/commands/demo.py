"""`hieramp demo`: the main job on the bundled default model, with no download."""
from . import generate


def add_parser(subparsers):
    p = subparsers.add_parser("demo", help="generate a small set with the default model", description=__doc__)
    p.add_argument("--out", default="demo-output", help="output directory")
    p.set_defaults(run=run)


def run(args):
    argv = ["--model", "default", "--classes", "0-9", "--per-class", "4", "--out", args.out]
    parser = generate_parser()
    return generate.run(parser.parse_args(argv))


def generate_parser():
    import argparse
    subparsers = argparse.ArgumentParser().add_subparsers()
    generate.add_parser(subparsers)
    return subparsers.choices["generate"]
