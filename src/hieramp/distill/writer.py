"""Turns generated images into files and manifest lines, on a thread of its own.

PIL's Lanczos resize and zlib release the GIL, so encoding batch k overlaps generating batch
k+1, and `workers` threads encode and write the images of a batch side by side (a 224 px PNG
takes longer than a fast GPU takes to make an image). Per image: check, encode, write the file
atomically; then, in job order, append its manifest line.
"""
import hashlib
import os
import queue
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import torch

from ..errors import UserError
from ..files import write_atomic
from ..runtime.images import encode_png, to_uint8

OK, BLANK, NONFINITE = "ok", "blank", "nonfinite"


def default_workers() -> int:
    """Half the CPU cores (up to 8): the other half feeds the accelerator or runs the model."""
    return max(1, min(8, (os.cpu_count() or 1) // 2))


def image_status(image_3HW) -> str:
    """NONFINITE if any value is NaN or inf, BLANK if every pixel has the same 8-bit colour, else OK."""
    if not torch.isfinite(image_3HW).all():
        return NONFINITE
    pixels_HW3 = to_uint8(image_3HW)
    return BLANK if (pixels_HW3 == pixels_HW3[:1, :1]).all() else OK


class ImageWriter:
    """`submit` a batch; with `overlap` it returns at once and a thread writes it (at most
    `max_pending` batches wait, so generation cannot run far ahead of the disk)."""

    def __init__(self, layout, manifest, image_settings: dict, settings, progress, overlap=True, workers=1,
                 max_pending=2):
        """`image_settings`: what each manifest record carries; `settings`: the DistillSettings (PNG size and level)."""
        self.layout, self.manifest, self.progress = layout, manifest, progress
        self.image_settings, self.save_size, self.png_level = image_settings, settings.save_size, settings.png_level
        self.counts = Counter()
        self.overlap = overlap
        self._error = None
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="hieramp-png") if workers > 1 else None
        if overlap:
            self._queue = queue.Queue(maxsize=max_pending)
            self._thread = threading.Thread(target=self._drain, name="hieramp-distill-writer", daemon=True)
            self._thread.start()

    def submit(self, jobs, images_B3HW):
        if not self.overlap:
            self._write_batch(jobs, images_B3HW)
            return
        while True:
            self._raise_if_failed()
            try:
                self._queue.put((jobs, images_B3HW), timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self, raise_errors=True):
        """Write what is still queued, stop the threads and raise their error, if any."""
        if self.overlap and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown()
        if raise_errors:
            self._raise_if_failed()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(raise_errors=exc_type is None)

    def _raise_if_failed(self):
        if self._error is not None:
            raise self._error

    def _drain(self):
        while (item := self._queue.get()) is not None:
            if self._error is None:                         # after a failure, discard so submit never blocks
                try:
                    self._write_batch(*item)
                except BaseException as err:
                    self._error = err

    def _write_batch(self, jobs, images_B3HW):
        parallel_map = self._pool.map if self._pool is not None else map
        for record in parallel_map(self._save, jobs, images_B3HW):  # in job order, each once its file is in place
            self.manifest.append(record)
            self.counts[record["status"]] += 1
            self.progress.update(1)

    def _save(self, job, image_3HW) -> dict:
        """Check, encode and write one image; its manifest record."""
        status = image_status(image_3HW)
        record = {"class": job.label, "index": job.index, "status": status, "file": None, "sha256": None,
                  **self.image_settings}
        if status != OK:
            self.progress.write(f"warning: class {job.label} image {job.index} is {status}: not saved, "
                                f"listed in the manifest with status {status!r}", file=sys.stderr)
            return record
        data = encode_png(image_3HW, self.save_size, self.png_level)
        path = self.layout.image_path(job)
        try:
            write_atomic(path, data)
        except OSError as err:
            raise UserError(f"cannot write {path}: {err.strerror}; free space or choose another --out, "
                            f"then rerun to resume") from None
        record.update(file=self.layout.relative(job), sha256=hashlib.sha256(data).hexdigest())
        return record
