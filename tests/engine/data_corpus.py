"""A tiny corpus for the data pipeline's tests, written with soundfile.

Speech files hold a ramp: sample ``i`` is ``i * RAMP`` (32-bit float wav), so the first value
of any crop tells the frame it starts at. Layout (database.yml beside the lists):

- Tiny.SpeakerVerification.Voices, train: speakers alice, bob, carol, dave with two 5 s files
  each (speech [0.2, 2.4] and [2.6, 4.9], annotated [0, 4.5]); ``eve`` has 0.6 s of speech;
  ``meeting`` holds alice [0.5, 3.0] and bob [2.0, 4.5] overlapping on [2.0, 3.0].
- Tiny.Collection.Noise: two white-noise files (3 s and 0.3 s, the second shorter than a chunk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
RAMP = 1e-5
SPEAKERS = ("alice", "bob", "carol", "dave")
SPEECH = ((0.2, 2.4), (2.6, 4.9))
ANNOTATED = (0.0, 4.5)
FILE_SECONDS = 5.0


def ramp(seconds: float) -> np.ndarray:
    """The content of every speech file: sample i is i * RAMP."""
    return (np.arange(int(seconds * RATE)) * RAMP).astype(np.float32)


def make_corpus(root: Path) -> Path:
    """Write the corpus under ``root``; return its database.yml."""
    (root / "wav").mkdir(parents=True)
    (root / "noise").mkdir()
    (root / "lists").mkdir()
    uris, rttm, uem = [], [], []
    for speaker in SPEAKERS:
        for k in range(2):
            uri = f"{speaker}_{k}"
            uris.append(uri)
            sf.write(root / "wav" / f"{uri}.wav", ramp(FILE_SECONDS), RATE, subtype="FLOAT")
            for start, end in SPEECH:
                rttm.append(f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} "
                            f"<NA> <NA> {speaker} <NA> <NA>")
            uem.append(f"{uri} 1 {ANNOTATED[0]:.3f} {ANNOTATED[1]:.3f}")
    uris.append("eve_0")
    sf.write(root / "wav" / "eve_0.wav", ramp(2.0), RATE, subtype="FLOAT")
    rttm.append("SPEAKER eve_0 1 0.100 0.600 <NA> <NA> eve <NA> <NA>")
    uem.append("eve_0 1 0.000 2.000")
    uris.append("meeting")
    sf.write(root / "wav" / "meeting.wav", ramp(FILE_SECONDS), RATE, subtype="FLOAT")
    rttm.append("SPEAKER meeting 1 0.500 2.500 <NA> <NA> alice <NA> <NA>")
    rttm.append("SPEAKER meeting 1 2.000 2.500 <NA> <NA> bob <NA> <NA>")
    uem.append("meeting 1 0.000 5.000")
    (root / "lists" / "train.lst").write_text("\n".join(uris) + "\n")
    (root / "lists" / "train.rttm").write_text("\n".join(rttm) + "\n")
    (root / "lists" / "train.uem").write_text("\n".join(uem) + "\n")

    rng = np.random.default_rng(0)
    for uri, seconds in (("white", 3.0), ("blip", 0.3)):
        noise = (0.1 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)
        sf.write(root / "noise" / f"{uri}.wav", noise, RATE, subtype="FLOAT")
    (root / "lists" / "noise.lst").write_text("white\nblip\n")

    database = root / "database.yml"
    database.write_text(
        "Databases:\n"
        "  Tiny: wav/{uri}.wav\n"
        "  Noise: noise/{uri}.wav\n"
        "Protocols:\n"
        "  Tiny:\n"
        "    SpeakerVerification:\n"
        "      Voices:\n"
        "        scope: database\n"
        "        train:\n"
        "          uri: lists/train.lst\n"
        "          annotation: lists/train.rttm\n"
        "          annotated: lists/train.uem\n"
        "  Noise:\n"
        "    Collection:\n"
        "      Background:\n"
        "        uri: lists/noise.lst\n")
    return database
