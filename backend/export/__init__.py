"""Exports of a completed run, each loaded back and checked against its fp32 source before it is kept.

- exporter.py   export_run (the checks, the folder, the zip, the Artifact row), list_exports, formats_for
- formats.py    writes one format and measures it; one module per format family:
  int8.py (torch.ao dynamic int8), onnx.py (torch.onnx + onnxruntime), gguf.py (llama.cpp / Ollama)
- sources.py    the fp32 source: a run's model with LoRA merged, its tokenizer, the check inputs
- verify.py     the figures (size, latency, logit difference, accuracy, greedy agreement) and tolerances
- card.py, hub.py   the model card every export carries; the push to the Hugging Face Hub
"""

from backend.export.exporter import FORMATS, export_run, formats_for, list_exports

__all__ = ["FORMATS", "export_run", "formats_for", "list_exports"]
