"""The fine-tune loop: data in worker processes, tokens from the VQVAE under no_grad, the shared
loss (train.objective) and optimiser step (train.stepper), DistributedDataParallel over the ranks,
a checkpoint every --save-every steps that a rerun continues from, log.jsonl and a progress bar.
Letters: B batch, L tokens, V vocabulary, Cv latent width, K classes.
"""
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..bench.memory import PeakMemory
from ..classes import parse_class_spec
from ..errors import UserError
from ..files import write_atomic
from ..precision import autocast
from ..train.objective import apply_drop, drop_mask, objective_metrics
from ..train.stepper import Stepper, param_groups
from ..train.var import var_wo_ddp_state
from . import run_dir
from .data import Plan, StepBatches, TrainImages, collate, derived_generator, scan_images
from .model import Trainee, build_trainee, resolve_scales, starting_point
from .plot import log_plot
from .schedule import lr_factor
from .settings import FinetuneSettings

BETAS = (0.9, 0.95)
FP16_INIT_SCALE = 2.0 ** 11
FP16_GROWTH_INTERVAL = 1000
DROP_STREAM = 1                  # tells the class-dropout generator apart from the data's


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; none of these changes its weights (so a rerun may change them)."""
    out: Path
    device: str = "cpu"
    workers: int = 0
    save_every: int = 1000
    log_every: int = 50
    compile: bool = False
    trust_checkpoint: bool = False
    progress: bool = True


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()

    def mean(self, values: list) -> list:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return (t / self.world).tolist()


def current_ranks() -> Ranks:
    return Ranks(dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else Ranks()


@dataclass
class Summary:
    out: Path
    start_step: int
    steps: int
    images: int
    seconds: float
    last: Optional[dict]         # the last log record

    def __str__(self):
        if self.start_step >= self.steps:
            return f"nothing to do: the run in {self.out} finished all {self.steps} steps"
        done = f"steps {self.start_step}-{self.steps}" if self.start_step else f"{self.steps} steps"
        loss = f", loss {self.last['loss']:.4f}" if self.last else ""
        return (f"trained {done} on {self.images} images in {self.seconds:.0f} s{loss}; "
                f"weights in {self.out / run_dir.CHECKPOINT}")


def metric_vector(m: dict) -> list:
    cls = [m["cls_loss"], *m["cls_acc"]] if "cls_loss" in m else []
    return [m["loss"], m["token_loss"], m["token_acc"], m["token_acc_last"], *cls]


def metric_dict(v: list) -> dict:
    out = dict(zip(("loss", "token_loss", "token_acc", "token_acc_last"), v[:4]))
    if len(v) > 4:
        out.update(cls_loss=v[4], cls_acc=v[5:])
    return out


@torch.no_grad()
def tokenize(vae, images_B3HW, precision: str):
    """Token ids (B, L) and teacher-forcing input (B, L - 1, Cv): the encoder in the training precision,
    the quantization in fp32 (as VAR's trainer, which encodes outside autocast)."""
    with autocast(images_B3HW.device, precision):
        latent = vae.encode(images_B3HW)
    idx_list = vae.latent_to_idx(latent.float())
    return torch.cat(idx_list, dim=1), vae.idx_to_var_input(idx_list)


def finetune(settings: FinetuneSettings, options: RunOptions,
             after_save: Optional[Callable[[int], None]] = None) -> Summary:
    """Run (or continue) the fine-tune into options.out; `after_save(step)` runs after every checkpoint."""
    ranks = current_ranks()
    settings.check(ranks.world)
    device = torch.device(options.device)
    precision = settings.precision or ("bf16" if device.type == "cuda" else "fp32")
    out = Path(options.out)

    state, cfg, vae = starting_point(settings.model, settings.vae, settings.random_init, options.trust_checkpoint)
    scales = resolve_scales(settings.cls_scales, cfg)
    var, class_head = build_trainee(state, cfg, vae, scales, settings.seed, settings.model)
    del state                                                        # a second copy of the weights (1.2 GB at d16)
    classes = parse_class_spec(settings.classes, cfg.num_classes) if settings.classes else None
    images = scan_images(settings.data, cfg.num_classes, classes)
    plan = Plan(len(images), settings.batch_size, settings.accum, ranks.world, settings.seed)
    if plan.steps_per_epoch < 1:
        raise UserError(f"--batch-size {settings.batch_size} is more than the {len(images)} images in {images.root}: "
                        f"use a batch of at most {len(images)}")
    total = settings.steps or settings.epochs * plan.steps_per_epoch
    continuing = run_dir.check_out(out, settings)
    ckpt = run_dir.load_checkpoint(out) if continuing else None
    if ckpt is not None and ckpt.get("settings") != settings.to_json():
        raise UserError(f"{out / run_dir.CHECKPOINT} was written with other settings than {out / run_dir.RUN_FILE}: "
                        f"remove it to start the run over")
    ranks.barrier()                                                  # every rank passed every check
    if ranks.main:
        run_dir.start_run(out, settings, {"images": len(images), "classes": sorted(set(images.labels)),
                                          "data_root": str(images.root.resolve()), "steps": total,
                                          "steps_per_epoch": plan.steps_per_epoch, "world_size": ranks.world,
                                          "precision": precision, "cls_token_scales": list(scales)})

    trainee = Trainee(var, class_head).to(device).train()
    vae = vae.to(device).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(param_groups(trainee.named_parameters(), settings.weight_decay),
                                  lr=settings.peak_lr, betas=BETAS)
    scaler = (torch.amp.GradScaler(device.type, init_scale=FP16_INIT_SCALE, growth_interval=FP16_GROWTH_INTERVAL)
              if precision == "fp16" else None)
    start, unreadable = 0, 0
    if ckpt is not None:
        start, unreadable = resume(ckpt, trainee, optimizer, scaler)
        if ranks.main:
            run_dir.trim_log(out, start)
    summary = Summary(out, start, total, len(images), 0.0, None)
    if start >= total:
        return summary

    model = DistributedDataParallel(trainee, device_ids=[device.index] if device.type == "cuda" else None) \
        if ranks.world > 1 else trainee
    step_model = torch.compile(model) if options.compile else model
    stepper = Stepper(optimizer, settings.clip, settings.accum, scaler)
    loader = torch.utils.data.DataLoader(
        TrainImages(images, vae.cfg.image_size, settings.seed, settings.hflip),
        batch_sampler=StepBatches(plan, ranks.rank, start, total), num_workers=options.workers,
        collate_fn=collate, pin_memory=device.type == "cuda", persistent_workers=False)
    batches = iter(loader)
    memory = PeakMemory(device)
    micro = settings.batch_size // settings.accum
    last_tokens = cfg.patch_nums[-1] ** 2
    bar = tqdm(total=total * settings.batch_size, initial=start * settings.batch_size, unit="img", desc="finetune",
               disable=not (options.progress and ranks.main), smoothing=0.1)
    began = tick = time.perf_counter()
    cpu_tick = time.process_time()
    seen = 0
    try:
        for step in range(start, total):
            for group in optimizer.param_groups:
                group["lr"] = settings.peak_lr * lr_factor(step, total)
            step_drop = drop_mask(settings.batch_size, derived_generator(settings.seed, step, DROP_STREAM))
            for m in range(settings.accum):
                images_B3HW, labels_B, kept_B, bad = next(batches)
                unreadable += bad
                if images_B3HW is None:
                    raise UserError(f"every image of a batch at step {step} was unreadable: check the files in {images.root}")
                labels_B = labels_B.to(device, non_blocking=True)
                ids_BL, inputs_BLCv = tokenize(vae, images_B3HW.to(device, non_blocking=True), precision)
                first = m * micro + ranks.rank * plan.local_batch           # this rank's place in the global batch
                drop = step_drop[first:first + plan.local_batch][kept_B]
                dropped_B = apply_drop(labels_B, drop.to(device), cfg.num_classes)
                sync = model.no_sync() if ranks.world > 1 and m < settings.accum - 1 else nullcontext()
                with sync:
                    with autocast(device, precision):
                        obj = step_model(labels_B, dropped_B, ids_BL, inputs_BLCv, settings.cls_weight)
                    stepper.backward(obj.total)
                seen += len(labels_B) * ranks.world
            grad_norm = stepper.step()
            bar.update(settings.batch_size)
            done = step + 1
            if done % options.log_every == 0 or done == total:
                metrics = metric_dict(ranks.mean(metric_vector(objective_metrics(obj, labels_B, ids_BL, last_tokens))))
                now = time.perf_counter()
                record = {"step": done, "epoch": step // plan.steps_per_epoch, "lr": optimizer.param_groups[0]["lr"],
                          **metrics, "grad_norm": None if grad_norm is None else grad_norm.item(),
                          "img_s": seen / (now - tick), "cpu_s": time.process_time() - cpu_tick,
                          "peak_mem_mb": memory.peak_mb(),
                          "unreadable": round(ranks.mean([unreadable])[0] * ranks.world)}
                seen, tick, cpu_tick = 0, now, time.process_time()
                summary.last = record
                bar.set_postfix(loss=f"{record['loss']:.4f}", step=done, refresh=False)
                if ranks.main:
                    run_dir.append_log(out, record)
            if done % options.save_every == 0 or done == total:
                if ranks.main:
                    run_dir.save_checkpoint(out, checkpoint_state(trainee, optimizer, scaler, settings, plan, done, unreadable))
                ranks.barrier()
                if after_save is not None:
                    after_save(done)
    finally:
        bar.close()
    summary.seconds = time.perf_counter() - began
    if ranks.main:
        records = run_dir.read_log(out)
        if records:
            write_atomic(out / run_dir.PLOT_FILE, log_plot(records))
    return summary


def checkpoint_state(trainee: Trainee, optimizer, scaler, settings: FinetuneSettings, plan: Plan, step: int,
                     unreadable: int) -> dict:
    """The HierAmp trainer file form (trainer -> var_wo_ddp, class_head included) plus what a rerun
    needs to continue exactly: optimiser, scaler, step, epoch, RNG, data position, settings."""
    var_opt = {"optimizer": optimizer.state_dict(), **({"scaler": scaler.state_dict()} if scaler is not None else {})}
    epoch, position = divmod(step, plan.steps_per_epoch)
    state = var_wo_ddp_state(trainee.var, trainee.class_head)
    return {"trainer": {"var_wo_ddp": {k: v.detach().cpu() for k, v in state.items()}, "var_opt": var_opt},
            "step": step, "epoch": epoch, "iter": position, "rng": torch.get_rng_state(),
            "data": {"epoch": epoch, "batch_in_epoch": position, "images": plan.num_images, "unreadable": unreadable},
            "settings": settings.to_json()}


def resume(ckpt: dict, trainee: Trainee, optimizer, scaler) -> tuple:
    """Load a checkpoint's weights, optimiser, scaler and RNG; returns (step, unreadable images so far)."""
    state = ckpt["trainer"]["var_wo_ddp"]
    trainee.var.load_state_dict({k: v for k, v in state.items() if not k.startswith("class_head.")})
    if trainee.class_head is not None:
        trainee.class_head.load_state_dict({"weight": state["class_head.weight"], "bias": state["class_head.bias"]})
    optimizer.load_state_dict(ckpt["trainer"]["var_opt"]["optimizer"])
    if scaler is not None:
        scaler.load_state_dict(ckpt["trainer"]["var_opt"]["scaler"])
    torch.set_rng_state(ckpt["rng"])
    return ckpt["step"], ckpt["data"]["unreadable"]


def init_distributed(device: str) -> Ranks:
    """torchrun's processes join one group (NCCL on GPUs, gloo on the CPU); a single process stays alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        on_gpu = torch.device(device).type == "cuda"
        if on_gpu:
            torch.cuda.set_device(torch.device(device))                  # NCCL's communicators on this rank's GPU
        dist.init_process_group("nccl" if on_gpu else "gloo")
    return current_ranks()
