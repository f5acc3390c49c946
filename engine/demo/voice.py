"""A source–filter voice synthesizer: speech-like, speaker-specific, vectorised numpy.

The source is a glottal pulse train (Rosenberg 1971 pulse shape, per-speaker open and speed
quotients, hence spectral tilt) with jitter and shimmer, plus aspiration noise; the filter is a
cascade of five second-order resonators (Klatt 1980, "Software for a cascade/parallel formant
synthesizer", JASA 67(3)) whose formants follow phone targets scaled by the speaker's
vocal-tract length. Fricatives and bursts are band-shaped noise.

Time-varying filtering is done in the short-time Fourier domain: every 8 ms frame of the
excitation is multiplied by that frame's resonator response, evaluated exactly on the FFT bins,
and the frames are overlap-added. That keeps the whole synthesis in a handful of array
operations per utterance, without per-sample Python loops or scipy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from engine.demo.phones import CODAS, ONSETS, PHONES, VOWEL_INDEX, VOWELS, Phone
from engine.demo.spectral import FREQS, HOP, LOG2F, NFFT, SAMPLE_RATE, colored_noise, istft, resonators, stft

_FRAMES_PER_S = SAMPLE_RATE / HOP


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: everything that makes it sound like itself."""

    f0: float                  # mean fundamental frequency (Hz)
    f0_range: float            # pitch accent size (semitones)
    vtl: float                 # formant scale: 1 / relative vocal-tract length
    vowel_shift: np.ndarray    # (vowels, 3) idiosyncratic formant factors (accent, anatomy)
    high_formants: tuple[float, float]  # F4, F5 (Hz): mostly anatomy, little phonetics
    bandwidth: float           # formant bandwidth factor
    open_quotient: float       # Rosenberg pulse shape -> spectral tilt
    speed_quotient: float
    breath: float              # aspiration noise mixed into voicing
    jitter: float              # relative period perturbation
    shimmer: float             # relative pulse amplitude perturbation
    rate: float                # speaking rate (phones per second factor)
    fric_shift: float          # fricative band centre factor
    vowel_prefs: np.ndarray    # probabilities of each vowel (lexical habits)


def random_voice(rng: np.random.Generator) -> Voice:
    """Draw a speaker: female or male-like source, vocal-tract length, habits."""
    female = rng.random() < 0.5
    f0 = float(np.exp(rng.normal(np.log(205.0 if female else 115.0), 0.13)))
    vtl = float(rng.normal(1.16 if female else 1.0, 0.05))
    prefs = rng.dirichlet(np.full(len(VOWELS), 2.0))
    return Voice(
        f0=f0, f0_range=float(rng.uniform(1.0, 4.0)), vtl=vtl,
        vowel_shift=np.exp(rng.normal(0.0, 0.06, (len(VOWELS), 3))),
        high_formants=(float(3500 * vtl * np.exp(rng.normal(0, 0.05))),
                       float(4500 * vtl * np.exp(rng.normal(0, 0.05)))),
        bandwidth=float(rng.uniform(0.7, 1.5)),
        open_quotient=float(rng.uniform(0.4, 0.75)), speed_quotient=float(rng.uniform(1.5, 4.0)),
        breath=float(rng.uniform(0.01, 0.12) * (1.6 if female else 1.0)),
        jitter=float(rng.uniform(0.003, 0.015)), shimmer=float(rng.uniform(0.02, 0.08)),
        rate=float(rng.uniform(0.8, 1.25)), fric_shift=float(rng.uniform(0.85, 1.15)),
        vowel_prefs=prefs,
    )


@dataclass(frozen=True)
class Channel:
    """A recording channel: smooth equaliser (dB per FFT bin), level and background noise."""

    eq_db: np.ndarray          # (NFFT // 2 + 1,)
    peak: float                # peak amplitude of the written file
    snr_db: float              # speech-to-background-noise ratio
    noise_tilt: float          # background noise colour (0 white, 1 pink, 2 brown)
    f0_shift: float = 0.0      # semitones: a speaker's pitch differs a little from day to day
    effort: float = 0.0        # spectral tilt change (dB per octave above 500 Hz)


