"""How long `diarize --num-speakers tuned` takes to tune its threshold on one development meeting.

A synthetic meeting of four speakers taking turns (each window the voice of the speaker at its
centre, plus noise, so that the Ward tree's low merges split it into as many clusters as windows),
at several lengths. Each length is tuned twice in the same run: as `diarize` tunes (the cuts into
1 to 4 x its speakers clusters) and, as the baseline, as releases before 2026-12-06 tuned (100
quantiles of all the merge heights). Prints seconds, the ratio and the DER each threshold gives, and
writes bench/results/diarize_tuning.json.

    .venv/bin/python bench/diarize_tuning.py [--windows 900,1800]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyannote.core import Annotation, Segment, SlidingWindow, SlidingWindowFeature, Timeline  # noqa: E402
from results_io import write_results  # noqa: E402

from engine.extraction import diarize  # noqa: E402

#: the default extraction of a 1.5 s window at a 0.15 s hop (apply --step 0.1)
WINDOW = SlidingWindow(start=0.0, duration=1.5, step=0.15)
SPEAKERS = 4
TURN_S = 6.0


def meeting(n_windows: int, seed: int = 0) -> diarize.FileInput:
    """Four speakers in 6 s turns over ``n_windows`` windows, with noisy 32-dimensional voices."""
    rng = np.random.default_rng(seed)
    end = WINDOW[n_windows - 1].end
    reference = Annotation(uri="meeting")
    turns = np.arange(0.0, end, TURN_S)
    for k, start in enumerate(turns):
        reference[Segment(float(start), float(min(start + TURN_S, end)))] = f"spk{k % SPEAKERS}"
    voices = rng.normal(size=(SPEAKERS, 32))
    who = [int(WINDOW[i].middle // TURN_S) % SPEAKERS for i in range(n_windows)]
    rows = voices[who] + 0.8 * rng.normal(size=(n_windows, 32))
    file = {"uri": "meeting", "annotation": reference, "annotated": Timeline([Segment(0.0, end)], uri="meeting")}
    return diarize.prepare(file, SlidingWindowFeature(rows, WINDOW))


def tune(item: diarize.FileInput) -> tuple[float, float, float]:
    """(seconds, threshold, DER) of the tuning `diarize --num-speakers tuned` does."""
    started = time.perf_counter()
    threshold, total = diarize.tune_threshold([item], diarize.DerSettings())
    return time.perf_counter() - started, threshold, total.der


def tune_by_quantiles(item: diarize.FileInput) -> tuple[float, float, float]:
    """The same, as releases before 2026-12-06 tuned: 100 quantiles of the merge heights and one above
    the highest, every one scored (the baseline)."""
    started = time.perf_counter()
    heights = np.concatenate([item.tree.heights(), np.zeros(1)])
    candidates = np.unique(np.round(np.quantile(heights, np.linspace(0, 1, 100)), 6))
    tuned = diarize.DerSettings(num_speakers="tuned")
    best = min((diarize.score([item], tuned, float(t))[1].der, float(t))
               for t in np.append(candidates, heights.max() + 1e-6))
    return time.perf_counter() - started, best[1], best[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="900,1800", help="meeting lengths in windows, comma-separated")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "diarize_tuning.json"))
    args = parser.parse_args(argv)
    rows = []
    for n in (int(w) for w in args.windows.split(",")):
        item = meeting(n)
        tuned, baseline = tune(item), tune_by_quantiles(item)
        rows.append({"windows": n, "audio_s": round(WINDOW[n - 1].end, 1), "tuned_s": round(tuned[0], 3),
                     "baseline_s": round(baseline[0], 3), "speedup": round(baseline[0] / tuned[0], 1),
                     "der": round(tuned[2], 4), "baseline_der": round(baseline[2], 4)})
        print(f"{n} windows ({rows[-1]['audio_s']} s): tuned in {tuned[0]:.2f} s, by quantiles {baseline[0]:.2f} s "
              f"({rows[-1]['speedup']}x); DER {tuned[2]:.4f} vs {baseline[2]:.4f}", flush=True)
    write_results(args.out, {"machine": platform.platform(), "processor": platform.processor() or platform.machine(),
                             "meetings": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
