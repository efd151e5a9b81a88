"""Static KV cache: per block, K and V buffers allocated once and written in place by scale offset."""
import torch


class KVCache:
    """Buffers (2B, H, L + 1, D) per block: L spatial tokens plus one slot for the current scale's
    class-token key, which sits right after the scale's spatial keys and is overwritten by the
    next scale (class-token K/V are never kept)."""

    def __init__(self, depth, batch, num_heads, seq_len, head_dim, dtype, device):
        shape = (batch, num_heads, seq_len + 1, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(depth)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(depth)]

    @classmethod
    def for_model(cls, cfg, batch, dtype, device):
        return cls(cfg.depth, batch, cfg.num_heads, cfg.seq_len, cfg.head_dim, dtype, device)

    def attend(self, layer, offset, attention):
        """An `attend(q, k, v, softmax_scale)` for one block at softmax_scale offset P: writes the new keys and
        values at P and attends over the cache's first P + Lq positions (views, no copies)."""
        def attend(q, k, v, softmax_scale):
            end = offset + k.shape[2]
            self.k[layer][:, :, offset:end] = k
            self.v[layer][:, :, offset:end] = v
            out = attention(q, self.k[layer][:, :, :end], self.v[layer][:, :, :end], softmax_scale)
            return out.to(q.dtype)
        return attend
