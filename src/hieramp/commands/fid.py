"""`hieramp fid A B`: Frechet Inception Distance between two image sets.

Each side is a folder of images (searched recursively, so class folders work) or a `.npz` of
statistics saved by --save-stats (mu, sigma), so a large reference set is read once. The network
is FID's Inception-v3 from pytorch-fid, with weights from a local file: nothing is downloaded."""
from pathlib import Path

from ..errors import UserError
from ..evaluate.fid import (DIMS, WEIGHTS_SOURCE, folder_statistics, frechet_distance, inception_network,
                            load_statistics)
from .common import batch_size, device, output_file, write_json, write_output


def add_parser(subparsers):
    p = subparsers.add_parser("fid", help="Frechet Inception Distance between two image folders or saved statistics",
                              description=__doc__)
    p.add_argument("a", help="first set: a folder of images or a .npz of statistics")
    p.add_argument("b", help="second set (the reference): a folder of images or a .npz of statistics")
    p.add_argument("--inception-weights", help="pt_inception-2015-12-05-6726825d.pth (pytorch-fid's FID Inception "
                                               "weights); needed when a side is a folder")
    p.add_argument("--save-stats", help="also save the second set's statistics to this .npz, to pass as B next time")
    p.add_argument("--json", help="also write {fid, images_a, images_b} as JSON to this file")
    p.add_argument("--dims", type=int, choices=DIMS, default=2048,
                   help="Inception features: 2048 (pool3, the standard FID; default) or an earlier block's")
    p.add_argument("--batch-size", type=batch_size, default=50, help="images per Inception batch")
    p.add_argument("--device", type=device, default="cpu", help="torch device: cpu (default), cuda, cuda:1")
    p.set_defaults(run=run)


def _side(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        return path
    if path.suffix == ".npz" and path.is_file():
        return path
    if path.suffix == ".npz":
        raise UserError(f"statistics file {path} not found: make it with `hieramp fid ... --save-stats {path}`")
    raise UserError(f"{path} is neither a folder of images nor a .npz of statistics")


def run(args):
    a, b = _side(args.a), _side(args.b)
    if args.save_stats:
        if not b.is_dir():
            raise UserError(f"--save-stats saves the second set's statistics, but {b} already is a statistics file")
        if Path(args.save_stats).suffix != ".npz":
            raise UserError(f"--save-stats {args.save_stats}: give a file name ending in .npz")
        output_file(args.save_stats)
    if args.json:
        output_file(args.json)
    device = args.device                          # checked by the --device type
    network = None
    if a.is_dir() or b.is_dir():
        if not args.inception_weights:
            raise UserError(f"a folder side needs the FID Inception network: {WEIGHTS_SOURCE}")
        network = inception_network(args.inception_weights, args.dims, device)

    def statistics(side: Path):
        if side.is_dir():
            return folder_statistics(side, network, args.batch_size, device, progress=True)
        return load_statistics(side)

    stats_a, stats_b = statistics(a), statistics(b)
    fid = frechet_distance(stats_a, stats_b)
    print(f"FID {fid:.4f} ({stats_a.images or '?'} images in {a}, {stats_b.images or '?'} in {b})")
    if args.save_stats:
        write_output(args.save_stats, stats_b.to_npz())
    if args.json:
        result = {"fid": fid, "images_a": stats_a.images, "images_b": stats_b.images}
        write_json(args.json, result)
