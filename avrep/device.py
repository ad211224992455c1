"""Device choice, in one place for every command and API: `resolve_device("auto" | "cpu" | "cuda" | "cuda:N")`.

A low module (`avrep.errors` only; torch is imported when a device is resolved, so the command line can
offer `DEVICES` without loading torch), so training, evaluation, embedding and the apps all resolve
`--device` the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from avrep.errors import AvrepError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")  # what `--device` offers; "cuda:N" picks one GPU


def resolve_device(pref: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """The torch device for a `--device` value.

    "auto" (or None) is CUDA when available, else the CPU; "cuda" without an index is GPU `local_rank`
    (the torchrun process's GPU). AvrepError for a name torch does not know, or CUDA where there is none.
    """
    import torch

    if isinstance(pref, torch.device):
        dev = pref
    else:
        name = "auto" if pref is None else str(pref).strip().lower()
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError):
            raise AvrepError(
                f"device {pref!r}: not a torch device (use auto, cpu, cuda or cuda:N)", param="device"
            ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise AvrepError(f"device {pref}: no CUDA device is available", param="device")
        if dev.index is None:
            dev = torch.device("cuda", local_rank)
    return dev


__all__ = ["DEVICES", "resolve_device"]
