"""The whole training iteration as one CUDA graph (`infogan train --cuda-graph`).

On a GPU the tutorial's iteration is small (batches of 32 and 64 images of 28x28): launching its
several hundred kernels one at a time from Python takes longer than running them. Captured once
and replayed, the iteration costs one launch. Capture leaves the arithmetic as it is:

- the real batch is drawn inside the graph, by random index into the dataset that already sits
  on the GPU, with the run's own generator; the generator is registered with the graph, so each
  replay advances it as the eager iteration would, and checkpoints save its true state;
- Adam runs with `capturable=True` (its step count lives on the GPU; same update);
- autocast runs without its weight-cast cache, which must not outlive a capture.
`train.build_trainer` sets the last two when `cfg.cuda_graph` is on.

The first `warmup` calls run eagerly on a side stream: they are real training iterations, and
capture needs cuDNN/cuBLAS initialised and the optimiser state allocated. The next call
captures and replays; every later call replays. Each call is exactly one iteration.

What a call returns are the graph's static output tensors: the next call overwrites them, so use
them at once (the loop adds them to its window sum on the same stream, before the next replay).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .errors import InfoganError


class GraphedIteration:
    """`fn()` (one training iteration, returning a dict of tensors) run through a CUDA graph."""

    def __init__(self, fn: Callable[[], dict], generator: torch.Generator, warmup: int = 3):
        if not torch.cuda.is_available() or generator.device.type != "cuda":
            raise InfoganError("--cuda-graph needs a CUDA GPU; none is in use here, so drop "
                               "--cuda-graph")
        self.fn, self.generator, self.warmup = fn, generator, warmup
        self.device = generator.device     # the training device (cuda:N): streams and capture there
        self.eager_calls = 0
        self.graph: torch.cuda.CUDAGraph | None = None
        self.out: dict | None = None
        with torch.cuda.device(self.device):
            self._side = torch.cuda.Stream()

    def __call__(self) -> dict:
        with torch.cuda.device(self.device):
            return self._call()

    def _call(self) -> dict:
        if self.graph is not None:
            self.graph.replay()
            return self.out
        if self.eager_calls < self.warmup:
            self.eager_calls += 1
            self._side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self._side):
                out = self.fn()
            torch.cuda.current_stream().wait_stream(self._side)
            return out
        graph = torch.cuda.CUDAGraph()
        if not hasattr(graph, "register_generator_state"):
            raise InfoganError(f"--cuda-graph: PyTorch {torch.__version__} cannot give a CUDA graph "
                               "the run's own random generator; upgrade PyTorch or train without "
                               "--cuda-graph")
        graph.register_generator_state(self.generator)
        try:
            with torch.cuda.graph(graph):
                out = self.fn()
        except RuntimeError as e:
            # Capture runs no kernel: the weights are still those of the last eager iteration.
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise InfoganError(f"--cuda-graph: capturing the training iteration failed ({first}); "
                               "train without --cuda-graph") from None
        self.graph, self.out = graph, out
        graph.replay()
        return out
