"""Real size: a VoxCeleb2-shaped protocol of 10 k, 100 k and 1.09 M files, start to first step.

Builds the protocol with ``engine.demo.scaled`` (hard links to the demo corpus's wav files in
the real ``wav/idNNNNN/SESSION/NNNNN.wav`` layout, RTTM/UEM lists, a trial list), then, each
in its own process so that peak memory is its own:

- ``pyannote``: pyannote.database alone iterating ``train()`` reading ``annotation`` and
  ``annotated`` (the baseline of the first start);
- ``index_first`` / ``index_later``: the training index built (listed, checked, cached) and
  then loaded from the cache, with the speaker index derived, wall time and peak RSS; and, in
  the later one, the cache loaded again checked against its manifest (``load_checked_s``) and
  mapped unchecked as before the manifest (``load_unchecked_s``), and the size and mtime of
  every training file compared with the index (``change_check_s``), and the uri list's uris checked
  (``uri_check_s``, against ``uri_list_read_s`` for reading the list);
- ``train_first`` / ``train_later``: ``spkemb-engine train --parallel 2`` to its first
  recorded step, with an empty cache and then with another experiment on the same cache;
- ``workers``: private memory (USS) of the 2 loader workers after a few batches and after many,
  over the cached index (flat, not growing per chunk);
- ``torchrun``: ``torchrun --nproc_per_node 2 … train --parallel 2`` on the cached index, the
  private memory of every process it runs (torchrun, 2 ranks, 2 loader workers each) after 20
  steps and after ``--rank-steps``: what the whole distributed run costs, and whether it grows.

Writes bench/results/scale.json and prints the ratios against the goals.

    .venv/bin/python bench/scale.py [--sizes 10k,100k,1.09M] [--root DIR] [--pyannote-max 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from procmem import peak_mb, process_tree, uss_mb

from engine.demo import make_demo_corpus
from engine.demo.scaled import PROTOCOL, VOXCELEB2_FILES, make_scaled_protocol
from engine.layout import ExperimentDir
from engine.store import open_store

SIZES = {"10k": 10_000, "100k": 100_000, "1.09M": VOXCELEB2_FILES}
CONFIG = """\
feature_extraction: {name: pyannote.audio.features.RawAudio, params: {sample_rate: 16000}}
architecture:
  name: pyannote.audio.models.SincTDNN
  params:
    sincnet: {stride: [5, 1, 1], waveform_normalize: true, instance_normalize: true}
    tdnn: {embedding_dim: 32, hidden_dim: 64}
    embedding: {batch_normalize: false, unit_normalize: false}
task:
  name: AdditiveAngularMarginLoss
  params: {margin: 0.05, s: 10, duration: 2.0, per_fold: 32, per_label: 2, per_epoch: 1.0}
scheduler: {name: ConstantScheduler, params: {learning_rate: 0.01}}
"""

PYANNOTE = """
import time, warnings
from procmem import peak_mb
warnings.filterwarnings("ignore")
from engine.data.protocols import load_protocol
t = time.perf_counter()
n = 0
for f in load_protocol({protocol!r}, {yml!r}).train():
    f["annotation"], f["annotated"]
    n += 1
print({{"files": n, "seconds": time.perf_counter() - t,
        "peak_rss_mb": peak_mb()}})
"""

INDEX = """
import time
from procmem import peak_mb
from engine.data.speech_index import derive_index
from engine.data.training_index import IndexRequest, training_table
from engine.progress import Progress
t = time.perf_counter()
table = training_table(IndexRequest({protocol!r}, "train", {yml!r}), Progress())
index = derive_index(table, 2.0)
seconds, peak = time.perf_counter() - t, peak_mb()  # the extra measurements below are not a start's
import numpy as np
from pathlib import Path
from engine.data.file_checks import changed_since
from engine.data.table import load_table
from engine.data.training_index import cache_root
folder = cache_root() / "{protocol}.train" / table.info["key"]
t = time.perf_counter()
load_table(folder)  # checked against the manifest: every file hashed
checked = time.perf_counter() - t
t = time.perf_counter()
for f in sorted(folder.glob("*.npy")):  # as before the manifest: mapped, not read
    np.load(f, mmap_mode="r")
unchecked = time.perf_counter() - t
t = time.perf_counter()
changed = changed_since(table)
change_check = time.perf_counter() - t
from engine.data import uri_lists
t = time.perf_counter()
open({lst!r}, encoding="utf-8").read()
list_read = time.perf_counter() - t
uri_lists._FINE.clear()  # each command checks its lists once: as a fresh process would
t = time.perf_counter()
uri_lists.check_uri_list({lst!r})
print({{"files": len(table.paths), "speakers": len(index.speakers), "reader": table.info.get("reader"),
        "seconds": seconds, "peak_rss_mb": peak, "load_checked_s": checked, "load_unchecked_s": unchecked,
        "cache_mb": sum(f.stat().st_size for f in folder.iterdir()) / 2**20,
        "change_check_s": change_check, "changed": len(changed), "uri_list_read_s": list_read,
        "uri_check_s": time.perf_counter() - t}})
