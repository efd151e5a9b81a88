"""Which images a distill run makes: the fixed job order, and how shards split it.

Jobs run index-major: image 0 of every class, then image 1 of every class, and so on. A run cut
short therefore holds the first images of all classes, and every batch mixes classes. Job j
belongs to shard j % n, so shards are disjoint, together complete, and equally loaded.
"""
import os
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import UserError


class Job(NamedTuple):
    label: int      # class index
    index: int      # image index within the class, 0 .. ipc-1


def plan_jobs(classes, ipc: int) -> list:
    if ipc < 1:
        raise UserError(f"images per class must be at least 1, got {ipc}")
    if not classes:
        raise UserError("no classes to distill: give at least one class, e.g. 0-9")
    return [Job(c, i) for i in range(ipc) for c in classes]


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UserError(f"shard {self.index}/{self.count} does not exist: use i/n with 0 <= i < n")

    def select(self, jobs):
        return jobs[self.index::self.count]

    def __str__(self):
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """'1/4' -> Shard(1, 4)."""
    index, sep, count = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return Shard(int(index), int(count))
    except ValueError:
        raise UserError(f"cannot read shard {text!r}: write it as i/n, e.g. 0/4 for the first of four") from None


def resolve_shard(text=None, environ=os.environ) -> Shard:
    """--shard if given, else torchrun's RANK and WORLD_SIZE, else the whole job."""
    if text:
        return parse_shard(text)
    if "WORLD_SIZE" not in environ:
        return Shard()
    try:
        return Shard(int(environ.get("RANK", "0")), int(environ["WORLD_SIZE"]))
    except ValueError:
        raise UserError(f"cannot read RANK={environ.get('RANK')!r} WORLD_SIZE={environ['WORLD_SIZE']!r} as integers; "
                        f"fix the environment or pass --shard i/n") from None
