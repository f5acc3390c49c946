"""A synthetic demo corpus laid out like VoxCeleb, MUSAN and AMI, so everything runs with no download.

Torch-free: numpy and soundfile only. ``make_demo_corpus`` writes the corpus and its
database.yml; ``make_demo_workspace`` adds a CPU-sized config.yml and a runs database for
``make demo``.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.console import say
from engine.demo.layout import MARKER, OnProgress, plan, write_corpus
from engine.demo.workspace import make_demo_workspace
from engine.errors import SpkembError
from engine.layout import ExperimentDir
from engine.progress import Progress
from engine.requests import DemoRequest

__all__ = ["cmd_demo_data", "cmd_demo_workspace", "make_demo_corpus", "make_demo_workspace"]

PROTOCOLS = ("Demo.SpeakerVerification.Voices", "Demo.Collection.BackgroundNoise",
             "Demo.Collection.Music", "Demo.SpeakerDiarization.Meetings")


def make_demo_corpus(root: str | os.PathLike, speakers: int = 60, seed: int = 0,
                     progress: OnProgress | None = None) -> Path:
    """Synthesize the demo corpus under ``root`` and return its database.yml.

    Parameters
    ----------
    root : path
        A new or empty folder, or one holding an earlier demo corpus (rewritten).
    speakers : int
        Number of speakers (at least 6): two thirds train, the rest split into development
        and test speakers, all three groups disjoint.
    seed : int
        Same seed, same bytes.
    progress : callable, optional
        Called as ``progress(done, total)`` after each audio file is written.

    Returns
    -------
    Path
        ``root / "database.yml"``, which defines the protocols listed in ``PROTOCOLS``.

    Raises
    ------
    SpkembError
        When ``root`` is a non-empty folder that is not a demo corpus, or ``speakers`` < 6.
    """
    root = corpus_folder(root)
    p = plan(speakers, seed)
    root.mkdir(parents=True, exist_ok=True)
    return write_corpus(root, p, seed, progress)


def corpus_folder(root: str | os.PathLike) -> Path:
    """``root``, where a demo corpus may be written: a new or empty folder, or an earlier demo corpus.

    Raises
    ------
    SpkembError
        ``root`` is a file, or a folder holding anything else.
    """
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise SpkembError(f"{root} is a file — give demo-data a new or empty folder")
    yml = root / "database.yml"
    if root.is_dir() and any(root.iterdir()):
        if not (yml.is_file() and yml.read_text().startswith(MARKER)):
            raise SpkembError(f"{root} is not empty and holds no demo corpus — give demo-data "
                              f"a new or empty folder so that nothing of yours is overwritten")
    return root


def cmd_demo_data(args: DemoRequest) -> int:
    """``spkemb-engine demo-data DIR [--speakers N] [--seed S]``."""
    corpus_folder(args.dir)  # refused in one line, before the progress line
    with Progress().phase("synthesizing audio files") as phase:
        yml = make_demo_corpus(args.dir, speakers=args.speakers, seed=args.seed, progress=phase.reach)
    say(f"demo corpus written: {yml}")
    say(f"protocols: {', '.join(PROTOCOLS)}")
    say(f"use it with --database {yml} (or export PYANNOTE_DATABASE_CONFIG={yml})")
    return 0


def cmd_demo_workspace(args: DemoRequest) -> int:
    """``spkemb-engine demo-workspace DIR``: corpus, config.yml, runs.db and README.txt."""
    root = Path(args.dir).expanduser()
    if ExperimentDir(root).config.is_file() and (root / "data" / "database.yml").is_file():
        # parts deleted since (a runs.db removed to start afresh) are made again, in a moment: the corpus is there
        missing = [name for name in ("runs.db", "database.yml", "README.txt") if not (root / name).exists()]
        if missing:
            make_demo_workspace(args.dir, speakers=args.speakers, seed=args.seed)
            say(f"demo workspace {root}: {', '.join(missing)} made again, the rest left as it is")
        else:
            say(f"demo workspace {root} already exists: left as it is")
        return 0
    with Progress().phase("synthesizing the demo corpus") as phase:
        made = make_demo_workspace(args.dir, speakers=args.speakers, seed=args.seed, progress=phase.reach)
    say(f"demo workspace ready: {made} (next steps in {Path(made) / 'README.txt'})")
    return 0
