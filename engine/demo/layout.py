"""The demo corpus on disk, in the real datasets' layouts, with its pyannote database.yml.

::

    DIR/database.yml
    DIR/voxceleb/wav/id10001/1zcIwhmdeo4/00001.wav        VoxCeleb (Nagrani et al. 2017)
    DIR/voxceleb/lists/{train,development,test}.{lst,rttm,uem}
    DIR/voxceleb/lists/{development,test}.trial.txt        reference uri1 uri2 (pyannote)
    DIR/voxceleb/veri_{dev,test}.txt                       1 id/sess/00001.wav id/sess/00002.wav
    DIR/musan/noise/free-sound/noise-free-sound-0000.wav   MUSAN (Snyder et al. 2015)
    DIR/musan/music/fma/music-fma-0000.wav
    DIR/musan/lists/{noise,music}.lst
    DIR/amicorpus/ES2004a/audio/ES2004a.Mix-Headset.wav   AMI (Carletta 2007)
    DIR/ami/lists/{development,test}.meetings.txt ; ami/rttms/SUBSET/URI.rttm ; ami/uems/SUBSET/URI.uem

Every random choice comes from a generator seeded by (seed, what, index), so a file's content
depends only on the seed and its own identity: same seed, same bytes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.demo import meetings, sounds, spectral, voice
from engine.errors import SpkembError

MARKER = "# Written by `spkemb-engine demo-data`: a synthetic corpus, see README (Demo corpus)."
SESSIONS = 3
DEV_MEETINGS = ("ES2011a",)
TEST_MEETINGS = ("ES2004a", "IS1009a")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_YOUTUBE = _ALNUM + "-_"

OnProgress = Callable[[int, int], None]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


@dataclass(frozen=True)
class Utterance:
    speaker: str
    session: str
    session_index: int
    number: int
    samples: int

    @property
    def uri(self) -> str:
        return f"{self.speaker}/{self.session}/{self.number:05d}"


@dataclass(frozen=True)
class Plan:
    """What to write: speaker groups, utterances, noises, music, meetings."""

    groups: dict[str, list[str]]                 # subset -> speaker ids
    utterances: dict[str, list[Utterance]]       # subset -> utterances
    noises: list[tuple[str, str, int]]           # (uri, kind, samples)
    music: list[tuple[str, int]]                 # (uri, samples)
    meetings: dict[str, list[tuple[str, list[str], int]]]   # subset -> (uri, speakers, samples)


def _samples(seconds: float) -> int:
    """Whole milliseconds, so that RTTM/UEM times (3 decimals) match the audio exactly."""
    return int(round(seconds * 1000)) * spectral.SAMPLE_RATE // 1000


def plan(speakers: int, seed: int) -> Plan:
    """Decide the corpus's contents (cheap; no audio)."""
    if speakers < 6:
        raise SpkembError(f"--speakers {speakers} is too few: the demo corpus needs at least 6 "
                          f"(2 for training, 2 for development, 2 for test)")
    held_out = max(4, speakers - round(2 * speakers / 3))
    n_dev = held_out // 2
    ids = [f"id{10001 + i}" for i in range(speakers)]
    groups = {"train": ids[:speakers - held_out],
              "development": ids[speakers - held_out:speakers - held_out + n_dev],
              "test": ids[speakers - held_out + n_dev:]}
    utterances: dict[str, list[Utterance]] = {}
    for subset, members in groups.items():
        utterances[subset] = []
        for spk in members:
            rng = _rng(seed, 0, int(spk[2:]))
            number = 0
            for k in range(SESSIONS):
                session = _ALNUM[rng.integers(len(_ALNUM))] + "".join(
                    _YOUTUBE[i] for i in rng.integers(0, len(_YOUTUBE), 10))
                # training speakers have 1-2 utterances per session (VoxCeleb is uneven too);
                # held-out speakers 2, for cross-session target trials
                count = int(rng.integers(1, 3)) if subset == "train" else 2
                for _ in range(count):
                    number += 1
                    seconds = float(np.exp(rng.uniform(np.log(2.0), np.log(8.0))))
                    utterances[subset].append(Utterance(spk, session, k, number, _samples(seconds)))
    rng = _rng(seed, 1)
    n_noise, n_music = min(12, max(4, speakers // 5)), min(8, max(3, speakers // 8))
    noises = [(f"noise/free-sound/noise-free-sound-{i:04d}", sounds.NOISE_KINDS[i % len(sounds.NOISE_KINDS)],
               _samples(rng.uniform(3, 12))) for i in range(n_noise)]
    music = [(f"music/fma/music-fma-{i:04d}", _samples(rng.uniform(5, 15))) for i in range(n_music)]
    # meetings last 2-3 minutes at the default size, less for small test corpora
    scale = min(1.0, max(0.2, speakers / 60))
    pool = groups["development"] + groups["test"]
    meets = {subset: [(uri, sorted(rng.choice(pool, size=min(len(pool), int(rng.integers(3, 5))),
                                              replace=False).tolist()),
                       _samples(rng.uniform(120, 180) * scale)) for uri in uris]
             for subset, uris in (("development", DEV_MEETINGS), ("test", TEST_MEETINGS))}
    return Plan(groups, utterances, noises, music, meets)


def trials(utts: list[Utterance], rng: np.random.Generator) -> list[tuple[int, Utterance, Utterance]]:
    """Every cross-session same-speaker pair, and as many different-speaker pairs, shuffled."""
    targets, others = [], []
    for a, b in itertools.combinations(utts, 2):
        if a.speaker == b.speaker:
            if a.session != b.session:
                targets.append((1, a, b))
        else:
            others.append((0, a, b))
    pick = rng.choice(len(others), size=min(len(targets), len(others)), replace=False)
    out = targets + [others[i] for i in sorted(pick)]
    return [out[i] for i in rng.permutation(len(out))]


def _write_wav(path: Path, x: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, spectral.SAMPLE_RATE, subtype="PCM_16")


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def _rttm(uri: str, start: float, end: float, label: str) -> str:
    return f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {label} <NA> <NA>"


def database_yml() -> str:
    """The database.yml text (paths relative to it, as pyannote.database resolves them)."""
    vox = {subset: (f"        {subset}:\n"
                    f"          uri: voxceleb/lists/{subset}.lst\n"
                    f"          annotation: voxceleb/lists/{subset}.rttm\n"
                    f"          annotated: voxceleb/lists/{subset}.uem\n")
           for subset in ("train", "development", "test")}
    ami = {subset: (f"        {subset}:\n"
                    f"          uri: ami/lists/{subset}.meetings.txt\n"
                    f"          annotation: ami/rttms/{subset}/{{uri}}.rttm\n"
                    f"          annotated: ami/uems/{subset}/{{uri}}.uem\n")
           for subset in ("development", "test")}
    return (f"{MARKER}\n"
            "Databases:\n"
            "  Demo:\n"
            "    - voxceleb/wav/{uri}.wav\n"
            "    - musan/{uri}.wav\n"
            "    - amicorpus/{uri}/audio/{uri}.Mix-Headset.wav\n"
            "\n"
            "Protocols:\n"
            "  Demo:\n"
            "    SpeakerVerification:\n"
            "      Voices:\n"
            "        scope: global\n"
            + vox["train"] + vox["development"]
            + "          trial: voxceleb/lists/development.trial.txt\n"
            + vox["test"]
            + "          trial: voxceleb/lists/test.trial.txt\n"
            "    Collection:\n"
            "      BackgroundNoise:\n"
            "        uri: musan/lists/noise.lst\n"
            "      Music:\n"
            "        uri: musan/lists/music.lst\n"
            "    SpeakerDiarization:\n"
            "      Meetings:\n"
            "        scope: database\n"
            + ami["development"] + ami["test"])


def voice_file(root: Path, uri: str) -> Path:
    """Utterance ``uri`` of the corpus at ``root`` (database.yml's template ``voxceleb/wav/{uri}.wav``)."""
    return root / "voxceleb" / "wav" / f"{uri}.wav"


def trial_list(root: Path, subset: str) -> Path:
    """The ``reference uri1 uri2`` trials of a subset (development, test) of the corpus at ``root``."""
    return root / "voxceleb" / "lists" / f"{subset}.trial.txt"


def write_corpus(root: Path, p: Plan, seed: int, progress: OnProgress | None = None) -> Path:
    """Synthesize and write every file of plan ``p`` under ``root``; return the database.yml path."""
    voices = {spk: voice.random_voice(_rng(seed, 2, int(spk[2:])))
              for members in p.groups.values() for spk in members}
    total = (sum(len(u) for u in p.utterances.values()) + len(p.noises) + len(p.music)
             + sum(len(m) for m in p.meetings.values()))
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    vox = root / "voxceleb"
    for subset, utts in p.utterances.items():
        for u in utts:
            channel = voice.random_channel(_rng(seed, 3, int(u.speaker[2:]), u.session_index))
            rng = _rng(seed, 4, int(u.speaker[2:]), u.number)
            x, _ = voice.synthesize(rng, voices[u.speaker], channel, u.samples)
            _write_wav(voice_file(root, u.uri), x)
            tick()
        _write_lines(vox / "lists" / f"{subset}.lst", [u.uri for u in utts])
        _write_lines(vox / "lists" / f"{subset}.rttm",
                     [_rttm(u.uri, 0.0, u.samples / spectral.SAMPLE_RATE, u.speaker) for u in utts])
        _write_lines(vox / "lists" / f"{subset}.uem",
                     [f"{u.uri} 1 0.000 {u.samples / spectral.SAMPLE_RATE:.3f}" for u in utts])
        if subset != "train":
            tr = trials(utts, _rng(seed, 5, 0 if subset == "development" else 1))
            _write_lines(trial_list(root, subset), [f"{r} {a.uri} {b.uri}" for r, a, b in tr])
            _write_lines(vox / f"veri_{'dev' if subset == 'development' else 'test'}.txt",
                         [f"{r} {a.uri}.wav {b.uri}.wav" for r, a, b in tr])

    musan = root / "musan"
    for i, (uri, kind, n) in enumerate(p.noises):
        _write_wav(musan / f"{uri}.wav", sounds.noise(_rng(seed, 6, i), kind, n))
        tick()
    for i, (uri, n) in enumerate(p.music):
        _write_wav(musan / f"{uri}.wav", sounds.music(_rng(seed, 7, i), n))
        tick()
    _write_lines(musan / "lists" / "noise.lst", [uri for uri, _, _ in p.noises])
    _write_lines(musan / "lists" / "music.lst", [uri for uri, _ in p.music])

    for subset, meets in p.meetings.items():
        for i, (uri, members, n) in enumerate(meets):
            rng = _rng(seed, 8, 0 if subset == "development" else 1, i)
            x, turns = meetings.meeting(rng, {s: voices[s] for s in members}, n)
            _write_wav(root / "amicorpus" / uri / "audio" / f"{uri}.Mix-Headset.wav", x)
            _write_lines(root / "ami" / "rttms" / subset / f"{uri}.rttm",
                         [_rttm(uri, t.start, t.end, t.speaker) for t in turns])
            _write_lines(root / "ami" / "uems" / subset / f"{uri}.uem",
                         [f"{uri} 1 0.000 {n / spectral.SAMPLE_RATE:.3f}"])
            tick()
        _write_lines(root / "ami" / "lists" / f"{subset}.meetings.txt", [uri for uri, _, _ in meets])

    yml = root / "database.yml"
    yml.write_text(database_yml())
    return yml