def random_channel(rng: np.random.Generator, strength: float = 1.0) -> Channel:
    """A session's channel: a few random log-frequency ripples, optional band limits."""
    x = np.clip((LOG2F - np.log2(100.0)) / np.log2(80.0), 0.0, 1.0)    # 100 Hz..8 kHz -> 0..1
    eq = np.zeros_like(x)
    for k in range(1, 5):
        eq += rng.normal(0.0, 3.0 / k) * np.cos(np.pi * k * x + rng.uniform(0, 2 * np.pi))
    eq += rng.normal(0.0, 2.0) * (x - 0.5) * 2          # overall brightness of the microphone
    if rng.random() < 0.3:                               # telephone-like or cheap microphone
        cutoff = rng.uniform(3400, 7000)
        eq -= 24.0 * np.clip(np.log2(np.maximum(FREQS, 1.0) / cutoff), 0.0, None)
    if rng.random() < 0.5:
        cutoff = rng.uniform(80, 300)
        eq -= 12.0 * np.clip(np.log2(cutoff / np.maximum(FREQS, 1.0)), 0.0, 3.0)
    return Channel(eq_db=(strength * eq).astype(np.float32), peak=float(rng.uniform(0.3, 0.9)),
                   snr_db=float(rng.uniform(20.0, 40.0)), noise_tilt=float(rng.uniform(0.0, 2.0)),
                   f0_shift=float(rng.normal(0.0, 0.6) * strength),
                   effort=float(rng.normal(0.0, 1.0) * strength))


