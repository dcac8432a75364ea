"""Caps that keep a shared server alive: architecture sizes, real-run input size, memory budget.

Shape-only traces run on the meta device and stay allowed at any input size the configuration
accepts; the input-size cap and the memory guard apply only before a real forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from typing import TYPE_CHECKING

from ..model.config import Config
from ..formatting import shape_bytes

if TYPE_CHECKING:  # imported for annotations only: the caps load without torch
    from ..shapes.tracing import Trace


class LimitError(ValueError):
    """A request above a serving cap; the message names the value and the cap."""


@dataclass(frozen=True)
class Limits:
    max_width: int = 2048  # channels of any stage, the stem or the FPN
    max_blocks: int = 16  # per stage
    max_run_input: int = 2048  # height and width of a real forward (traces may go to 8192)
    max_run_batch: int = 4
    memory_budget: int = 8 * 2**30  # bytes for parameters + activations of one forward

    @classmethod
    def from_env(cls) -> "Limits":
        """Defaults, with ``RESFPN_MEMORY_BUDGET_MB`` overriding the memory budget."""
        budget = os.environ.get("RESFPN_MEMORY_BUDGET_MB")
        if budget is None:
            return cls()
        try:
            return cls(memory_budget=int(float(budget) * 2**20))
        except ValueError:
            raise LimitError(f"RESFPN_MEMORY_BUDGET_MB={budget!r}: expected a number of MiB") from None

    def allows(self, config: Config) -> bool:
        """Whether ``config``'s widths and depths are within the caps (``check_architecture`` says why not)."""
        try:
            self.check_architecture(config)
        except LimitError:
            return False
        return True

    def check_architecture(self, config: Config) -> None:
        """Refuse widths and depths above the caps (for traces and runs alike)."""
        for i, w in enumerate(config.widths):
            if w > self.max_width:
                raise LimitError(f"layer{i + 1} width {w} is above this server's cap of {self.max_width} channels")
        for name in ("stem_width", "fpn_width"):
            value = getattr(config, name)
            if value > self.max_width:
                raise LimitError(f"{name} {value} is above this server's cap of {self.max_width} channels")
        for i, b in enumerate(config.blocks):
            if b > self.max_blocks:
                raise LimitError(f"layer{i + 1} has {b} blocks; this server's cap is {self.max_blocks} per stage")

    def check_run(self, t: Trace) -> int:
        """Refuse a real forward above the input cap or the memory budget; returns the estimate in bytes."""
        c = t.config
        self.check_architecture(c)
        if max(c.input_height, c.input_width) > self.max_run_input:
            raise LimitError(
                f"input {c.input_height}×{c.input_width} is above this server's cap of {self.max_run_input} "
                f"pixels a side for a real run (shape-only traces go up to 8192)"
            )
        if c.batch > self.max_run_batch:
            raise LimitError(f"batch {c.batch} is above this server's cap of {self.max_run_batch} for a real run")
        estimate = memory_estimate(t)
        if estimate > self.memory_budget:
            raise LimitError(
                f"this run would need about {estimate / 2**20:,.0f} MiB (parameters + activations, from the shape "
                f"trace), above this server's budget of {self.memory_budget / 2**20:,.0f} MiB; use a smaller input "
                f"or narrower widths"
            )
        return estimate

    def check_backward(self, t: Trace) -> int:
        """Like ``check_run``, for a forward with autograd and one input-gradient backward (the
        effective receptive field); returns the estimate in bytes."""
        self.check_run(t)
        estimate = backward_memory_estimate(t)
        if estimate > self.memory_budget:
            raise LimitError(
                f"the effective receptive field at {t.config.input_height}×{t.config.input_width} would need about "
                f"{estimate / 2**20:,.0f} MiB (a forward that keeps its activations for the backward pass), above "
                f"this server's budget of {self.memory_budget / 2**20:,.0f} MiB; use a smaller input or narrower widths"
            )
        return estimate


def serving_overhead(t: Trace, image_pixels: int = 0) -> int:
    """Bytes a served run needs beside the forward (``memory_estimate``), which the guard adds to it.

    The decoded upload (up to 8 bytes a pixel while Pillow converts it to RGB), the statistics'
    temporaries (up to four copies of the largest level: x², x == 0, the page's channel reductions),
    the returned float32 levels when the forward ran in bf16 (``.float()`` copies them): all levels
    once more, and what the packed CPU model (``resfpn.serving.fastpath``) holds beyond the parameters: every
    conv's weight twice more (its dense copy for the plain kernel beside the oneDNN-packed one, which
    the parameters count once), each Winograd-eligible conv's Winograd weight (EXPANSION× its weight),
    one Winograd call's buffers (``resfpn.serving.winograd.WORKSPACE_BYTES``), and while kernels are chosen
    a second output of the largest conv (the fastest candidate's output is kept while the next runs).
    """
    from . import winograd  # imports torch: only when a run is being admitted

    convs = [m for m in t.modules if m.kind == "conv" and m.out_shape is not None]
    wide = sum(m.params for m in convs if m.kernel == 3 and m.stride == 1
               and winograd.wide_enough(m.in_shape[1], m.out_shape[1]))
    choosing = max((shape_bytes(m.out_shape) for m in convs), default=0)
    packed = 4 * 2 * sum(m.params for m in convs) + 4 * wide * winograd.EXPANSION + winograd.WORKSPACE_BYTES
    largest = max(t.activation_bytes["levels"].values(), default=0)
    return 8 * image_pixels + 4 * largest + sum(t.activation_bytes["levels"].values()) + packed + choosing


def backward_memory_estimate(t: Trace) -> int:
    """Bytes a float32 forward + input-gradient backward needs: ``memory_estimate`` plus what autograd
    saves (conv and BN inputs, ReLU outputs, max-pool inputs and int64 indices) and three gradient
    buffers of the largest tensor. An upper bound: tensors autograd shares are counted once per user."""
    saved, largest = 0, 0
    for m in t.modules:
        if m.out_shape is None:
            continue
        if m.kind in ("conv", "bn"):
            saved += shape_bytes(m.in_shape)
        elif m.kind == "relu":
            saved += shape_bytes(m.out_shape)
        elif m.kind == "maxpool":
            saved += shape_bytes(m.in_shape) + 2 * shape_bytes(m.out_shape)
        largest = max(largest, shape_bytes(m.out_shape))
    return memory_estimate(t) + saved + 3 * largest


def memory_estimate(t: Trace) -> int:
    """Bytes a float32 forward needs: parameters, the input, and the trace's activation peak estimate."""
    c = t.config
    input_bytes = 4 * c.batch * c.input_channels * c.input_height * c.input_width
    return 4 * t.params.total + input_bytes + t.activation_bytes["peak_estimate"]
