"""The TensorRT backend: runs the engines of an engine directory (`hieramp build`) on a CUDA GPU.

Before anything runs, the engine manifest is checked against the model, this TensorRT, this GPU
and the export the engines came from; a mismatch is refused with the reason, or rebuilt from the
export with `rebuild=True`. Everything a batch size needs (KV caches, I/O buffers, execution
contexts, their scratch memory) is allocated once per built batch size; a smaller batch runs
padded to the next built size, so that every optimization profile has exactly one execution
context. Each scale's step, sampling and VQ update, and the decoder, are captured as CUDA graphs
after one eager run and replayed from then on. The update and the decoder run one image at a
time, as in the other backends.

Letters as in model/var.py. Needs a CUDA GPU: nothing here runs on a CPU-only machine.
"""
import torch

from ... import trt_import
from ...engine.manifest import describe_gpu
from ...engine.rebuild import open_engines
from ...engine.runner import CapturedWork, Engine, aligned_rows
from ...errors import UserError
from ...export.graphs import (BETA, BLOCK_MODS, CFG_T, CONDITION, DECODE, F_HAT, F_HAT_OUT, HEAD_MOD, IDS, IMAGES, LABELS,
                              LOGITS, NEW, NOISE, PAST_LEN, RHO, SAMPLE, SCALE, SOS, STEP, TOKENS, TOP_K, TOP_P, UPDATE,
                              cache_feeds, cache_names, guidance_rows, step_scalars, write_new_keys)
from ...export.manifest import check_amp_plan
from ...export.sample_graph import TOPK_LIMIT, candidates
from ...model.kv_cache import KVCache
from .base import Backend


def cuda_device(device) -> torch.device:
    device = torch.device(device)
    if device.type != "cuda":
        raise UserError(f"the tensorrt backend runs on a CUDA GPU, not {device}: pass --device cuda")
    if not torch.cuda.is_available():
        raise UserError("the tensorrt backend needs a CUDA GPU and torch sees none here; "
                        "run `hieramp doctor` to see what is usable")
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