def _phones(rng: np.random.Generator, voice: Voice, seconds: float) -> list[tuple[str, float, bool, bool]]:
    """A babble of syllables (C)V(C) in words and phrases filling about ``seconds``.

    Returns (phone or "#" for a pause, duration in s, stressed, phrase-final) tuples.
    """
    out: list[tuple[str, float, bool, bool]] = [("#", rng.uniform(0.05, 0.25), False, False)]
    total = out[0][1]
    while total < seconds:
        words = int(rng.integers(2, 7))
        for w in range(words):
            syllables = int(rng.integers(1, 4))
            stress = int(rng.integers(syllables))
            for s in range(syllables):
                final = w == words - 1 and s == syllables - 1
                parts = []
                if rng.random() < 0.8:
                    parts.append(ONSETS[rng.integers(len(ONSETS))])
                parts.append(VOWELS[rng.choice(len(VOWELS), p=voice.vowel_prefs)])
                if rng.random() < 0.35:
                    parts.append(CODAS[rng.integers(len(CODAS))])
                for p in parts:
                    ms = PHONES[p].ms * rng.uniform(0.7, 1.3) / voice.rate
                    if PHONES[p].kind == "vowel" and s == stress:
                        ms *= 1.35
                    if final:
                        ms *= 1.3                    # phrase-final lengthening
                    out.append((p, ms / 1000.0, s == stress, final and PHONES[p].kind == "vowel"))
                    total += ms / 1000.0
        pause = rng.uniform(0.15, 0.5)
        out.append(("#", pause, False, False))
        total += pause
    return out


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along the first axis (edges held), for coarticulation."""
    if width <= 1:
        return x
    pad = np.concatenate([np.repeat(x[:1], width // 2, 0), x, np.repeat(x[-1:], width - 1 - width // 2, 0)])
    c = np.cumsum(pad, axis=0, dtype=np.float64)
    c = np.concatenate([np.zeros_like(c[:1]), c])
    return ((c[width:] - c[:-width]) / width).astype(np.float32)


@dataclass
class Tracks:
    """Frame-rate control tracks (one row every HOP samples)."""

    formants: np.ndarray       # (frames, 5) Hz
    bandwidths: np.ndarray     # (frames, 5) Hz
    voicing: np.ndarray        # (frames,) amplitude of the pulse train
    aspiration: np.ndarray     # (frames,) noise through the vocal tract
    frication: np.ndarray      # (frames,) band noise amplitude
    fric_hz: np.ndarray        # (frames,) band centre
    fric_oct: np.ndarray       # (frames,) band width (octaves)
    semitones: np.ndarray      # (frames,) pitch relative to the speaker's mean
    speech: list[tuple[float, float]]  # phrase spans (s)


class _Segment(NamedTuple):
    """One phone (or "#" for a pause) on the frame grid: frames ``start:end``."""

    phone: str
    start: int
    end: int
    stressed: bool
    final: bool


def _segments(seq: list[tuple[str, float, bool, bool]], n_frames: int) -> list[_Segment]:
    """Lay ``seq`` (from ``_phones``) end to end on the frame grid, cut at ``n_frames``."""
    out: list[_Segment] = []
    t = 0
    for p, dur, stressed, final in seq:
        if t >= n_frames:
            break
        n = max(1, int(round(dur * _FRAMES_PER_S)))
        out.append(_Segment(p, t, min(t + n, n_frames), stressed, final))
        t += n
    return out


def _phrase_spans(segments: list[_Segment]) -> list[tuple[float, float]]:
    """The spans of speech between pauses, in seconds."""
    spans: list[tuple[float, float]] = []
    start = None
    for seg in segments:
        if seg.phone == "#":
            if start is not None:
                spans.append((start / _FRAMES_PER_S, seg.start / _FRAMES_PER_S))
                start = None
        elif start is None:
            start = seg.start
    if start is not None:
        spans.append((start / _FRAMES_PER_S, segments[-1].end / _FRAMES_PER_S))
    return spans


def _neutral_tracks(voice: Voice, n_frames: int, speech: list[tuple[float, float]]) -> Tracks:
    """Unsmoothed tracks of silence through a neutral (schwa) vocal tract, at the mean pitch."""
    F = np.zeros((n_frames, 5), np.float32)
    F[:, 3:] = voice.high_formants
    F[:, :3] = np.array(PHONES["V"].formants) * voice.vtl
    B = np.array([70, 90, 140, 220, 280], np.float32) * voice.bandwidth
    return Tracks(formants=F, bandwidths=np.broadcast_to(B, F.shape),
                  voicing=np.zeros(n_frames, np.float32), aspiration=np.zeros(n_frames, np.float32),
                  frication=np.zeros(n_frames, np.float32),
                  fric_hz=np.full(n_frames, 4000.0, np.float32), fric_oct=np.ones(n_frames, np.float32),
                  semitones=np.zeros(n_frames, np.float32), speech=speech)


def _place_sonorant(rng: np.random.Generator, voice: Voice, tr: Tracks, ph: Phone, seg: _Segment) -> None:
    """Vowel, glide or nasal: voicing with breath, a pitch accent if stressed, a final fall or rise."""
    a, b = seg.start, seg.end
    tr.voicing[a:b] = ph.level * (1.4 if seg.stressed else 1.0)
    tr.aspiration[a:b] = voice.breath * tr.voicing[a:b]
    if seg.stressed:       # pitch accent: a bump centred on the stressed vowel
        centre, width = (a + b) / 2, max(b - a, 6)
        idx = np.arange(max(0, a - width), min(len(tr.semitones), b + width))
        tr.semitones[idx] += voice.f0_range * rng.uniform(0.5, 1.3) * np.exp(-0.5 * ((idx - centre) / (width / 2)) ** 2)
    if seg.final:
        tr.semitones[a:b] += np.linspace(0, -2.0 if rng.random() < 0.85 else 2.5, b - a)


def _place_fricative(voice: Voice, tr: Tracks, ph: Phone, seg: _Segment) -> None:
    """Band noise (weakly voiced if the fricative is), or /h/: noise through the tract."""
    a, b = seg.start, seg.end
    tr.voicing[a:b] = 0.25 if ph.voiced else 0.0
    if ph.noise_hz:
        tr.frication[a:b] = ph.level
        tr.fric_hz[a:b], tr.fric_oct[a:b] = ph.noise_hz * voice.fric_shift, ph.noise_oct
    else:
        tr.aspiration[a:b] = ph.level


def _place_stop(voice: Voice, tr: Tracks, ph: Phone, seg: _Segment) -> None:
    """Closure (a voice bar if voiced), a two-frame burst, then aspiration if voiceless."""
    a, b = seg.start, seg.end
    closure = max(1, int(0.6 * (b - a)))
    tr.voicing[a:a + closure] = 0.12 if ph.voiced else 0.0
    burst = slice(a + closure, min(b, a + closure + 2))
    tr.frication[burst], tr.fric_hz[burst], tr.fric_oct[burst] = ph.level, ph.noise_hz * voice.fric_shift, ph.noise_oct
    if not ph.voiced:
        tr.aspiration[a + closure + 2:b] = 0.3


def _place_phone(rng: np.random.Generator, voice: Voice, tr: Tracks, seg: _Segment) -> None:
    """Write one phone's formant targets and sources into its frames of ``tr``."""
    ph = PHONES[seg.phone]
    target = np.array(ph.formants, np.float32) * voice.vtl
    if ph.kind == "vowel":
        target = target * voice.vowel_shift[VOWEL_INDEX[seg.phone]]
    tr.formants[seg.start:seg.end, :3] = target
    if ph.kind in ("vowel", "glide", "nasal"):
        _place_sonorant(rng, voice, tr, ph, seg)
    elif ph.kind == "fricative":
        _place_fricative(voice, tr, ph, seg)
    else:
        _place_stop(voice, tr, ph, seg)


def _add_intonation(rng: np.random.Generator, semitones: np.ndarray) -> None:
    """Declination over the utterance (Pierrehumbert 1980) and a slow random drift, in place."""
    n_frames = len(semitones)
    semitones += np.linspace(1.0, -1.0, n_frames) * rng.uniform(0.5, 2.0)
    semitones += _smooth(rng.normal(0, 0.6, n_frames).astype(np.float32), 25)


