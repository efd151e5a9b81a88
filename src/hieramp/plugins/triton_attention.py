"""Triton kernel for the `TopKBiasAttention` op (docs/design.md, "The amplification op").

One launch, grid (B * H, cdiv(Lq, BLOCK_M)). Each program owns BLOCK_M query rows of one
(batch, head) and first recomputes its batch element's saliency over all heads (H * n dot
products per program: no program waits for another, at the price of re-reading the H heads'
spatial keys). The top-k indicator comes from a bisection on the float32 bits of the saliency
(non-negative floats order like their bit patterns) plus a prefix count that breaks ties towards
the lower index. Then an online softmax runs over the scale's own keys (bias or weight factor
from the indicator) and the P cached keys (hidden from the class row).

Inputs float32/float16/bfloat16, output float32 like the reference. Sums are float32; the dots
run on tensor cores at float32 accuracy (float16 natively, float32 and bfloat16 as 3xTF32).
On CPU tensors the kernel runs in Triton's interpreter: set TRITON_INTERPRET=1 before importing
triton.
"""
import torch
import triton
import triton.language as tl

from hieramp.model.amp_op import MODES

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
HEAD_DIMS = (16, 32, 64, 128)
N_MAX = 256  # VAR's largest scale at 256 px: one compiled kernel serves every scale up to it


