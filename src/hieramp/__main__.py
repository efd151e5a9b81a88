"""`python -m hieramp ARGS` is `hieramp ARGS` (what torchrun runs: torchrun -m hieramp finetune ...)."""
import sys

from .cli import main

sys.exit(main())
