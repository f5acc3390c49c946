"""A VoxCeleb2-shaped protocol of any size, made of hard links to a few real wav files.

Real size without real disk: ``wav/idNNNNN/SESSION/NNNNN.wav`` directory entries all point
at a handful of source files (the demo corpus's), so a 1.09 M-file protocol costs inodes'
worth of directory entries, not 100 GB. The lists are in the demo corpus's database.yml
format (uri list, RTTM, UEM per subset, plus a VoxCeleb1-O-style trial list), so that
pyannote.database lists it exactly as it would list the real corpus. Used by
``bench/scale.py`` and by the tests of the cached training index. Torch-free.
"""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.demo.layout import OnProgress
from engine.errors import SpkembError

#: VoxCeleb2 dev: 5,994 speakers, 1,092,009 files (about 182 per speaker, 7.5 per session)
VOXCELEB2_FILES, VOXCELEB2_SPEAKERS = 1_092_009, 5_994
FILES_PER_SESSION = 7.5
#: VoxCeleb1-O: 37,720 trials over 4,874 files of 40 speakers
TEST_FILES, TEST_SPEAKERS, TRIALS = 4_874, 40, 37_720

DATABASE = "Scale"
PROTOCOL = "Scale.SpeakerVerification.VoxCeleb2"


def _session(rng: np.random.Generator) -> str:
    alphabet = np.array(list(string.ascii_letters + string.digits + "-_"))
    return "".join(rng.choice(alphabet, 11))


def _layout(files: int, speakers: int, first_id: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(uri, speaker) of ``files`` files spread over ``speakers`` speakers and their sessions."""
    per_speaker = np.full(speakers, files // speakers)
    per_speaker[:files % speakers] += 1
    rows: list[tuple[str, str]] = []
    for s, count in enumerate(per_speaker):
        speaker = f"id{first_id + s:05d}"
        sessions = [_session(rng) for _ in range(max(1, int(round(count / FILES_PER_SESSION))))]
        for k in range(int(count)):
            rows.append((f"{speaker}/{sessions[k % len(sessions)]}/{k + 1:05d}", speaker))
    return rows


def _link_all(root: Path, rows: list[tuple[str, str]], sources: list[Path],
              progress: OnProgress | None) -> list[float]:
    """Hard-link every uri's wav to a source file; returns each file's duration."""
    seconds = [sf.info(str(s)).duration for s in sources]
    durations: list[float] = []
    made: set[str] = set()
    for i, (uri, _) in enumerate(rows):
        target = root / "wav" / f"{uri}.wav"
        parent = os.path.dirname(target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        k = i % len(sources)
        if not os.path.exists(target):
            os.link(sources[k], target)
        durations.append(seconds[k])
        if progress is not None and (i + 1) % 10_000 == 0:
            progress(i + 1, len(rows))
    return durations


def _write_subset(lists: Path, name: str, rows: list[tuple[str, str]], durations: list[float]) -> None:
    with open(lists / f"{name}.lst", "w") as lst, open(lists / f"{name}.rttm", "w") as rttm, \
            open(lists / f"{name}.uem", "w") as uem:
        for (uri, speaker), seconds in zip(rows, durations, strict=True):
            lst.write(f"{uri}\n")
            rttm.write(f"SPEAKER {uri} 1 0.000 {seconds:.3f} <NA> <NA> {speaker} <NA> <NA>\n")
            uem.write(f"{uri} 1 0.000 {seconds:.3f}\n")


def _write_trials(path: Path, rows: list[tuple[str, str]], count: int, rng: np.random.Generator) -> None:
    by_speaker: dict[str, list[str]] = {}
    for uri, speaker in rows:
        by_speaker.setdefault(speaker, []).append(uri)
    speakers = sorted(by_speaker)
    with open(path, "w") as out:
        for t in range(count):
            a = speakers[int(rng.integers(len(speakers)))]
            same = t % 2 == 0 or len(speakers) == 1
            b = a if same else speakers[(speakers.index(a) + 1 + int(rng.integers(len(speakers) - 1)))
                                        % len(speakers)]
            ua, ub = rng.choice(by_speaker[a]), rng.choice(by_speaker[b])
            out.write(f"{int(same)} {ua} {ub}\n")


def database_yml() -> str:
    return (f"Databases:\n  {DATABASE}: voxceleb2/wav/{{uri}}.wav\n\n"
            f"Protocols:\n  {DATABASE}:\n    SpeakerVerification:\n      VoxCeleb2:\n"
            "        scope: global\n"
            "        train:\n          uri: voxceleb2/lists/train.lst\n"
            "          annotation: voxceleb2/lists/train.rttm\n"
            "          annotated: voxceleb2/lists/train.uem\n"
            "        test:\n          uri: voxceleb2/lists/test.lst\n"
            "          annotation: voxceleb2/lists/test.rttm\n"
            "          annotated: voxceleb2/lists/test.uem\n"
            "          trial: voxceleb2/lists/test.trial.txt\n")


def make_scaled_protocol(root: str | os.PathLike, sources: list[Path], files: int, *,
                         test_files: int = TEST_FILES, trials: int = TRIALS, seed: int = 0,
                         progress: OnProgress | None = None) -> Path:
    """Write a VoxCeleb2-shaped protocol of ``files`` training files under ``root``.

    Parameters
    ----------
    root : path
        A new or empty folder (hard links need it on the sources' filesystem).
    sources : list of Path
        Real wav files every entry is a hard link to (e.g. the demo corpus's).
    files : int
        Training files; speakers in VoxCeleb2's proportion (5,994 at 1,092,009 files; at least 2).
    test_files, trials : int, optional
        Size of the test subset and its trial list (VoxCeleb1-O's by default).
    seed : int, optional
        Same seed, same lists.
    progress : callable, optional
        ``progress(done, total)`` every 10,000 links.

    Returns
    -------
    Path
        ``root / "database.yml"`` defining ``Scale.SpeakerVerification.VoxCeleb2``.
    """
    root = Path(root)
    if not sources:
        raise SpkembError("no source wav files to link to — run `spkemb-engine demo-data DIR` first")
    rng = np.random.default_rng(seed)
    speakers = max(2, int(round(files * VOXCELEB2_SPEAKERS / VOXCELEB2_FILES)))
    train = _layout(files, speakers, 1, rng)
    test = _layout(test_files, min(TEST_SPEAKERS, max(1, test_files)), 10_001 + speakers, rng)
    base = root / "voxceleb2"
    lists = base / "lists"
    lists.mkdir(parents=True, exist_ok=True)
    sources = sorted(Path(s).resolve() for s in sources)
    _write_subset(lists, "train", train, _link_all(base, train, sources, progress))
    if test_files:
        _write_subset(lists, "test", test, _link_all(base, test, sources, None))
        _write_trials(lists / "test.trial.txt", test, trials, rng)
    yml = root / "database.yml"
    yml.write_text(database_yml())
    return yml
