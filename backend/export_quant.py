"""`backend.export_quant.load_int8`: the earlier name named in the model cards of int8 exports made before
backend/ became packages. The loader lives in backend/export/int8.py."""

from backend.export.int8 import load_int8

__all__ = ["load_int8"]
