"""The workspace ``make demo`` opens: corpus, CPU-sized config.yml, runs.db, README.txt."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from engine.atomic import atomic_write_text
from engine.demo.layout import MARKER, OnProgress, plan, trial_list, voice_file, write_corpus
from engine.errors import ConfigError, SpkembError
from engine.layout import CONFIG, ExperimentDir

VOICES = "Demo.SpeakerVerification.Voices"

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "demo.yml"

README = """\
spkemb demo workspace
=====================

data/          a synthetic corpus in the VoxCeleb / MUSAN / AMI layouts (data/database.yml)
{config}     a CPU-sized SincTDNN + additive angular margin config (this folder is the EXP_DIR)
runs.db        the runs database: every run, metric and checkpoint

Next
----
Open the terminal interface on this workspace (from the repository: `make demo`):

    spkemb-tui --workspace {dir}

or run the engine by hand, from this folder:

    cd {dir}
    spkemb-engine train --db runs.db --database data/database.yml --to 10 . Demo.SpeakerVerification.Voices
    spkemb-engine validate --db runs.db --database data/database.yml \\
        {trn_dir} Demo.SpeakerVerification.Voices
    spkemb-engine apply --db runs.db --database data/database.yml \\
        {val_dir} \\
        Demo.SpeakerDiarization.Meetings
    spkemb-engine runs --db runs.db
    spkemb-engine report --db runs.db 1 --out report    # run 1's tables and figures, for a paper

(`report` takes several runs, and `--group G` for the seeds of one config: systems side by side.)
{own_recordings}
Protocols: Demo.SpeakerVerification.Voices (train / development / test, with trials),
Demo.Collection.BackgroundNoise, Demo.Collection.Music, Demo.SpeakerDiarization.Meetings.
The audio is synthetic (a source-filter voice model), so EERs here say nothing about real speech.
"""


def _own_recordings_example(data: Path, val_dir: Path) -> str:
    """README's `verify` of three test recordings, two of one speaker and one of another (from the test
    trials: a target pair, and a file of another speaker), then their `embed`; empty when there is none."""
    trials = [line.split() for line in trial_list(data, "test").read_text().splitlines()]
    same = next((t[1:] for t in trials if len(t) == 3 and t[0] == "1"), None)
    speaker = None if same is None else same[0].split("/")[0]  # the uris are speaker/video/utterance
    other = next((uri for t in trials if len(t) == 3 for uri in t[1:] if uri.split("/")[0] != speaker), None)
    if same is None or other is None:
        return ""
    wav = " \\\n        ".join(str(voice_file(Path(data.name), uri)) for uri in (*same, other))
    return ("\nOnce validated, the same speaker or not, for any recordings (here the first two are one speaker, "
            f"the\nthird another):\n\n    spkemb-engine verify --db runs.db \\\n        {val_dir} \\\n        {wav}\n"
            "\nand their embeddings, one row each, for a back-end of your own (numpy.load reads the file):\n\n"
            f"    spkemb-engine embed --db runs.db -o voices.npz \\\n        {val_dir} \\\n        {wav}\n")


def _corpus(data: Path, speakers: int, seed: int, progress: OnProgress | None) -> None:
    """Write the corpus into ``data`` atomically: a folder beside it, renamed when complete."""
    yml = data / "database.yml"
    if yml.is_file():
        return
    if data.exists():
        raise SpkembError(f"{data} exists but holds no database.yml — move it away and run "
                          f"demo-workspace again")
    partial = data.with_name(data.name + ".partial")
    if partial.exists() and (partial / "voxceleb").exists():
        shutil.rmtree(partial)          # our own interrupted attempt
    partial.mkdir(parents=True, exist_ok=True)
    write_corpus(partial, plan(speakers, seed), seed, progress)
    os.replace(partial, data)


def make_demo_workspace(dir: str | os.PathLike, speakers: int = 60, seed: int = 0,
                        progress: OnProgress | None = None) -> Path:
    """Create the demo workspace in ``dir``; parts that already exist are left alone.

    Parameters
    ----------
    dir : path
        Workspace folder: ``data/`` (corpus), ``config.yml``, ``runs.db``, ``database.yml``
        (points at ``data/database.yml``) and ``README.txt``.
    speakers, seed : int
        As for ``make_demo_corpus``.
    progress : callable, optional
        ``progress(done, total)`` after each audio file.

    Returns
    -------
    Path
        The workspace folder.

    Raises
    ------
    ConfigError
        When the packaged demo config (engine/templates/demo.yml) is missing.
    """
    root = Path(dir).expanduser().resolve()
    config = ExperimentDir(root).config
    if not config.exists() and not TEMPLATE.is_file():
        raise ConfigError(f"the demo config template {TEMPLATE} is missing — reinstall spkemb "
                          f"(`make clean && make`)")
    root.mkdir(parents=True, exist_ok=True)
    _corpus(root / "data", speakers, seed, progress)
    pointer = root / "database.yml"
    if not pointer.exists():
        pointer.write_text(f"{MARKER}\n# The corpus is described in data/database.yml.\n"
                           "Requirements:\n  - data/database.yml\n")
    db = root / "runs.db"
    if not db.exists():
        from engine.store import open_store

        open_store(db).close()
    readme = root / "README.txt"
    if not readme.exists():
        trn_dir = ExperimentDir(Path(".")).training(VOICES, "train")
        val_dir = trn_dir.validation(VOICES, "test").root
        readme.write_text(README.format(dir=root, config=CONFIG, trn_dir=trn_dir.root, val_dir=val_dir,
                                        own_recordings=_own_recordings_example(root / "data", val_dir)))
    if not config.exists():
        # written last: the Makefile takes config.yml as the sign of a finished workspace
        atomic_write_text(config, demo_config(len(plan(speakers, seed).groups["train"])))
    return root


def demo_config(training_speakers: int) -> str:
    """The packaged demo config, its speakers per batch (``per_fold``) lowered to the corpus's
    ``training_speakers`` where they are fewer: a small corpus (``--speakers 12``: 8 training
    speakers) otherwise trains into a refusal once its index is built."""
    text = TEMPLATE.read_text()
    per_fold = re.search(r"^(\s*per_fold:\s*)(\d+)", text, flags=re.MULTILINE)
    if per_fold is None or int(per_fold.group(2)) <= training_speakers:
        return text
    return f"{text[:per_fold.start(2)]}{training_speakers}{text[per_fold.end(2):]}"
