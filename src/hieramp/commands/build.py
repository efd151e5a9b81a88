"""`hieramp build`: TensorRT engines from an export directory (`hieramp export`, VAR or DiT), for
`--backend tensorrt`. Uses TensorRT (>= 10.6) when installed, else TensorRT-RTX, whose build is
ahead of time and needs no GPU."""
from pathlib import Path

from ..engine.builder import PRECISIONS, build_engines
from ..engine.manifest import EngineManifest
from ..files import check_place
from ..trt_import import FLAVOURS
from .common import int_list


def add_parser(subparsers):
    p = subparsers.add_parser("build", help="build TensorRT engines from an export", description=__doc__)
    p.add_argument("export_dir", metavar="EXPORT_DIR", help="export directory made by `hieramp export`")
    p.add_argument("--out", required=True, help="engine directory (created; an earlier build there is replaced)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="fp32 (TF32 off), fp16 or bf16 (default: the export's dtype). TensorRT-RTX takes precision "
                        "from the ONNX types: for fp16 engines, export with --dtype fp16")
    p.add_argument("--batch-sizes", type=int_list("batch sizes"),
                   help="batch sizes to build profiles for, e.g. 1,8,64; a smaller batch runs padded to the next "
                        "size (default: 1 and the export's --max-batch)")
    p.add_argument("--timing-cache", help="TensorRT timing cache file, read if it exists and written after the build "
                                          "(TensorRT only)")
    p.add_argument("--flavour", choices=FLAVOURS,
                   help="build with tensorrt or tensorrt-rtx (default: tensorrt when usable, else tensorrt-rtx)")
    p.set_defaults(run=run)


def run(args):
    check_place(args.out, "an engine directory", EngineManifest.describes)
    manifest = build_engines(args.export_dir, args.out, args.precision, args.batch_sizes, args.timing_cache, args.flavour)
    gpu = manifest.data["gpu"]
    target = gpu["target"] if gpu["target"] != "device" else f"{gpu['name']} (compute capability {gpu['compute_capability']})"
    if manifest.backbone == "dit":
        amp = f"DiT amplification at blocks {list(manifest.amp_layers)}"
    else:
        amp = f"amplification op as {manifest.amp_op}" if manifest.amp_op else "no amplification op"
    print(f"built {len(manifest.data['files'])} engines with {manifest.tensorrt_name} into {Path(args.out).resolve()}: "
          f"{manifest.precision}, batch sizes {list(manifest.batch_sizes)}, {target}, {amp}; artifact {manifest.artifact_id}")