@triton.jit(do_not_specialize=["H", "n", "P"])  # one binary for every scale, like the AOT cubin
def topk_bias_attention_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, beta_ptr, rho_ptr,
    H, n, P,
    SCALE: tl.constexpr, MODE: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, N_MAX: tl.constexpr,
):
    """o = TopKBiasAttention(q, k, v, beta, rho); contiguous q (B, H, n+1, D), k/v (B, H, P+n+1, D).

    beta and rho are read from device scalars (any float dtype; k_sel in float64 like the
    reference). The saliency and the indicator live in an (N_MAX // BLOCK_N, BLOCK_N) tile
    whose row c holds the scale's keys c * BLOCK_N ... (c + 1) * BLOCK_N - 1, so the key loop
    picks its chunk with a masked sum (0 past n, the class key included). Needs N_MAX >= n.
    """
    pid_bh = tl.program_id(0)
    pid_m = tl.program_id(1)
    b = pid_bh // H
    Lq = n + 1
    Lk = P + Lq
    offs_d = tl.arange(0, HEAD_DIM)
    offs_n = tl.arange(0, BLOCK_N)
    chunks = tl.arange(0, N_MAX // BLOCK_N)[:, None]
    spatial = chunks * BLOCK_N + offs_n[None, :] < n

    # Saliency: mean over heads of the softmax of the class row's logits on the spatial keys.
    saliency = tl.zeros((N_MAX // BLOCK_N, BLOCK_N), tl.float32)
    for h in range(H):
        bh = (b * H + h).to(tl.int64)
        q_cls = tl.load(q_ptr + (bh * Lq + n) * HEAD_DIM + offs_d).to(tl.float32)
        k_own = k_ptr + (bh * Lk + P) * HEAD_DIM
        logits = tl.full((N_MAX // BLOCK_N, BLOCK_N), float("-inf"), tl.float32)
        for c in range(tl.cdiv(n, BLOCK_N)):
            j = c * BLOCK_N + offs_n
            k = tl.load(k_own + j[:, None] * HEAD_DIM + offs_d[None, :], mask=(j < n)[:, None], other=0.0)
            s = tl.where(j < n, tl.sum(k.to(tl.float32) * q_cls[None, :], 1) * SCALE, float("-inf"))
            logits = tl.where(chunks == c, s[None, :], logits)
        p = tl.exp(logits - tl.max(logits))
        saliency += p / tl.sum(p)
    saliency = saliency / H

    # Top-k: the k_sel-th largest saliency by bisection on its bits, ties to the lower index.
    rho = tl.load(rho_ptr).to(tl.float64)
    k_sel = tl.maximum(tl.floor(rho * n).to(tl.int32), 1)
    bits = tl.where(spatial, saliency.to(tl.int32, bitcast=True), -1)
    threshold = tl.zeros((), tl.int32)
    for bit in range(30, -1, -1):
        candidate = threshold | (1 << bit)
        threshold = tl.where(tl.sum((bits >= candidate).to(tl.int32)) >= k_sel, candidate, threshold)
    above = bits > threshold
    tied = (bits == threshold).to(tl.int32)
    ties_before = tl.reshape(tl.cumsum(tl.reshape(tied, (N_MAX, )), 0), (N_MAX // BLOCK_N, BLOCK_N)) - tied
    selected = above | ((tied != 0) & (ties_before < k_sel - tl.sum(above.to(tl.int32))))

    a = selected.to(tl.float32)
    beta = tl.load(beta_ptr).to(tl.float64)

    # Attention for this program's query rows of head pid_bh.
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    bh = pid_bh.to(tl.int64)
    # Dots on tensor cores at float32 accuracy. float16 runs as is (exact products, float32 sums)
    # with p split into float16 hi + lo. float32 and bfloat16 (exact in float32) run as 3xTF32:
    # x = hi + lo with hi = x truncated to TF32 (mask TF32), and each dot drops only lo * lo.
    DOT: tl.constexpr = tl.float16 if q_ptr.dtype.element_ty == tl.float16 else tl.float32
    TF32: tl.constexpr = 0xFFFFE000
    q_rows = (bh * Lq + offs_m[:, None]) * HEAD_DIM + offs_d[None, :]
    q = tl.load(q_ptr + q_rows, mask=(offs_m < Lq)[:, None], other=0.0).to(DOT)
    if DOT == tl.float32:
        q_hi = (q.to(tl.uint32, bitcast=True) & TF32).to(tl.float32, bitcast=True)
    k_base = k_ptr + bh * Lk * HEAD_DIM
    v_base = v_ptr + bh * Lk * HEAD_DIM
    acc = tl.zeros((BLOCK_M, HEAD_DIM), tl.float32)
    m_i = tl.full((BLOCK_M, ), float("-inf"), tl.float32)
    l_i = tl.zeros((BLOCK_M, ), tl.float32)
    # Key chunks: first the scale's own keys (n spatial, then the class key), so every row's
    # running maximum is finite before the cached keys, which the class row must not see.
    n_own = tl.cdiv(Lq, BLOCK_N)
    for c in range(n_own + tl.cdiv(P, BLOCK_N)):
        own = c < n_own
        j = tl.where(own, P + c * BLOCK_N, (c - n_own) * BLOCK_N) + offs_n
        valid = j < tl.where(own, Lk, P)
        k = tl.load(k_base + j[:, None] * HEAD_DIM + offs_d[None, :], mask=valid[:, None], other=0.0).to(DOT)
        v = tl.load(v_base + j[:, None] * HEAD_DIM + offs_d[None, :], mask=valid[:, None], other=0.0).to(DOT)
        a_j = tl.sum(tl.where(chunks == tl.where(own, c, -1), a, 0.0), 0)[None, :]  # 0 past n
        if DOT == tl.float32:
            k_hi = (k.to(tl.uint32, bitcast=True) & TF32).to(tl.float32, bitcast=True)
            s = tl.dot(q_hi, tl.trans(k_hi), tl.dot(q_hi, tl.trans(k - k_hi), tl.dot(q - q_hi, tl.trans(k_hi))))
        else:
            s = tl.dot(q, tl.trans(k))
        s *= SCALE
        if MODE == "logit":
            s += beta.to(tl.float32) * a_j
            factor = 1.0
        else:  # scales the weights after the softmax: the denominator l_i does not see it
            factor = 1.0 + (beta - 1.0).to(tl.float32) * a_j
        s = tl.where(valid[None, :] & (own | (offs_m != n)[:, None]), s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp(m_i - m_new)
        p = tl.exp(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        p *= factor
        if DOT == tl.float32:
            p_hi = (p.to(tl.uint32, bitcast=True) & TF32).to(tl.float32, bitcast=True)
            v_hi = (v.to(tl.uint32, bitcast=True) & TF32).to(tl.float32, bitcast=True)
            acc = tl.dot(p_hi, v_hi, tl.dot(p_hi, v - v_hi, tl.dot(p - p_hi, v_hi, acc * alpha[:, None])))
        else:
            p_hi = p.to(tl.float16)
            acc = tl.dot(p_hi, v, tl.dot((p - p_hi.to(tl.float32)).to(tl.float16), v, acc * alpha[:, None]))
        m_i = m_new
    o = acc / l_i[:, None]
    tl.store(o_ptr + q_rows, o, mask=(offs_m < Lq)[:, None])


# (float16?, head_dim) -> (BLOCK_M, BLOCK_N, num_warps), picked from a sweep so that ptxas spills
# nothing on sm_80 and sm_90 (benchmarks/kernel_resources.md). float32 and bfloat16 take smaller
# tiles: 3xTF32 keeps hi and lo parts of every operand in registers.
_TILES = {
    (True, 16): (32, 64, 4), (True, 32): (64, 64, 4), (True, 64): (32, 64, 4), (True, 128): (32, 64, 4),
    (False, 16): (64, 32, 4), (False, 32): (64, 32, 8), (False, 64): (32, 32, 4), (False, 128): (16, 32, 8),
}


def kernel_config(n_max: int, head_dim: int, dtype: torch.dtype) -> dict:
    """Constexprs and launch options for n <= n_max, shared by the launcher and the AOT compiler."""
    block_m, block_n, num_warps = _TILES[dtype == torch.float16, head_dim]
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, N_MAX=max(block_n, triton.next_power_of_2(n_max)),
                num_warps=num_warps, num_stages=2)


def _scalar(x, name: str, device) -> torch.Tensor:
    """A Python number (kept in float64) or a one-element tensor, as a 0-d tensor on `device`."""
    if isinstance(x, torch.Tensor):
        if x.numel() != 1 or x.is_complex():
            raise ValueError(f"{name} must be a one-element real tensor, got {x.dtype} of shape {tuple(x.shape)}")
        return x.reshape(()).to(device)
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return torch.tensor(float(x), dtype=torch.float64, device=device)
    raise ValueError(f"{name} must be a number or a one-element tensor, got {type(x).__name__}")


def _check(q, k, v, mode):
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"{name} must be a 4-D tensor (B, H, L, D), got {getattr(t, 'shape', type(t))}")
        if t.dtype not in DTYPES:
            raise ValueError(f"{name} has dtype {t.dtype}; supported: {DTYPES}")
        if t.device != q.device:
            raise ValueError(f"{name} is on {t.device}, q on {q.device}")
    B, H, Lq, D = q.shape
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if Lq < 2:
        raise ValueError(f"q must hold n >= 1 spatial queries and the class query, got Lq = {Lq}")
    if D not in HEAD_DIMS:
        raise ValueError(f"head dim must be a power of two in {HEAD_DIMS}, got {D}")
    if k.shape[:2] != (B, H) or k.shape[-1] != D or k.shape[-2] < Lq:
        raise ValueError(f"k must be (B, H, P + Lq, D) = ({B}, {H}, P + {Lq}, {D}), got {tuple(k.shape)}")
    if v.shape != k.shape:
        raise ValueError(f"v must have the shape of k {tuple(k.shape)}, got {tuple(v.shape)}")
    if q.device.type != "cuda" and isinstance(topk_bias_attention_kernel, triton.runtime.JITFunction):
        raise ValueError(f"tensors on {q.device} need TRITON_INTERPRET=1 set before triton is imported")


def topk_bias_attention(q, k, v, beta, rho, softmax_scale, mode="logit"):
    """TopKBiasAttention with the reference's signature; output float32 (B, H, Lq, D).

    q (B, H, n + 1, D), k and v (B, H, P + n + 1, D), float32/float16/bfloat16, D in HEAD_DIMS.
    beta and rho: numbers (sent to the device as float64, like the reference's float(rho)) or
    one-element tensors, read on the device: pass device tensors to avoid a copy per call.
    """
    _check(q, k, v, mode)
    B, H, Lq, D = q.shape
    n, P = Lq - 1, k.shape[-2] - Lq
    q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
    out = torch.empty(q.shape, dtype=torch.float32, device=q.device)
    config = kernel_config(max(n, N_MAX), D, q.dtype)
    grid = (B * H, triton.cdiv(Lq, config["BLOCK_M"]))
    topk_bias_attention_kernel[grid](
        q, k, v, out, _scalar(beta, "beta", q.device), _scalar(rho, "rho", q.device), H, n, P,
        SCALE=float(softmax_scale), MODE=mode, HEAD_DIM=D, **config)
    return out
