"""The phone inventory of the demo voices: formant targets, durations, noise bands."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phone:
    """One phone's targets: formants F1-F3 (Hz, adult male reference), kind, duration, level."""

    kind: str                          # vowel, glide, nasal, fricative, stop
    formants: tuple[float, float, float]
    ms: float                          # mean duration at speaking rate 1
    voiced: bool = True
    noise_hz: float = 0.0              # centre of the frication / burst band
    noise_oct: float = 1.0             # its width in octaves
    level: float = 1.0


# Vowel formants: Peterson & Barney (1952) male averages; consonant "formants" are the loci
# the vowel transitions move towards (Delattre et al. 1955).
PHONES: dict[str, Phone] = {
    "i": Phone("vowel", (270, 2290, 3010), 110), "I": Phone("vowel", (390, 1990, 2550), 80),
    "e": Phone("vowel", (530, 1840, 2480), 100), "ae": Phone("vowel", (660, 1720, 2410), 130),
    "a": Phone("vowel", (730, 1090, 2440), 130), "o": Phone("vowel", (570, 840, 2410), 120),
    "U": Phone("vowel", (440, 1020, 2240), 80), "u": Phone("vowel", (300, 870, 2240), 110),
    "V": Phone("vowel", (640, 1190, 2390), 90), "er": Phone("vowel", (490, 1350, 1690), 120),
    "l": Phone("glide", (360, 1300, 2700), 60, level=0.6), "r": Phone("glide", (420, 1300, 1600), 60, level=0.6),
    "w": Phone("glide", (300, 700, 2200), 55, level=0.5), "j": Phone("glide", (280, 2200, 2900), 55, level=0.5),
    "m": Phone("nasal", (250, 1000, 2200), 70, level=0.3), "n": Phone("nasal", (250, 1600, 2600), 65, level=0.3),
    "s": Phone("fricative", (400, 1700, 2600), 110, False, 6000, 0.7, 0.5),
    "S": Phone("fricative", (400, 1900, 2500), 110, False, 3500, 0.8, 0.55),
    "f": Phone("fricative", (400, 1000, 2300), 100, False, 4500, 2.0, 0.15),
    "z": Phone("fricative", (400, 1700, 2600), 90, True, 6000, 0.7, 0.3),
    "v": Phone("fricative", (400, 1000, 2300), 80, True, 4500, 2.0, 0.1),
    "h": Phone("fricative", (500, 1500, 2500), 70, False, 0.0, 0.0, 0.25),
    "p": Phone("stop", (400, 900, 2300), 90, False, 1200, 1.5, 0.4),
    "t": Phone("stop", (400, 1700, 2600), 90, False, 4500, 1.2, 0.6),
    "k": Phone("stop", (400, 2000, 2400), 95, False, 2500, 1.0, 0.6),
    "b": Phone("stop", (400, 900, 2300), 70, True, 1200, 1.5, 0.25),
    "d": Phone("stop", (400, 1700, 2600), 70, True, 4500, 1.2, 0.3),
    "g": Phone("stop", (400, 2000, 2400), 75, True, 2500, 1.0, 0.3),
}
VOWELS = [p for p, ph in PHONES.items() if ph.kind == "vowel"]
ONSETS = [p for p, ph in PHONES.items() if ph.kind != "vowel"]
CODAS = ["m", "n", "s", "z", "t", "d", "k", "l", "r", "f"]
VOWEL_INDEX = {v: i for i, v in enumerate(VOWELS)}