def _coarticulated(tr: Tracks) -> Tracks:
    """Smooth the step-wise targets into the glides between phones."""
    return replace(tr, formants=_smooth(tr.formants, 6), voicing=_smooth(tr.voicing, 3),
                   aspiration=_smooth(tr.aspiration, 3), frication=_smooth(tr.frication, 2),
                   semitones=_smooth(tr.semitones, 5))


def _tracks(rng: np.random.Generator, voice: Voice, n_frames: int) -> Tracks:
    """Control tracks for ``n_frames`` frames of babble by ``voice``."""
    segments = _segments(_phones(rng, voice, n_frames * HOP / SAMPLE_RATE), n_frames)
    tr = _neutral_tracks(voice, n_frames, speech=_phrase_spans(segments))
    for seg in segments:
        if seg.phone != "#":
            _place_phone(rng, voice, tr, seg)
    _add_intonation(rng, tr.semitones)
    return _coarticulated(tr)


def _glottal_pulse(voice: Voice, f0: float) -> np.ndarray:
    """Derivative of a Rosenberg (1971) glottal flow pulse (lip radiation included), unit energy."""
    period = SAMPLE_RATE / f0
    open_len = voice.open_quotient * period
    rise = open_len * voice.speed_quotient / (1 + voice.speed_quotient)
    fall = open_len - rise
    n = np.arange(int(np.ceil(open_len)) + 2, dtype=np.float64)
    flow = np.where(n < rise, 0.5 * (1 - np.cos(np.pi * n / rise)),
                    np.where(n < open_len, np.cos(0.5 * np.pi * (n - rise) / max(fall, 1e-3)), 0.0))
    d = np.diff(flow, prepend=0.0)
    return (d / np.sqrt(np.sum(d * d))).astype(np.float32)


def synthesize(rng: np.random.Generator, voice: Voice, channel: Channel, n_samples: int,
               background: bool = True) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One utterance of babble by ``voice`` through ``channel``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness (same state, same samples).
    voice, channel : Voice, Channel
    n_samples : int
        Exact length at 16 kHz.
    background : bool
        Add the channel's background noise.

    Returns
    -------
    waveform : np.ndarray
        (n_samples,) float32, peak ``channel.peak``.
    speech : list of (start, end)
        Phrase spans in seconds (speech between pauses).
    """
    n_frames = n_samples // HOP + 2
    tr = _tracks(rng, voice, n_frames)
    # pulse train: one impulse per glottal period, with jitter and shimmer
    f0_frames = voice.f0 * 2.0 ** ((tr.semitones + channel.f0_shift) / 12.0)
    pos = np.arange(n_samples, dtype=np.float32) / HOP
    f0 = np.interp(pos, np.arange(n_frames), f0_frames).astype(np.float64)
    phase = np.cumsum(f0 / SAMPLE_RATE)
    idx = np.flatnonzero(np.diff(np.floor(phase))) + 1
    idx = idx + np.round(rng.normal(0, voice.jitter, idx.size) * SAMPLE_RATE / f0[idx]).astype(np.int64)
    idx = np.clip(idx, 0, n_samples - 1)
    amp = np.interp(idx / HOP, np.arange(n_frames), tr.voicing) * (1 + voice.shimmer * rng.standard_normal(idx.size))
    pulses = np.zeros(n_samples, np.float32)
    np.add.at(pulses, idx, (amp * np.sqrt(SAMPLE_RATE / f0[idx])).astype(np.float32))
    noise = rng.standard_normal(n_samples).astype(np.float32)

    tract = resonators(tr.formants, tr.bandwidths)
    glottal = np.fft.rfft(_glottal_pulse(voice, voice.f0), NFFT).astype(np.complex64)
    effort = 10.0 ** (channel.effort * np.clip(LOG2F - np.log2(500.0), 0, None) / 20.0)
    fric = np.exp(-0.5 * ((LOG2F[None, :] - np.log2(tr.fric_hz)[:, None]) / tr.fric_oct[:, None]) ** 2)
    gain = (10.0 ** (channel.eq_db / 20.0)).astype(np.float32)
    spec = stft(pulses, n_frames) * (tract * (glottal * effort))
    spec += stft(noise, n_frames) * (tract * tr.aspiration[:, None] + fric * tr.frication[:, None])
    x = istft(spec * gain, n_samples)
    if background:
        level = np.sqrt(np.mean(x ** 2)) * 10.0 ** (-channel.snr_db / 20.0)
        x = x + level * colored_noise(rng, n_samples, channel.noise_tilt)
    x *= channel.peak / (np.max(np.abs(x)) + 1e-9)
    return x.astype(np.float32), tr.speech