"""

WORKERS = """
import os, time
from engine.config import parse_config
from engine.data.batch_loader import make_loader
from engine.data.speech_index import derive_index
from engine.data.training_index import IndexRequest, training_table
from engine.progress import Progress
from procmem import uss_mb

config = parse_config(open({config!r}).read(), "bench")
index = derive_index(training_table(IndexRequest({protocol!r}, "train", {yml!r}), Progress(quiet=True)), 2.0)
loader = make_loader(index, config, workers=2, seed=0, epochs=None)
marks = {{}}
for k, _ in enumerate(loader, 1):
    if k in {points}:
        pids = [w.pid for w in loader.loader._iterator._workers]
        marks[k] = [round(uss_mb(p), 1) for p in pids]
    if k == {late}:
        break
print({{"batches": {late}, "chunks": {late} * 64, "worker_uss_mb": {{str(k): v for k, v in marks.items()}}}})
"""


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.machine())
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "memory_gb": round(mem / 2**20, 1),
            "python": platform.python_version(), "load_average_1min_at_start": os.getloadavg()[0]}


def env(cache: Path, db: Path | None = None, database: Path | None = None) -> dict[str, str]:
    # the bench folder too: the children measure themselves with procmem
    e = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}", "SPKEMB_CACHE": str(cache),
         "OMP_NUM_THREADS": "1"}
    if db is not None:
        e["SPKEMB_DB"] = str(db)
    if database is not None:
        e["PYANNOTE_DATABASE_CONFIG"] = str(database)
    return e


def child(code: str, cache: Path) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its last stdout line is a Python dict literal."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env(cache), cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    result = eval(done.stdout.strip().splitlines()[-1])  # our own child's dict literal
    result["process_seconds"] = time.perf_counter() - began
    return result


def to_first_step(exp: Path, yml: Path, cache: Path, db: Path) -> dict[str, Any]:
    """``spkemb-engine train`` from launch to its first recorded step; then SIGTERM."""
    log = exp / "to-first-step.log"
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine", "train", "--to", "1", "--parallel", "2", "--device",
                             "cpu", "--log-every", "0", str(exp), PROTOCOL], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env=env(cache, db, yml), cwd=ROOT)
    peak, seconds, indexing_seen = 0, None, False
    while proc.poll() is None:
        peak = max(peak, peak_mb(proc.pid) or 0)
        runs = open_store(db, readonly=True).runs(kind="train") if db.exists() else []
        run = next((r for r in runs if r["out_dir"] and r["out_dir"].startswith(str(exp))), None)
        indexing_seen |= bool(run and run["status"] == "indexing")
        if run and (run["step"] or 0) >= 1:
            seconds = time.perf_counter() - began
            break
        time.sleep(0.25)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=600)
    if seconds is None:
        raise SystemExit(f"train ended before its first step (rc {rc}):\n{log.read_text()[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": peak, "row_seen_indexing": indexing_seen, "exit": rc}


def torchrun_memory(exp: Path, yml: Path, cache: Path, db: Path, steps: int) -> dict[str, Any]:
    """torchrun, 2 ranks × 2 loader workers: every process's private memory after 20 and ``steps`` steps."""
    torchrun = Path(sys.executable).with_name("torchrun")
    log = exp / "torchrun.log"
    proc = subprocess.Popen([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "engine",
                             "train", "--to", "100", "--parallel", "2", "--device", "cpu", "--log-every", "0",
                             str(exp), PROTOCOL], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env=env(cache, db, yml), cwd=ROOT)
    marks: dict[str, Any] = {}
    try:
        for target in (20, steps):
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"torchrun ended early (rc {proc.returncode}):\n{log.read_text()[-3000:]}")
                runs = open_store(db, readonly=True).runs(kind="train") if db.exists() else []
                trn_dir = str(ExperimentDir(exp).training(PROTOCOL, "train").root)
                if any(r["out_dir"] == trn_dir and (r["step"] or 0) >= target for r in runs):
                    break
                time.sleep(0.5)
            sizes = sorted((m for m in map(uss_mb, process_tree(proc.pid)) if m is not None), reverse=True)
            marks[str(target)] = {"processes": len(sizes), "total_uss_mb": round(sum(sizes), 1),
                                  "uss_mb": [round(m, 1) for m in sizes]}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
    return {"steps": marks}


