"""Compare a backend with the PyTorch reference: the result objects behind `hieramp compare`.

Three runs on the same labels and seed:
1. the reference, sampling freely; its tokens become the forced path;
2. the backend on that forced path, so both see the same token history at every scale: the
   largest logit errors per scale (absolute and relative to the logit scale), the share of
   positions whose argmax token agrees, the amplified top-k sets of every op node, and the PSNR
   of the final images (the gated PSNR: numerics only);
3. the backend sampling freely: token agreement, and the PSNR of its images (reported: one
   token flipped by a rounding-level logit difference changes the rest of an image, which the
   token agreement already counts).

The amplified sets: both backends are asked to `record_amp_sets()` (the backend contract's
optional capability); after that `amp_indicators` holds, per step, the set of every op node (the
torch backend from each op call's inputs, in any precision; the onnxruntime backend from its
graph). A backend that cannot record is not compared on them.
Gates per precision: `Tolerances.for_precision`.

DiT (`compare_dit`) follows the same three runs with denoising steps in place of scales: the
guided noise prediction of every step on the reference's latent path, the object masks M the
backend derives from its own steps on that path, and the images.
"""
import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch
from tqdm import tqdm

from . import checks
from .model.amp_config import AmpConfig
from .model.dit.amp import DiTAmpConfig
from .model.dit.diffusion import DiTSampling, Sampler
from .model.sampling import SamplingParams
from .runtime.dit import DiTGenerator
from .runtime.generator import Generator


@dataclass(frozen=True)
class Tolerances:
    """Gates; None: reported, not gated. Defaults: exact parity (fp32)."""
    max_logit_error: Optional[float] = 1e-4      # absolute, per scale, on the forced path
    max_rel_logit_error: Optional[float] = None  # that error over the scale's largest |reference logit|
    min_argmax_agreement: float = 1.0            # share of forced-path positions (all scales) whose argmax agrees
    min_token_agreement: float = 1.0             # share of equal tokens in free sampling
    min_psnr_db: float = 40.0                    # every final image of the forced path
    min_amp_set_agreement: float = 1.0           # share of identical amplified sets (rows x op nodes x scales)

    def __post_init__(self):
        for gate, check in ((self.max_logit_error, checks.max_logit_error),
                            (self.max_rel_logit_error, checks.max_rel_logit_error)):
            if gate is not None:
                check(gate)
        checks.share("min argmax agreement")(self.min_argmax_agreement)
        checks.share("min token agreement")(self.min_token_agreement)
        checks.psnr(self.min_psnr_db)
        checks.share("min amp set agreement")(self.min_amp_set_agreement)

    @classmethod
    def for_precision(cls, precision: str) -> "Tolerances":
        """The calibrated gates of a precision (fp32, bf16, fp16, int8: PRECISION_TOLERANCES)."""
        return PRECISION_TOLERANCES[precision]


# Reduced precision: the logit error is gated relative to the logit scale (absolute errors grow
# with it) and free-sampling token agreement is reported, not gated (one flipped token changes
# the rest of an image). Each gate is the worst value measured on the tiny, digits and d16
# (random init) models, rounded away from it (benchmarks/results/precision-gates.md):
# bf16 (torch): rel 0.24 and argmax 98.3 % (digits), sets 93.1 % and PSNR 45.1 dB (d16);
# fp16 (ONNX export): rel 2.4e-3 (tiny), argmax 99.7 %, sets 97.2 % and PSNR 67.9 dB (d16); int8 (export --quantize): rel 0.33 and argmax 91.3 % (digits), sets 73.6 % (d16).
PRECISION_TOLERANCES = {
    "fp32": Tolerances(),
    "bf16": Tolerances(None, 0.3, 0.95, 0.0, 40.0, 0.9),
    "fp16": Tolerances(None, 1e-2, 0.99, 0.0, 40.0, 0.9),
    "int8": Tolerances(None, 0.4, 0.88, 0.0, 40.0, 0.7),
}


@dataclass
class ScaleReport:
    scale: int
    tokens: int                            # n, per image
    max_abs_error: float                   # logits, forced path
    max_rel_error: float                   # max_abs_error / the largest |reference logit|
    argmax_agreement: float                # forced path: share of positions with the same argmax token
    token_agreement: float                 # free sampling
    amp_set_agreement: Optional[float]     # None where nothing was amplified or compared


@dataclass(kw_only=True)
class _Verdict:
    """What both comparisons share: the run, the images' PSNRs, the failures, the verdict and JSON."""
    backend: str
    labels: list
    seed: int
    psnr_db: list                          # per image, forced path; inf for identical images
    free_psnr_db: list                     # per image, free sampling
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def _psnr_line(self) -> str:
        return (f"image PSNR min {min(self.psnr_db):.1f} dB on the forced path, {min(self.free_psnr_db):.1f} dB in free "
                f"sampling ({len(self.psnr_db)} images)")

    def _verdict_line(self) -> str:
        return "PASS" if self.passed else "FAIL: " + "; ".join(self.failures)

    def _check_psnr(self, min_psnr_db: float):
        worst = min(self.psnr_db)
        if worst < min_psnr_db:
            self.failures.append(f"image PSNR on the forced path {worst:.1f} dB < {min_psnr_db:g} dB")

    def to_dict(self) -> dict:
        """JSON-ready; an infinite PSNR (identical images) becomes null."""
        out = asdict(self)
        for key in ("psnr_db", "free_psnr_db"):
            out[key] = [None if math.isinf(p) else p for p in out[key]]
        out["passed"] = self.passed
        return out