class _Batch:
    """What one built batch size B needs, allocated once: caches, I/O buffers, contexts and their
    scratch memory, and the captured work of every scale, which it owns. Runs of fewer images
    use the first rows; the others hold padding."""

    def __init__(self, backend, B: int):
        self.backend = backend
        cfg, dev = backend.cfg, backend.device
        S, m = cfg.num_scales, backend.manifest
        self.B = B
        contexts = [(backend.condition, m.profile(CONDITION, B))]
        contexts += [(backend.step_engine, m.profile(STEP, B, s)) for s in range(S)]
        contexts += [(backend.sample_engine, m.profile(SAMPLE, B, s)) for s in range(S)]
        # One scratch buffer for every context of this batch size: they run one after the other.
        self.scratch = torch.empty(max(e.scratch_bytes(p) for e, p in contexts), dtype=torch.uint8, device=dev)
        condition_ctx, step_ctx, sample_ctx = contexts[0], contexts[1:S + 1], contexts[S + 1:]
        self.condition_ctx = backend.condition.context(condition_ctx[1], self.scratch)
        self.step_ctx = [e.context(p, self.scratch) for e, p in step_ctx]
        self.sample_ctx = [e.context(p, self.scratch) for e, p in sample_ctx]

        self.labels = torch.zeros(B, dtype=torch.int64, device=dev)
        self.cond = backend.condition.bind(self.condition_ctx, {LABELS: self.labels})  # block_mods, head_mod, sos
        dtype = backend.step_engine.dtype(TOKENS)
        self.cache = KVCache.for_model(cfg, 2 * B, dtype, dev)
        self.tokens = [self.cond[SOS]] + [torch.empty(2 * B, pn * pn, cfg.embed_dim, dtype=dtype, device=dev)
                                          for pn in cfg.patch_nums[1:]]                  # (2B, n, C) per scale
        self.ids = [torch.zeros(B, pn * pn, dtype=torch.int64, device=dev) for pn in cfg.patch_nums]
        self.noise = [torch.zeros(B, pn * pn, dtype=torch.float32, device=dev) for pn in cfg.patch_nums]
        self.beta, self.rho, self.cfg_t, self.top_p = (
            [torch.zeros((), dtype=torch.float32, device=dev) for _ in range(S)] for _ in range(4))
        H, D, n_last = cfg.num_heads, cfg.head_dim, cfg.patch_nums[-1] ** 2
        self.new_kv = [torch.empty(2 * B * H * n_last * D, dtype=dtype, device=dev) for _ in range(2 * cfg.depth)]
        self.step_io = [self._bind_step(backend, s) for s in range(S)]                  # (inputs, outputs)
        self.logits = [outputs[LOGITS] for _, outputs in self.step_io]                   # (B, n, V) float32
        self.step_work = [CapturedWork(self._step_work(s), backend.cuda_graphs) for s in range(S)]
        self._sample_work = {}                         # (scale, K) -> CapturedWork, made on first use

        # One image at a time through batch-1 engines: rows start at aligned addresses.
        side, Cv, size = cfg.patch_nums[-1], cfg.vae.Cvae, cfg.vae.image_size
        self.f_hat = [aligned_rows(B, (Cv, side, side), dtype, dev) for _ in range(2)]  # ping-pong (B, Cv, side, side)
        self.image_ids = [aligned_rows(B, (pn * pn,), torch.int64, dev) for pn in cfg.patch_nums]
        self.image_tokens = [aligned_rows(B, (2, pn * pn, cfg.embed_dim), dtype, dev) for pn in cfg.patch_nums[1:]]
        self.images = aligned_rows(B, (3, size, size), torch.float32, dev)
        self.update_work = [CapturedWork(self._update_work(s), backend.cuda_graphs) for s in range(S)]
        self.decode_work = CapturedWork(self._decode_work(), backend.cuda_graphs)

    def _bind_step(self, backend, s: int):
        """Bind scale s's context once (its buffers never move); its new keys and values go to
        views of one buffer per block that every scale reuses (they are copied into the cache
        right away). Returns the inputs (the host past_len must stay alive) and the outputs."""
        cfg, B = backend.cfg, self.B
        H, D, n = cfg.num_heads, cfg.head_dim, cfg.patch_nums[s] ** 2
        names = cache_names(cfg.depth, NEW)
        new = {name: buf[:2 * B * H * n * D].view(2 * B, H, n, D) for name, buf in zip(names, self.new_kv)}
        inputs = {TOKENS: self.tokens[s], BLOCK_MODS: self.cond[BLOCK_MODS], HEAD_MOD: self.cond[HEAD_MOD],
                  SCALE: torch.tensor(s, device=backend.device), PAST_LEN: torch.tensor(cfg.scale_offsets[s]),
                  BETA: self.beta[s], RHO: self.rho[s], CFG_T: self.cfg_t[s], **cache_feeds(self.cache)}
        return inputs, backend.step_engine.bind(self.step_ctx[s], inputs, new)

    def _step_work(self, s: int):
        backend, (_, new) = self.backend, self.step_io[s]
        new_kv = [new[name] for name in cache_names(backend.cfg.depth, NEW)]            # (2B, H, n, D) each

        def work():
            backend.step_engine.run(self.step_ctx[s])
            write_new_keys(self.cache, backend.cfg.scale_offsets[s], new_kv)
        return work

    def _update_work(self, s: int):
        backend = self.backend
        engine, ctx = backend.update_engines[s], backend.update_ctx[s]
        f_in, f_out = self.f_hat[s % 2], self.f_hat[(s + 1) % 2]
        last = s == backend.cfg.num_scales - 1

        def work():
            self.image_ids[s].copy_(self.ids[s])
            for i in range(self.B):
                outputs = {F_HAT_OUT: f_out[i:i + 1]}
                if not last:
                    outputs[TOKENS] = self.image_tokens[s][i]                                    # (2, n', C)
                engine.bind(ctx, {IDS: self.image_ids[s][i:i + 1], F_HAT: f_in[i:i + 1]}, outputs)
                engine.run(ctx)
            if not last:
                guidance_rows(self.image_tokens[s], out=self.tokens[s + 1])
        return work

    def _decode_work(self):
        engine, ctx = self.backend.decode_engine, self.backend.decode_ctx
        f_hat = self.f_hat[self.backend.cfg.num_scales % 2]

        def work():
            for i in range(self.B):
                engine.bind(ctx, {F_HAT: f_hat[i:i + 1]}, {IMAGES: self.images[i:i + 1]})
                engine.run(ctx)
        return work

    def sample_work(self, s: int, K: int) -> CapturedWork:
        """Scale s's sampling with K candidates (K is a shape input: one captured work per K)."""
        if (s, K) not in self._sample_work:
            engine, ctx = self.backend.sample_engine, self.sample_ctx[s]
            inputs = {LOGITS: self.logits[s], NOISE: self.noise[s], TOP_K: torch.tensor(K), TOP_P: self.top_p[s]}

            def work():
                engine.bind(ctx, inputs, {IDS: self.ids[s]})
                engine.run(ctx)
            self._sample_work[s, K] = CapturedWork(work, self.backend.cuda_graphs)
        return self._sample_work[s, K]


