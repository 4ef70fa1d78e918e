"""Why a run ended badly, in words a person can act on: exceptions, exit codes, out-of-memory.

The worker calls `explain_exception` on any exception; the supervisor calls `explain_exit` when a
worker process ends without writing its outcome (killed, crashed, out of memory).
"""

from __future__ import annotations

import signal

OOM_ADVICE = (
    "Out of memory: lower the batch size (raise gradient accumulation to keep the effective batch), "
    "lower the cutoff length, use LoRA instead of full fine-tuning, or turn on gradient checkpointing."
)
OOM_MARKERS = ("out of memory", "outofmemoryerror", "cannot allocate memory", "can't allocate memory")


def is_out_of_memory(error: BaseException | str) -> bool:
    """torch.OutOfMemoryError, MemoryError, or a message saying memory ran out (CUDA, MPS, the allocator)."""
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, BaseException):
        names = {cls.__name__ for cls in type(error).__mro__}
        if "OutOfMemoryError" in names:
            return True
        error = f"{type(error).__name__}: {error}"
    text = error.lower()
    return any(marker in text for marker in OOM_MARKERS)


def explain_exception(error: BaseException) -> str:
    """The run's reason: the exception, led by what to change when memory ran out."""
    message = f"{type(error).__name__}: {error}".strip()
    return f"{OOM_ADVICE}\n{message}" if is_out_of_memory(error) else message


def explain_exit(code: int | None) -> str:
    """A worker ended without recording its outcome: say how, from its exit code if we know it."""
    if code is None:
        return "the worker process is gone (it ended while no supervisor was watching)"
    if code == -signal.SIGKILL:
        return (
            "the worker process was killed (SIGKILL): usually the system's out-of-memory killer, or a kill -9. "
            + OOM_ADVICE
        )
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process was stopped by {name}"
    return f"the worker process exited with code {code} without recording a result"