@dataclass(kw_only=True)
class Comparison(_Verdict):
    scales: list
    token_agreement: float                 # free sampling, all positions
    argmax_agreement: float                # forced path, all positions
    amp_set_agreement: Optional[float]     # all amplified rows; None where nothing was compared
    amp_member_agreement: Optional[float]  # share of positions whose membership agrees, all amplified rows
    tolerances: Tolerances

    def table(self) -> str:
        lines = [f"{'scale':>5} {'n':>4} {'max |dlogit|':>13} {'rel':>9} {'argmax':>7} {'tokens':>7} {'amp sets':>8}"]
        for s in self.scales:
            sets = "-" if s.amp_set_agreement is None else f"{s.amp_set_agreement:.1%}"
            lines.append(f"{s.scale:>5} {s.tokens:>4} {s.max_abs_error:>13.3e} {s.max_rel_error:>9.2e} "
                         f"{s.argmax_agreement:>7.1%} {s.token_agreement:>7.1%} {sets:>8}")
        sets = "" if self.amp_set_agreement is None else \
            f"amplified sets {self.amp_set_agreement:.2%} equal ({self.amp_member_agreement:.3%} of memberships); "
        lines.append(f"argmax {self.argmax_agreement:.2%} equal on the forced path; {sets}"
                     f"tokens {self.token_agreement:.2%} equal in free sampling; {self._psnr_line()}")
        lines.append(self._verdict_line())
        return "\n".join(lines)


def psnr(a, b) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def compare(candidate: Generator, labels=(0, 1, 2, 3), seed=0, sampling: SamplingParams = SamplingParams(),
            amp: Optional[AmpConfig] = AmpConfig(), tolerances=Tolerances(), device="cpu", progress=True) -> Comparison:
    """Run the reference (torch, float32, on `device`) and `candidate` on the same inputs and compare them."""
    model = candidate.model
    reference = Generator(model, backend="torch", device=device)
    reference.backend.record_amp_sets()
    recording = candidate.backend.record_amp_sets()
    settings = dict(seed=seed, sampling=sampling, amp=amp)
    with tqdm(total=3, desc="compare", unit="run", disable=not progress) as bar:
        ref = reference.run(labels, return_logits=True, **settings)
        reference_sets = reference.backend.amp_indicators
        bar.update()
        forced = candidate.run(labels, forced_tokens=ref.tokens, return_logits=True, **settings)
        candidate_sets = candidate.backend.amp_indicators if recording else None
        bar.update()
        free = candidate.run(labels, **settings)
        bar.update()

    plan = amp.resolve(model.cfg) if amp is not None else None
    set_agreement, all_sets, members = _set_agreement(plan, reference_sets, candidate_sets, model.cfg.num_scales)
    scales = []
    for si, (r, f, rt, ft) in enumerate(zip(ref.logits, forced.logits, ref.tokens, free.tokens)):
        err = float((f - r).abs().max())
        scales.append(ScaleReport(si, r.shape[1], err, err / max(float(r.abs().max()), 1e-30),
                                  float((f.argmax(-1) == r.argmax(-1)).float().mean()),
                                  float((rt == ft).float().mean()), set_agreement.get(si)))
    result = Comparison(
        backend=candidate.backend.name, labels=[int(c) for c in labels], seed=seed, scales=scales,
        psnr_db=[psnr(a, b) for a, b in zip(ref.images, forced.images)],
        free_psnr_db=[psnr(a, b) for a, b in zip(ref.images, free.images)],
        token_agreement=_share_equal(ref.tokens, free.tokens),
        argmax_agreement=_share_equal([x.argmax(-1) for x in ref.logits], [x.argmax(-1) for x in forced.logits]),
        amp_set_agreement=all_sets, amp_member_agreement=members, tolerances=tolerances)
    result.failures = _failures(result)
    result._check_psnr(tolerances.min_psnr_db)
    return result


def _share_equal(a_list, b_list) -> float:
    return float(torch.cat([(a == b).flatten() for a, b in zip(a_list, b_list)]).float().mean())


def _set_agreement(plan, reference_sets, candidate_sets, num_scales):
    """Per amplified scale, and over all of them, the share of (row, op node) sets that are
    identical; and over all of them, the share of (row, op node, position) memberships that agree
    (a set that swaps one member at its boundary counts as unequal, but costs 2 of n memberships)."""
    if plan is None or not candidate_sets:
        return {}, None, None
    agreement, same_sets, same_members = {}, [], []
    for si in range(num_scales):
        if not plan.active(si):
            continue
        same = [reference_sets[si][layer].cpu() == candidate_sets[si][layer].cpu() for layer in plan.layers]  # (2B, n)
        sets = [m.all(dim=-1) for m in same]
        agreement[si] = float(torch.cat(sets).float().mean())
        same_sets += sets
        same_members += [m.flatten() for m in same]
    if not same_sets:
        return agreement, None, None
    return agreement, float(torch.cat(same_sets).float().mean()), float(torch.cat(same_members).float().mean())


