"""`python -m hieramp.train ARGS` is `hieramp train ARGS`."""
import sys

from ..cli import main

sys.exit(main(["train", *sys.argv[1:]]))
