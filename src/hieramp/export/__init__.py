"""torch -> ONNX: the step graph with KV-cache inputs and outputs, the amplification op as a
`hieramp::TopKBiasAttention` node, sampling, VQ update and decoder graphs, and manifest.json."""
from .exporter import export_model
from .manifest import ExportManifest

__all__ = ["ExportManifest", "export_model"]
