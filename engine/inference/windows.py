"""Embeddings of sliding windows, three ways: plain, exact (default) and shared.

A window is ``window`` samples starting at an integer sample offset; a file shorter than one
window gets a single window over the whole file (tiled up to ``model.min_samples`` when it is
even shorter than the network needs).

What ``apply`` embeds whole files with and ``validate`` embeds its trial files with (the exact
path); the network comes from :mod:`engine.inference.network`.

* **plain** -- pyannote.audio 1.x: every window through the whole network. At step 0.1
  every sample goes through the network 10 times.
* **exact** -- the same numbers (≤ 1e-4) with what is truly window-independent computed once
  per span of consecutive windows. SincNet's first block is ``maxpool3(|sinc(norm(x))|)``
  where ``norm`` standardises each window (instance norm with affine ``gamma, beta``). The
  sinc convolution is linear and has no bias, so for a window with mean ``mu`` and variance
  ``var`` (from float64 running sums)::

      sinc(norm(x)) = a * sinc(x) + c * sum(filter),   a = gamma / sqrt(var + eps),
                                                      c = beta - a * mu

  ``sinc(x)`` is computed once over the span (one pass per stride phase of the window
  starts: a single one when the hop is a multiple of the stride). An affine map is monotone,
  so ``max over 3 frames of |a v + c k|`` is ``max(|a vmax + c k|, |a vmin + c k|)`` with
  ``vmax``/``vmin`` the max/min of ``sinc(x)`` over the pooling group: those are also
  computed once per span and pooling phase. From the first instance norm on, every
  activation depends on the window (instance norm over the window's frames), so the rest
  runs per window.
* **shared** -- the frame-level layers (SincNet and TDNN) run once over the file in blocks
  that overlap by the receptive field and start on the frame grid; each window pools mean
  and standard deviation from float64 running sums of the frames and their squares. Window
  starts are snapped to the nearest frame (``model.frame_step`` samples: 8.4 ms for stride
  (5, 1, 1)), moved back at the end of the file so that every window has its full frame
  count. Exact for a network without per-window normalisation; with it, the normalisations
  see a block (``block_seconds``) instead of a window: an approximation.

A filterbank backbone (:class:`engine.model.FbankNetwork`) normalises each window's
filterbanks by their mean and pools the window as a whole: nothing is window-independent, so
its exact path is the plain one, and it has no shared path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.audio import num_samples, read_crop
from engine.data.audio_checks import audio_info
from engine.model.embedding import SincTDNN
from engine.model.interface import EmbeddingNetwork
from engine.model.sincnet import SincBlock, SincConv1d

MODES = ("plain", "exact", "shared")


class Signal(Protocol):
    """A waveform read by sample ranges; reads past the end give zeros."""

    @property
    def n_samples(self) -> int: ...

    def read(self, start: int, n: int) -> np.ndarray: ...


@dataclass
class ArraySignal:
    """A waveform held in memory (a trial file, a test signal)."""

    samples: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[0])

    def read(self, start: int, n: int) -> np.ndarray:
        out = self.samples[start:start + n]
        if out.shape[0] < n:
            out = np.concatenate([out, np.zeros(n - out.shape[0], np.float32)])
        return np.ascontiguousarray(out, dtype=np.float32)


class FileSignal:
    """An audio file read in crops (memory does not grow with the file's length)."""

    def __init__(self, path: str, sample_rate: int) -> None:
        self.path, self.sample_rate = str(path), sample_rate
        info = audio_info(self.path)
        self.n_samples = num_samples(info.frames / info.samplerate, sample_rate)

    def read(self, start: int, n: int) -> np.ndarray:
        return read_crop(self.path, start / self.sample_rate, n / self.sample_rate, self.sample_rate)


def window_starts(n_samples: int, window: int, hop: int) -> np.ndarray:
    """Start samples of the windows over a signal: ``0, hop, 2 hop, ...`` while the window fits.

    A signal shorter than ``window`` gets one start (0): the whole file is one window.
    """
    if n_samples <= window:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_samples - window + 1, hop, dtype=np.int64)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _device(model: EmbeddingNetwork) -> torch.device:
    return next(model.parameters()).device


