"""Are the embeddings good for diarization? DER on the demo meetings, trained network vs untrained.

Makes a demo workspace (a temporary one unless --workspace names one), trains the demo config for
--epochs epochs (``spkemb-engine train``), validates epochs 0 and the last (``validate``), then for
the untrained network (epoch 0) and the trained one (the last epoch) extracts the test and
development meetings (``apply``) and runs ``spkemb-engine diarize`` on the test meetings twice:
oracle number of speakers, and a cosine threshold tuned on the development meeting. Scoring is
pyannote.metrics' DER with the defaults (no collar, overlap scored, oracle speech). Prints one line
per (epoch, mode), the ratio trained / untrained, and writes bench/results/diarize_der.json.

    .venv/bin/python bench/diarize_der.py [--epochs 3] [--workspace DIR] [--parallel 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine_commands import engine
from results_io import write_results

from engine.layout import ExperimentDir, TrainingDir
from engine.store import open_store

PROTOCOL = "Demo.SpeakerVerification.Voices"
MEETINGS = "Demo.SpeakerDiarization.Meetings"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workspace", default=None, help="demo workspace (default: a temporary one)")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--reuse", action="store_true",
                        help="score the extractions of an earlier run in --workspace again (no training)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "diarize_der.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(args.workspace or Path(tmp) / "ws").resolve()
        common = ["--db", "runs.db", "--database", "data/database.yml"]
        trn_dir = ExperimentDir(ws).training(PROTOCOL, "train").root
        if not args.reuse:
            engine("demo-workspace", str(ws), cwd=ROOT)
            engine("train", *common, "--to", str(args.epochs), "--parallel", str(args.parallel), ".", PROTOCOL,
                   cwd=ws)
            engine("validate", *common, "--chronological", "--every", str(args.epochs), "--to", str(args.epochs),
                   str(trn_dir), PROTOCOL, cwd=ws)
        val = TrainingDir(trn_dir).validation(PROTOCOL, "test")
        val_dir = val.root
        rows = []
        for epoch in (0, args.epochs):
            for subset in ("development", "test") if not args.reuse else ():
                engine("apply", *common, "--epoch", str(epoch), "--subset", subset, str(val_dir), MEETINGS, cwd=ws)
            for mode in ("oracle", "tuned"):
                began = time.perf_counter()
                out = engine("diarize", *common, "--num-speakers", mode, str(val.extraction(epoch).root),
                             MEETINGS, cwd=ws)
                seconds = time.perf_counter() - began
                print(f"epoch {epoch:3d}  {mode:6s}  {out.strip().splitlines()[-1]}  ({seconds:.1f} s)")
                rows.append((epoch, mode, seconds))
        with open_store(ws / "runs.db", readonly=True) as store:
            found = {(d["epoch"], d["num_speakers"]): d for d in reversed(store.diarizations(val.extraction(0).root))}
            found.update({(d["epoch"], d["num_speakers"]): d
                          for d in reversed(store.diarizations(val.extraction(args.epochs).root))})
            eers = {v["epoch"]: v["eer"] for v in store.validations(store.runs(kind="validate")[0]["id"])}
            per_file = {key: store.diarization_files(d["id"]) for key, d in found.items()}
            train_s = sum(e["seconds"] or 0.0 for e in store.epochs(store.runs(kind="train")[0]["id"]))
    results = []
    for epoch, mode, seconds in rows:
        d = found[(epoch, mode)]
        results.append({"epoch": epoch, "num_speakers": mode, "der": d["der"], "missed": d["missed"],
                        "false_alarm": d["false_alarm"], "confusion": d["confusion"], "total": d["total"],
                        "threshold": d["threshold"], "eer": eers.get(epoch), "diarize_seconds": round(seconds, 2),
                        "files": [{k: f[k] for k in ("uri", "der", "speakers", "speakers_found")}
                                  for f in per_file[(epoch, mode)]]})
    for mode in ("oracle", "tuned"):
        before, after = (next(r for r in results if r["epoch"] == e and r["num_speakers"] == mode)
                         for e in (0, args.epochs))
        print(f"{mode}: untrained DER {100 * before['der']:.2f} %, trained {100 * after['der']:.2f} % "
              f"({after['der'] / before['der']:.2f} of untrained)")
    result = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "epochs": args.epochs,
              "train_seconds": round(train_s, 1), "linkage": "ward on unit-length embeddings", "collar": 0.0,
              "skip_overlap": False, "results": results}
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