def _failures(result: Comparison) -> list:
    tol = result.tolerances
    failures = []
    for s in result.scales:
        if tol.max_logit_error is not None and not s.max_abs_error <= tol.max_logit_error:
            failures.append(f"scale {s.scale}: logit error {s.max_abs_error:.3e} > {tol.max_logit_error:g}")
        if tol.max_rel_logit_error is not None and not s.max_rel_error <= tol.max_rel_logit_error:
            failures.append(f"scale {s.scale}: relative logit error {s.max_rel_error:.3e} > {tol.max_rel_logit_error:g}")
    if result.argmax_agreement < tol.min_argmax_agreement:
        failures.append(f"argmax agrees {result.argmax_agreement:.2%} < {tol.min_argmax_agreement:.2%} on the forced path")
    if result.amp_set_agreement is not None and result.amp_set_agreement < tol.min_amp_set_agreement:
        failures.append(f"amplified sets agree {result.amp_set_agreement:.2%} < {tol.min_amp_set_agreement:.2%}")
    if result.token_agreement < tol.min_token_agreement:
        failures.append(f"tokens agree {result.token_agreement:.2%} < {tol.min_token_agreement:.2%}")
    return failures


@dataclass(frozen=True)
class DiTTolerances:
    max_output_error: float = 1e-4       # absolute, per step, guided model output on the forced path
    min_mask_agreement: float = 1.0      # share of identical masks M (images x amplified steps), forced path
    min_psnr_db: float = 40.0            # every final image of the forced path


@dataclass
class StepReport:
    step: int
    timestep: int
    max_abs_error: float                   # guided model output, forced path
    max_rel_error: float                   # max_abs_error / the largest |reference output|
    mask_agreement: Optional[float]        # None where the step was not amplified


@dataclass(kw_only=True)
class DiTComparison(_Verdict):
    steps: list
    tolerances: DiTTolerances

    def table(self) -> str:
        lines = [f"{'step':>4} {'t':>4} {'max |dout|':>11} {'rel':>9} {'masks':>7}"]
        for s in self.steps:
            masks = "-" if s.mask_agreement is None else f"{s.mask_agreement:.1%}"
            lines.append(f"{s.step:>4} {s.timestep:>4} {s.max_abs_error:>11.3e} {s.max_rel_error:>9.2e} {masks:>7}")
        lines.append(self._psnr_line())
        lines.append(self._verdict_line())
        return "\n".join(lines)


def compare_dit(candidate: DiTGenerator, labels=(0, 1, 2, 3), seed=0, sampling=DiTSampling(steps=10),
                amp: Optional[DiTAmpConfig] = DiTAmpConfig(), tolerances=DiTTolerances(), device="cpu",
                progress=True) -> DiTComparison:
    """Run the DiT reference (torch on `device`) and `candidate` on the same inputs and compare them."""
    reference = DiTGenerator(candidate.model, backend="torch", device=device)
    run = dict(seed=seed, sampling=sampling, amp=amp, return_masks=True)
    with tqdm(total=3, desc="compare", unit="run", disable=not progress) as bar:
        ref = reference.run(labels, return_outputs=True, **run)
        bar.update()
        forced = candidate.run(labels, forced_latents=ref.inputs, return_outputs=True, **run)
        bar.update()
        free = candidate.run(labels, **run)
        bar.update()
    timesteps, steps = Sampler(sampling.sampler, sampling.steps).timestep, []
    for i, (r, f, rm, fm) in enumerate(zip(ref.outputs, forced.outputs, ref.masks, forced.masks)):
        err = float((f - r).abs().max())
        agreement = None if rm is None else float((rm == fm).all(dim=-1).float().mean())
        steps.append(StepReport(i, timesteps(i), err,
                                err / max(float(r.abs().max()), 1e-30), agreement))
    result = DiTComparison(
        backend=candidate.backend.name, labels=[int(c) for c in labels], seed=seed, steps=steps,
        psnr_db=[psnr(a, b) for a, b in zip(ref.images, forced.images)],
        free_psnr_db=[psnr(a, b) for a, b in zip(ref.images, free.images)], tolerances=tolerances)
    tol = result.tolerances
    for s in result.steps:
        if not s.max_abs_error <= tol.max_output_error:
            result.failures.append(f"step {s.step}: output error {s.max_abs_error:.3e} > {tol.max_output_error:g}")
        if s.mask_agreement is not None and s.mask_agreement < tol.min_mask_agreement:
            result.failures.append(f"step {s.step}: masks agree {s.mask_agreement:.1%} < {tol.min_mask_agreement:.1%}")
    result._check_psnr(tol.min_psnr_db)
    return result