def _chunks(n: int, size: int) -> Iterator[slice]:
    for first in range(0, n, size):
        yield slice(first, min(n, first + size))


def embed_short(model: EmbeddingNetwork, waveform: np.ndarray) -> np.ndarray:
    """One embedding of a whole (short) waveform; tiled up to ``model.min_samples`` if needed."""
    if waveform.shape[0] < model.min_samples:
        waveform = np.resize(waveform, model.min_samples)  # np.resize repeats the signal
    device = _device(model)
    x = torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)).to(device)[None]
    with torch.inference_mode(), _autocast(device):
        return model(x).float().cpu().numpy()


def _gather(x: torch.Tensor, rel: np.ndarray, window: int) -> torch.Tensor:
    """The windows of ``x`` starting at ``rel``, (batch, window): a strided view where they are evenly
    spaced (a batch of 4,096 two-second windows would otherwise build a 1 GiB index on the host)."""
    hop = int(rel[1] - rel[0]) if len(rel) > 1 else 1
    if hop > 0 and np.array_equal(rel, rel[0] + hop * np.arange(len(rel))):
        return x[int(rel[0]):].unfold(0, window, hop)[:len(rel)]
    index = torch.as_tensor(rel, device=x.device)[:, None] + torch.arange(window, device=x.device)
    return x[index]


def _by_span(model: EmbeddingNetwork, signal: Signal, starts: np.ndarray, window: int, batch: int,
             embed_span: Callable[[torch.Tensor, np.ndarray], torch.Tensor]) -> np.ndarray:
    """Batches of ``batch`` windows; each batch reads the one span of audio its windows cover
    and ``embed_span(span, starts relative to the span)`` embeds them."""
    if signal.n_samples <= window:
        return embed_short(model, signal.read(0, signal.n_samples))
    device, out = _device(model), []
    with torch.inference_mode(), _autocast(device):
        for part in _chunks(len(starts), batch):
            s = starts[part]
            span = torch.from_numpy(signal.read(int(s[0]), int(s[-1] - s[0]) + window)).to(device)
            out.append(embed_span(span, s - s[0]).float().cpu())
    return torch.cat(out).numpy()


def embed_plain(model: EmbeddingNetwork, signal: Signal, starts: np.ndarray, window: int,
                batch: int = 128) -> np.ndarray:
    """Every window through the whole network (pyannote.audio 1.x); (windows, dim) float32."""
    return _by_span(model, signal, starts, window, batch,
                    lambda span, rel: model(_gather(span, rel, window)))


