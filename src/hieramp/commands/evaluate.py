"""`hieramp evaluate`: train small CNN students on a distilled digits set and report their
accuracy on the held-out real digits (mean and standard deviation over seeds)."""
import json

from ..train.evaluate import evaluate_distilled
from .common import output_file, students, write_output


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="score a distilled digits set with students tested on real digits",
                              description=__doc__)
    p.add_argument("--distilled", required=True, help="distilled set: class folders 0-9 of PNG images (`hieramp distill` output)")
    p.add_argument("--seeds", type=students, default=3, help="students to train, one per seed 0..N-1")
    p.add_argument("--json", help="also write the result as JSON to this file")
    p.set_defaults(run=run)


def run(args):
    if args.json:
        output_file(args.json)                       # before the students train, not after
    result = evaluate_distilled(args.distilled, args.seeds, progress=True)
    print(result)
    if args.json:
        write_output(args.json, (json.dumps(result.to_json(), indent=1) + "\n").encode())
