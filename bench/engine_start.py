"""What an engine command pays before its work: a whole `spkemb-engine train --to 1` of a tiny
network on the demo corpus, where starting up is most of the time, timed as users start it and
as it started before its two cuts: pyannote.core's Jupyter display (no command imports it since
2026-12-05) and torch.optim's import of ``torch._dynamo`` (the SGD is the engine's own since 2026-12-06).

The baseline is the same command in the same interpreter with pyannote.core and ``torch._dynamo``
imported first, as the command imported them before: pyannote.core's ``notebook`` module brought
matplotlib.pyplot, torch.optim's first use ``torch._dynamo``. The two alternate, ``--repeat`` times
each, after one untimed run that builds the demo's training index. Prints the medians and their
ratio; writes bench/results/engine_start.json.

Then a refusal: ``train`` of a misspelt protocol, which the engine now answers before it imports
torch (``engine/early_checks.py``), against the same command with the train module (and so torch)
imported first, as it was refused before.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_commands import checkout_env
from results_io import write_results

from engine.config import template_text
from engine.demo import make_demo_corpus
from engine.layout import ExperimentDir

PROTOCOL = "Demo.SpeakerVerification.Voices"
#: the demo config at the size of the test suite's: a few steps, so that the start is what is timed
TINY = {"embedding_dim: 128": "embedding_dim: 32", "hidden_dim: 256": "hidden_dim: 64",
        "per_epoch: 0.02": "per_epoch: 0.0002", "per_fold: 16": "per_fold: 4"}
BASELINE = "import sys, pyannote.core, torch._dynamo\nfrom engine.cli import main\nsys.exit(main(sys.argv[1:]))"
REFUSED_LATE = "import sys, engine.training.train\nfrom engine.cli import main\nsys.exit(main(sys.argv[1:]))"


def tiny_config() -> str:
    text = template_text("demo")
    for old, new in TINY.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def timed(prefix: list[str], exp: Path, env: dict[str, str]) -> float:
    shutil.rmtree(ExperimentDir(exp).training(PROTOCOL, "train").root, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([*prefix, "train", "--to", "1", "--parallel", "0", str(exp), PROTOCOL], env=checkout_env(env),
                   check=True, capture_output=True)
    return time.perf_counter() - t


def refused(prefix: list[str], exp: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run([*prefix, "train", str(exp), "Demo.SpeakerVerification.Nobody"], env=checkout_env(env),
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Nobody is not defined" in done.stderr, done.stderr
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "engine_start.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        database = make_demo_corpus(root / "data", speakers=12, seed=0)
        exp = root / "exp"
        exp.mkdir()
        ExperimentDir(exp).config.write_text(tiny_config())
        env = {**os.environ, "PYANNOTE_DATABASE_CONFIG": str(database), "SPKEMB_DB": str(root / "runs.db"),
               "SPKEMB_CACHE": str(root / "cache"), "OMP_NUM_THREADS": "1"}
        commands = {"engine": [sys.executable, "-m", "engine"], "baseline": [sys.executable, "-c", BASELINE]}
        timed(commands["engine"], exp, env)  # builds the training index that every timed run loads
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, prefix in commands.items():
                times[name].append(timed(prefix, exp, env))
        late = [sys.executable, "-c", REFUSED_LATE]
        refusals: dict[str, list[float]] = {"engine": [], "baseline": []}
        for _ in range(args.repeat):
            refusals["engine"].append(refused(commands["engine"], exp, env))
            refusals["baseline"].append(refused(late, exp, env))
    median = {name: statistics.median(values) for name, values in times.items()}
    refusal = {name: statistics.median(values) for name, values in refusals.items()}
    result = {"command": f"spkemb-engine train --to 1 (tiny network, {PROTOCOL}, index cached)",
              "engine_s": median["engine"], "baseline_s": median["baseline"],
              "ratio": median["engine"] / median["baseline"], "repeat": args.repeat, "runs": times,
              "refusal": {"command": "spkemb-engine train EXP Demo.SpeakerVerification.Nobody",
                          "engine_s": refusal["engine"], "baseline_s": refusal["baseline"],
                          "ratio": refusal["engine"] / refusal["baseline"], "runs": refusals},
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}
    print(f"engine_start: train --to 1 of a tiny network in {median['engine']:.2f} s, "
          f"{median['baseline']:.2f} s with pyannote.core's notebook display and torch._dynamo: "
          f"ratio {result['ratio']:.2f}")
    print(f"engine_start: a misspelt protocol refused in {refusal['engine']:.2f} s, {refusal['baseline']:.2f} s "
          f"with torch imported first: ratio {refusal['engine'] / refusal['baseline']:.2f}")
    write_results(args.out, result)


if __name__ == "__main__":
    main()
