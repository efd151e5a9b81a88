"""Triton kernel(s) for the fused amplification op, their ahead-of-time compilation, and the
TensorRT plugin `hieramp::TopKBiasAttention`. Importing this package registers nothing: the
engine builder registers the plugin (`trt_plugin.register_if_available`) when it needs it.

`topk_bias_attention` is imported on first use: triton is optional, and TRITON_INTERPRET (CPU
runs) must be set before triton is first imported.
"""
__all__ = ["topk_bias_attention"]


def __getattr__(name):
    if name == "topk_bias_attention":
        from .triton_attention import topk_bias_attention
        return topk_bias_attention
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