class TensorRTBackend(Backend):
    name = "tensorrt"

    @classmethod
    def unavailable(cls, device):
        if torch.device(device).type != "cuda":
            return f"the tensorrt backend runs on a CUDA GPU, not {device}"
        try:
            trt_import.load()
        except UserError as err:
            return str(err)
        return None

    def __init__(self, model, device="cuda", engine_dir=None, rebuild=False, precision=None, cuda_graphs=True):
        """`rebuild`: rebuild engines that do not fit (another TensorRT, GPU, precision or export)
        from their export instead of refusing them (`engine.rebuild`). `precision`: refuse (or
        rebuild) engines of another precision. `cuda_graphs`: capture each scale's work (False:
        enqueue every time)."""
        if engine_dir is None:
            raise UserError("the tensorrt backend runs engines: pass engine_dir (made by `hieramp build`)")
        device = cuda_device(device)
        torch.cuda.set_device(device)
        manifest, tensorrt = open_engines(engine_dir, model, describe_gpu(device), rebuild, precision)
        super().__init__(model.cfg, device, None)       # dtypes come from the engines, per tensor
        self.manifest, self.artifact_id = manifest, manifest.artifact_id
        self.precision = manifest.precision
        self.cuda_graphs = cuda_graphs
        self.logger = tensorrt.module.Logger(tensorrt.module.Logger.ERROR)          # must outlive the runtime
        self.runtime = tensorrt.module.Runtime(self.logger)

        def load(name, scale=None):
            return Engine(tensorrt, self.runtime, manifest.engine(name, scale))

        self.condition, self.step_engine, self.sample_engine = load(CONDITION), load(STEP), load(SAMPLE)
        self.update_engines = [load(UPDATE, s) for s in range(self.cfg.num_scales)]
        self.decode_engine = load(DECODE)
        per_image = self.update_engines + [self.decode_engine]
        self.image_scratch = torch.empty(max(e.scratch_bytes(0) for e in per_image), dtype=torch.uint8,
                                         device=self.device)
        self.update_ctx = [e.context(0, self.image_scratch) for e in self.update_engines]
        self.decode_ctx = self.decode_engine.context(0, self.image_scratch)
        self.scale_of_n = {pn * pn: s for s, pn in enumerate(self.cfg.patch_nums)}
        self._batches = {}

    # ----- the steps of the scale loop ------------------------------------------------------

    def check(self, batch_size, plan):
        check_amp_plan(self.manifest, plan, f"engine directory {self.manifest.directory}", "export and build")
        self.manifest.batch_size_for(batch_size)

    @torch.no_grad()
    def begin(self, labels_B, plan):
        self.check(len(labels_B), plan)
        self.rows = len(labels_B)
        B = self.manifest.batch_size_for(self.rows)
        if B not in self._batches:
            self._batches[B] = _Batch(self, B)
        self.batch = self._batches[B]
        self.batch.labels.zero_()
        _into(self.batch.labels, torch.as_tensor(labels_B, dtype=torch.int64))
        self.condition.run(self.batch.condition_ctx)
        self.plan = plan

    def empty_fhat(self, batch):
        return self.batch.f_hat[0].zero_()                                              # all B rows

    @torch.no_grad()
    def step(self, si, feats, beta, rho, t):
        b, n = self.batch, self.cfg.patch_nums[si] ** 2
        if si > 0 and feats.data_ptr() != b.tokens[si].data_ptr():
            raise ValueError("step() takes the features that update() returned")
        scalars = step_scalars(self.plan, self.manifest.amp_mode, si, n, beta, rho, t)
        b.beta[si].fill_(float(scalars[BETA]))
        b.rho[si].fill_(float(scalars[RHO]))
        b.cfg_t[si].fill_(float(scalars[CFG_T]))
        b.step_work[si]()
        return b.logits[si][:self.rows]                                                  # (B, n, V)

    @torch.no_grad()
    def sample(self, logits, noise, top_k, top_p):
        b, s = self.batch, self.scale_of_n[logits.shape[1]]
        _into(b.logits[s], logits)
        _into(b.noise[s], noise)
        b.top_p[s].fill_(float(top_p))
        b.sample_work(s, candidates(top_k, self.cfg.vae.vocab_size, TOPK_LIMIT))()
        return b.ids[s][:self.rows]                                                      # (B, n) int64

    @torch.no_grad()
    def update(self, si, ids, f_hat):
        b = self.batch
        _into(b.ids[si], ids)
        _into(b.f_hat[si % 2], f_hat)
        b.update_work[si]()
        last = si == self.cfg.num_scales - 1
        return b.f_hat[(si + 1) % 2], None if last else b.tokens[si + 1]                # all B rows

    @torch.no_grad()
    def decode(self, f_hat):
        b = self.batch
        _into(b.f_hat[self.cfg.num_scales % 2], f_hat)
        b.decode_work()
        return b.images[:self.rows]                                                      # (B, 3, H, W) float32


def _into(buffer: torch.Tensor, tensor: torch.Tensor):
    """Copy into the first rows of a static buffer, unless the tensor already is those rows."""
    rows = buffer[:len(tensor)]
    if tensor.data_ptr() != rows.data_ptr() or tensor.shape != rows.shape:
        rows.copy_(tensor)