def _first_block(model: SincTDNN, span: torch.Tensor, rel: np.ndarray, window: int) -> torch.Tensor:
    """``maxpool(|sinc(norm(window))|)`` of every window, sharing the convolution (see module doc).

    Returns (windows, channels, pooled frames), equal to SincNet's first block before its
    instance norm.
    """
    sincnet = model.sincnet
    # nn.ModuleList types its items as Module; SincNet's first block convolves with sinc filters
    block = cast(SincBlock, sincnet.blocks[0])
    conv = cast(SincConv1d, block.conv)
    filters = conv.filters()  # (channel, 1, kernel)
    k = filters.sum(dim=(1, 2))[None, :, None]  # (1, channel, 1)
    # MaxPool1d types kernel_size int | tuple[int]; SincBlock builds it from an int
    stride, kernel, pool = conv.stride, conv.kernel_size, cast(int, block.pool.kernel_size)
    n_pool = ((window - kernel) // stride + 1) // pool

    rel = rel.astype(np.int64)
    if sincnet.waveform_norm is not None:
        x64 = span.double().cpu().numpy()
        c1 = np.concatenate([[0.0], np.cumsum(x64)])
        c2 = np.concatenate([[0.0], np.cumsum(x64 * x64)])
        mean = (c1[rel + window] - c1[rel]) / window
        var = np.maximum((c2[rel + window] - c2[rel]) / window - mean * mean, 0.0)  # biased, as InstanceNorm
        norm = sincnet.waveform_norm
        gamma, beta = float(norm.weight), float(norm.bias)
        a = gamma / np.sqrt(var + norm.eps)
        c = beta - a * mean
    else:
        a, c = np.ones(len(rel)), np.zeros(len(rel))
    a_t = torch.from_numpy(a).to(span.device, torch.float32)[:, None, None]
    c_t = torch.from_numpy(c).to(span.device, torch.float32)[:, None, None] * k

    phase, frame = rel % stride, rel // stride
    out = torch.empty(len(rel), filters.shape[0], n_pool, device=span.device)
    for r in np.unique(phase):
        sincx = F.conv1d(span[r:][None, None], filters, stride=stride)[0]  # (channel, frame)
        for p in np.unique(frame[phase == r] % pool):
            groups = (sincx.shape[1] - p) // pool
            v = sincx[:, p:p + groups * pool].reshape(sincx.shape[0], groups, pool)
            vmin, vmax = torch.aminmax(v, dim=-1)  # (channel, group)
            sel = np.flatnonzero((phase == r) & (frame % pool == p))
            # (windows, channel, n_pool): one slice copy per window
            hi = torch.stack([vmax[:, j:j + n_pool] for j in frame[sel] // pool])
            lo = torch.stack([vmin[:, j:j + n_pool] for j in frame[sel] // pool])
            hi = torch.addcmul(c_t[sel], a_t[sel], hi)
            lo = torch.addcmul(c_t[sel], a_t[sel], lo)
            if block.rectify:
                hi, lo = hi.abs_(), lo.abs_()
            out[torch.from_numpy(sel).to(span.device)] = torch.maximum(hi, lo)
    return out


def _after_first_pool(model: SincTDNN, y: torch.Tensor) -> torch.Tensor:
    """The rest of the network from SincNet's first instance norm: (windows, dim)."""
    block = cast(SincBlock, model.sincnet.blocks[0])  # nn.ModuleList types its items as Module
    if block.norm is not None:
        y = block.norm(y)
    y = block.activation(y)
    for later in model.sincnet.blocks[1:]:
        y = later(y)  # (batch, channel, frame)
    mean, std = model.pool(model.tdnn.frames(y))
    return model.pool_stats(mean, std)


def embed_exact(model: EmbeddingNetwork, signal: Signal, starts: np.ndarray, window: int,
                batch: int = 128) -> np.ndarray:
    """Same embeddings as :func:`embed_plain`, sharing the first block's window-independent work
    (SincTDNN's; a filterbank backbone has none: its exact path is the plain one)."""
    if not isinstance(model, SincTDNN):
        return embed_plain(model, signal, starts, window, batch=batch)
    return _by_span(model, signal, starts, window, batch,
                    lambda span, rel: _after_first_pool(model, _first_block(model, span, rel, window)))


def snap_starts(model: SincTDNN, n_samples: int, starts: np.ndarray, window: int) -> np.ndarray:
    """First frame of each window in the shared path: the nearest frame, kept inside the file."""
    n_total, n_window = model.num_frames(n_samples), model.num_frames(window)
    first = np.rint(starts / model.frame_step).astype(np.int64)
    return np.clip(first, 0, max(n_total - n_window, 0))


def embed_shared(model: EmbeddingNetwork, signal: Signal, starts: np.ndarray, window: int,
                 batch: int = 128, block_seconds: float = 30.0) -> np.ndarray:
    """Frame-level layers once per file (in blocks), each window pooled from running sums.

    Window ``i`` pools frames ``[f_i, f_i + num_frames(window))`` with ``f_i`` from
    :func:`snap_starts`; (windows, dim) float32.
    """
    if not isinstance(model, SincTDNN):
        raise ValueError(f"the shared path pools SincTDNN's frames; {type(model).__name__} has none")
    if signal.n_samples <= window:
        return embed_short(model, signal.read(0, signal.n_samples))
    device = _device(model)
    step, field = model.frame_step, model.receptive_field
    n_total, n_window = model.num_frames(signal.n_samples), model.num_frames(window)
    first = snap_starts(model, signal.n_samples, starts, window)
    last = first + n_window
    per_block = max(n_window, int(block_seconds * model.sample_rate / step))
    out = np.empty((len(starts), model.dimension), dtype=np.float32)
    start_sums: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    carry1: np.ndarray | None = None
    carry2: np.ndarray | None = None
    lo = hi = 0  # windows [lo, hi) have their start sums; windows < lo are done
    with torch.inference_mode(), _autocast(device):
        for j0 in range(0, n_total, per_block):
            j1 = min(j0 + per_block, n_total)
            span = signal.read(j0 * step, (j1 - 1 - j0) * step + field)
            frames = model.frames(torch.from_numpy(span).to(device)[None])[0].float().cpu().numpy()  # (frame, channel)
            if carry1 is None or carry2 is None:  # both, on the first block
                carry1 = carry2 = np.zeros(frames.shape[1])
            # prefix sums (float64) at the block positions that some window starts or ends at:
            # prefix[q] = sum of the file's frames [0, q), for q in j0 .. j1
            new_hi = hi + int(np.searchsorted(first[hi:], j1))
            wanted = np.concatenate([first[hi:new_hi], last[lo:new_hi]]) - j0
            edges = np.unique(np.concatenate([[0], wanted[(wanted >= 0) & (wanted <= j1 - j0)], [j1 - j0]]))
            seg1 = np.add.reduceat(frames, edges[:-1], axis=0, dtype=np.float64)
            seg2 = np.add.reduceat(frames * frames, edges[:-1], axis=0, dtype=np.float64)
            p1 = np.concatenate([carry1[None], carry1 + np.cumsum(seg1, axis=0)])
            p2 = np.concatenate([carry2[None], carry2 + np.cumsum(seg2, axis=0)])
            s1 = {int(q) + j0: p1[k] for k, q in enumerate(edges)}
            s2 = {int(q) + j0: p2[k] for k, q in enumerate(edges)}
            carry1, carry2 = p1[-1], p2[-1]
            for i in range(hi, new_hi):
                start_sums[i] = (s1[first[i]], s2[first[i]])
            hi = new_hi
            done = [i for i in range(lo, hi) if last[i] <= j1]
            for part in _chunks(len(done), batch):
                idx = done[part]
                e1 = np.stack([s1[last[i]] - start_sums[i][0] for i in idx])
                e2 = np.stack([s2[last[i]] - start_sums[i][1] for i in idx])
                mean = e1 / n_window
                var = np.maximum((e2 - n_window * mean * mean) / (n_window - 1), 0.0)  # unbiased
                mean_t = torch.from_numpy(mean).to(device, torch.float32)
                std_t = torch.from_numpy(np.sqrt(var)).to(device, torch.float32)
                out[idx] = model.pool_stats(mean_t, std_t).float().cpu().numpy()
            for i in done:
                del start_sums[i]
            lo += len(done)
    return out


def embed(model: EmbeddingNetwork, signal: Signal, starts: np.ndarray, window: int, *, mode: str = "exact",
          batch: int = 128) -> np.ndarray:
    """Embeddings of the windows ``starts`` (samples) of ``signal`` by ``mode`` (see module doc)."""
    paths: dict[str, Callable[..., np.ndarray]] = {
        "plain": embed_plain, "exact": embed_exact, "shared": embed_shared}
    if mode not in paths:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return paths[mode](model, signal, starts, window, batch=batch)
