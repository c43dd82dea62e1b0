"""Replaying a shape-static function as a CUDA graph (one launch instead of hundreds).

`CUDAGraphed(fn)` runs `fn` eagerly on its first call (warm-up: lazy initialisations,
allocator), captures it on the second, and replays the capture from then on: arguments are
copied into the capture's input buffers and the returned tensors *are* its output buffers,
overwritten by the next call (copy them if you keep them). Everything `fn` reads besides
its arguments (weights, streaming state updated in place) must stay at the same address.
Off CUDA, or with `enabled=False`, it is a plain call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

import torch
from torch import Tensor

Out = TypeVar("Out")


class CUDAGraphed(Generic[Out]):
    def __init__(self, fn: Callable[..., Out], enabled: bool = True):
        self.fn = fn
        self.enabled = enabled and torch.cuda.is_available()
        self._calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: tuple[Tensor, ...] = ()
        self._output: Out | None = None

    def reset(self) -> None:
        """Forget the capture (e.g. when the state it reads was reallocated)."""
        self._calls, self._graph, self._inputs, self._output = 0, None, (), None

    def __call__(self, *args: Tensor) -> Out:
        if not self.enabled:
            return self.fn(*args)
        self._calls += 1
        if self._calls == 1:
            return self.fn(*args)
        if self._graph is None:
            self._inputs = tuple(a.clone() for a in args)
            graph = torch.cuda.CUDAGraph()
            # Capturing records the kernels without running them: the replay below runs
            # this call, so state updated in place advances exactly once.
            with torch.cuda.graph(graph):
                self._output = self.fn(*self._inputs)
            self._graph = graph
        for static, arg in zip(self._inputs, args, strict=True):
            if static.shape != arg.shape or static.dtype != arg.dtype:
                raise ValueError(
                    f"CUDA graph captured for {tuple(static.shape)} {static.dtype}, "
                    f"got {tuple(arg.shape)} {arg.dtype}"
                )
            static.copy_(arg)
        self._graph.replay()
        assert self._output is not None
        return self._output