def measure(name: str, n: int, root: Path, sources: list[Path], pyannote_max: int, batches: int,
            rank_steps: int, index_only: bool = False) -> dict[str, Any]:
    base = root / name
    yml = base / "database.yml"
    lst = base / "voxceleb2" / "lists" / "train.lst"
    out: dict[str, Any] = {"files": n}
    if not (yml.is_file() and sum(1 for _ in open(lst)) == n):
        shutil.rmtree(base, ignore_errors=True)
        t = time.perf_counter()
        make_scaled_protocol(base, sources, n)
        out["protocol_build_s"] = time.perf_counter() - t
    cache = base / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    if n <= pyannote_max:
        out["pyannote"] = child(PYANNOTE.format(protocol=PROTOCOL, yml=str(yml)), cache)
        print(f"{name}: pyannote.database listing {out['pyannote']['seconds']:.1f} s, "
              f"{out['pyannote']['peak_rss_mb']:.0f} MB", flush=True)
    out["index_first"] = child(INDEX.format(protocol=PROTOCOL, yml=str(yml), lst=str(lst)), cache)
    out["index_later"] = child(INDEX.format(protocol=PROTOCOL, yml=str(yml), lst=str(lst)), cache)
    for key in ("index_first", "index_later"):
        print(f"{name}: {key} {out[key]['seconds']:.1f} s, {out[key]['peak_rss_mb']:.0f} MB", flush=True)
    later = out["index_later"]
    print(f"{name}: the cache ({later['cache_mb']:.0f} MB) loaded checked against its manifest "
          f"{later['load_checked_s']:.2f} s, mapped unchecked {later['load_unchecked_s']:.2f} s; "
          f"size + mtime of every file against the index {later['change_check_s']:.2f} s; the uri list's uris "
          f"checked {later['uri_check_s']:.3f} s (reading the list {later['uri_list_read_s']:.3f} s)", flush=True)
    if index_only:
        return out
    shutil.rmtree(cache)
    db = base / "runs.db"
    db.unlink(missing_ok=True)
    for key, exp_name in (("train_first", "exp-first"), ("train_later", "exp-later")):
        exp = base / exp_name
        shutil.rmtree(exp, ignore_errors=True)
        exp.mkdir()
        ExperimentDir(exp).config.write_text(CONFIG)
        out[key] = to_first_step(exp, yml, cache, db)
        print(f"{name}: {key} to first step {out[key]['seconds']:.1f} s, {out[key]['peak_rss_mb']:.0f} MB",
              flush=True)
    config = ExperimentDir(base / "exp-first").config
    points = sorted({p for p in (20, 100, 500, 2000, 5000) if p < batches} | {batches})
    out["workers"] = child(WORKERS.format(protocol=PROTOCOL, yml=str(yml), config=str(config),
                                          points=points, late=batches), cache)
    print(f"{name}: loader workers' private memory {out['workers']['worker_uss_mb']}", flush=True)
    if rank_steps:
        exp = base / "exp-torchrun"
        shutil.rmtree(exp, ignore_errors=True)
        exp.mkdir()
        ExperimentDir(exp).config.write_text(CONFIG)
        out["torchrun"] = torchrun_memory(exp, yml, cache, db, rank_steps)
        print(f"{name}: torchrun, 2 ranks x 2 workers, private memory of all processes "
              + ", ".join(f"after {k} steps {v['total_uss_mb']:.0f} MB ({v['processes']} processes)"
                          for k, v in out["torchrun"]["steps"].items()), flush=True)
    if "pyannote" in out:
        p = out["pyannote"]["seconds"]
        out["ratios"] = {"index_first_over_pyannote": out["index_first"]["seconds"] / p,
                         "train_first_over_pyannote": out["train_first"]["seconds"] / p}
        print(f"{name}: first start / pyannote listing = {out['ratios']['train_first_over_pyannote']:.2f} "
              f"(index alone {out['ratios']['index_first_over_pyannote']:.2f}; goal <= 1.2)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1.09M", help="comma-separated: 10k, 100k, 1.09M")
    parser.add_argument("--root", default=None, help="where the protocols go (default: a temporary folder)")
    parser.add_argument("--pyannote-max", type=int, default=VOXCELEB2_FILES,
                        help="skip the pyannote.database baseline above this many files")
    parser.add_argument("--batches", type=int, default=1000, help="batches for the workers' memory (default 1000)")
    parser.add_argument("--rank-steps", type=int, default=300,
                        help="steps of the torchrun run whose memory is measured (0: skip it; default 300)")
    parser.add_argument("--index-only", action="store_true",
                        help="measure the index alone (built, loaded, checked), not training")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise SystemExit(f"unknown size {', '.join(unknown)}: use {', '.join(SIZES)}")
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="spkemb-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    demo = root / "demo"
    if not (demo / "database.yml").is_file():
        make_demo_corpus(demo, speakers=60, seed=0)
    sources = sorted((demo / "voxceleb" / "wav").rglob("*.wav"))
    out = Path(args.out)
    # sizes measured by an earlier invocation stay in the file (each with its date and load)
    results = json.loads(out.read_text()) if out.is_file() else {"sizes": {}}
    results["machine"] = machine()
    for name in sizes:
        at = {"measured_at": time.strftime("%Y-%m-%d %H:%M"), "load_average_1min": os.getloadavg()[0]}
        measured = measure(name, SIZES[name], root, sources, args.pyannote_max, args.batches, args.rank_steps,
                           args.index_only)
        if args.index_only:  # the training figures measured earlier stay, with their own date
            results["sizes"].setdefault(name, {}).update({"index_measured_at": at, **measured})
        else:
            results["sizes"][name] = {**at, **measured}
        out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
