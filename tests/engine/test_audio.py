"""engine.data.audio: crops read exactly, other rates and channel counts converted, bad files named."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_corpus import RAMP, RATE, ramp

from engine.data.audio import read_crop, read_file
from engine.data.audio_checks import OPEN_SIZES, audio_info, check_files
from engine.errors import AudioError


@pytest.fixture
def ramp_wav(tmp_path: Path) -> str:
    path = tmp_path / "ramp.wav"
    sf.write(path, ramp(3.0), RATE, subtype="FLOAT")
    return str(path)


def test_crop_starts_at_its_frame_and_has_its_length(ramp_wav: str) -> None:
    crop = read_crop(ramp_wav, 1.25, 0.5, RATE)
    assert crop.dtype == np.float32 and crop.shape == (8000,)
    np.testing.assert_allclose(crop, np.arange(20000, 28000) * RAMP, rtol=1e-6)
    out = np.full(8000, 7.0, dtype=np.float32)
    assert read_crop(ramp_wav, 0.0, 0.5, RATE, out=out) is out
    assert out[0] == 0.0 and out[-1] == pytest.approx(7999 * RAMP)


def test_crop_past_the_end_is_zero_padded(ramp_wav: str) -> None:
    crop = read_crop(ramp_wav, 2.75, 0.5, RATE)
    assert crop[3999] == pytest.approx(47999 * RAMP)
    assert not crop[4000:].any()


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_16_bit_files_read_as_libsndfile_scales_them(tmp_path: Path, channels: int, fmt: str) -> None:
    rng = np.random.default_rng(0)
    samples = rng.integers(-32768, 32767, size=(RATE, channels)).astype(np.int16)
    path = tmp_path / f"pcm16.{fmt}"
    sf.write(path, samples, RATE, subtype="PCM_16")
    expected = sf.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)
    np.testing.assert_allclose(read_crop(path, 0.25, 0.5, RATE), expected[4000:12000], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(read_file(path, RATE), expected, rtol=1e-6, atol=1e-7)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path: Path) -> None:
    t = np.arange(int(2.0 * 44100)) / 44100
    tone = np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([0.6 * tone, 0.2 * tone], axis=1), 44100)
    info = audio_info(path)
    assert (info.samplerate, info.channels) == (44100, 2)

    crop = read_crop(path, 0.5, 1.0, RATE)
    assert crop.shape == (RATE,)
    expected = 0.4 * np.sin(2 * np.pi * 440 * (0.5 + np.arange(RATE) / RATE))
    # away from the crop's edges, where the resampling filter lacks context
    np.testing.assert_allclose(crop[200:-200], expected[200:-200], atol=0.01)

    whole = read_file(path, RATE)
    assert whole.shape == (2 * RATE,)
    assert np.sqrt(np.mean(whole[1000:-1000] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.01)


def test_check_files_names_every_bad_file(tmp_path: Path, ramp_wav: str) -> None:
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"this is not a RIFF file at all" * 20)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), RATE)
    missing = tmp_path / "missing.wav"
    nothing = tmp_path / "nothing.wav"  # 0 bytes: libsndfile said `Error opening 9` (a descriptor's number)
    nothing.write_bytes(b"")
    problems = check_files([ramp_wav, corrupt, empty, missing, corrupt, nothing])
    assert [p.path for p in problems] == [str(corrupt), str(empty), str(missing), str(nothing)]
    assert "cannot be read as audio" in problems[0].problem
    assert problems[0].problem.startswith(f"audio file {corrupt} cannot be read as audio: Format not recognised")
    assert "no audio frames" in problems[1].problem
    assert "does not exist" in problems[2].problem
    assert problems[3].problem.startswith(f"audio file {nothing} is empty (0 bytes) — fix or replace the file")
    assert all(p.path in p.problem for p in problems)


def test_a_file_cut_short_and_things_that_are_no_regular_file_are_named(tmp_path: Path, ramp_wav: str) -> None:
    whole = Path(ramp_wav).read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:len(whole) // 2])
    size = whole.index(b"data") + 4
    # the open sizes writers to a pipe leave (0: libsndfile reads no frame, said as such)
    opened = [open_size for open_size in OPEN_SIZES if open_size]
    streamed = [tmp_path / f"streamed-{open_size:x}.wav" for open_size in opened]
    for path, open_size in zip(streamed, opened, strict=True):
        path.write_bytes(whole[:size] + open_size.to_bytes(4, "little") + whole[size + 4:])
    pipe = tmp_path / "pipe.wav"
    os.mkfifo(pipe)  # opened without blocking, and named
    device = tmp_path / "zero.wav"
    device.symlink_to("/dev/zero")  # would be read without end
    problems = check_files([ramp_wav, cut, *streamed, pipe, device, tmp_path])
    assert [p.path for p in problems] == [str(cut), str(pipe), str(device), str(tmp_path)]
    assert f"cut short: its WAV header counts {len(whole) - len(whole) // 2} more bytes" in problems[0].problem
    assert all("is not a regular file (a device, pipe or folder)" in p.problem for p in problems[1:])
    assert {audio_info(path).frames for path in streamed} == {audio_info(ramp_wav).frames}


def test_check_files_counts_each_file_as_its_check_ends(tmp_path: Path, ramp_wav: str) -> None:
    done: list[int] = []
    problems = check_files([ramp_wav, tmp_path / "missing.wav", ramp_wav], advance=done.append)
    assert done == [1, 1] and len(problems) == 1  # the duplicate is checked, and counted, once


def test_a_path_with_its_extension_twice_is_named_with_the_one_that_exists(tmp_path: Path, ramp_wav: str) -> None:
    doubled, absent = f"{ramp_wav}.wav", str(tmp_path / "absent.wav.wav")
    problems = check_files([doubled, absent])
    assert problems[0].problem.startswith(f"audio file {doubled} does not exist, but {ramp_wav} does: ")
    assert "adds .wav again" in problems[0].problem
    assert problems[1].problem.startswith(f"audio file {absent} does not exist — ")  # no such file either way
    with pytest.raises(AudioError, match="adds .wav again"):
        read_crop(doubled, 0.0, 0.1, RATE)


#: the first bytes of an .m4a as VoxCeleb2 ships it (an MP4 `ftyp` box) and of a shorten-compressed .sph
M4A_HEAD = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom\x00\x00\x00\x00"
SPH_HEAD = (b"NIST_1A\n   1024\nsample_count -i 16000\nsample_rate -i 8000\nchannel_count -i 1\n"
            b"sample_coding -s26 pcm,embedded-shorten-v2.00\nend_head\n").ljust(1024, b" ")


@pytest.mark.parametrize(("name", "head", "says"), [
    ("00001.m4a", M4A_HEAD, ("AAC audio in an MP4 container", "`ffmpeg -i IN.m4a -ac 1 -ar 16000 OUT.wav`")),
    ("sw02001.sph", SPH_HEAD, ("shorten-compressed NIST SPHERE", "`sph2pipe -f wav IN.sph OUT.wav`")),
])
def test_a_container_soundfile_cannot_decode_is_named_with_its_conversion(
        tmp_path: Path, name: str, head: bytes, says: tuple[str, str]) -> None:
    path = tmp_path / name
    path.write_bytes(head + bytes(range(256)) * 40)
    (problem,) = check_files([path])
    with pytest.raises(AudioError) as error:
        read_crop(path, 0.0, 0.1, RATE)
    for text in (problem.problem, str(error.value)):
        assert text.startswith(f"audio file {path} is {says[0]}") and says[1] in text
        assert "convert the corpus to wav or flac" in text and "database.yml" in text


def test_a_nist_sphere_file_soundfile_reads_is_read(tmp_path: Path) -> None:
    path = tmp_path / "pcm.sph"
    sf.write(path, ramp(1.0), RATE, format="NIST", subtype="PCM_16")
    assert not check_files([path])
    assert read_crop(path, 0.0, 0.5, RATE).shape == (RATE // 2,)


def test_reading_a_corrupt_file_raises_naming_it(tmp_path: Path) -> None:
    corrupt = tmp_path / "garbage.wav"
    corrupt.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(AudioError) as error:
        read_crop(corrupt, 0.0, 0.1, RATE)
    assert error.value.path == str(corrupt) and str(corrupt) in str(error.value)


@pytest.mark.parametrize("bad, subtype, channels", [(np.nan, "FLOAT", 1), (np.inf, "DOUBLE", 1), (-np.inf, "FLOAT", 2)])
def test_a_float_file_holding_nan_or_infinite_samples_is_named(tmp_path: Path, bad: float, subtype: str,
                                                               channels: int) -> None:
    """Such a file would make every embedding of it NaN (apply wrote them, exit 0) or the loss NaN."""
    samples = np.full((RATE, channels), 0.1, dtype=np.float64)
    samples[RATE // 2] = bad
    path = tmp_path / "bad.wav"
    sf.write(path, samples, RATE, subtype=subtype)
    assert np.isfinite(read_crop(path, 0.0, 0.25, RATE)).all()  # the crops before it read as they are
    for read in (lambda: read_crop(path, 0.4, 0.25, RATE), lambda: read_file(path, RATE),
                 lambda: read_file(path, RATE // 2)):
        with pytest.raises(AudioError) as error:
            read()
        assert str(path) in str(error.value) and "NaN or infinite samples" in str(error.value)


def _hammer(path: str, seed: int) -> int:
    """Random crops of a 30 s ramp; returns how many did not start where asked."""
    rng = np.random.default_rng(seed)
    wrong = 0
    for _ in range(3000):
        frame = int(rng.integers(0, 29 * RATE))
        wrong += abs(read_crop(path, frame / RATE, 0.01, RATE)[0] - frame * RAMP) > 1e-6
    return wrong


def _child(path: str, queue: multiprocessing.Queue) -> None:
    queue.put(_hammer(path, 1))


def test_a_forked_worker_does_not_share_the_parents_file_offsets(tmp_path: Path) -> None:
    # the parent holds an open handle when it forks; both then crop at the same time: a
    # shared file offset would make some crops start at the other process's position
    path = str(tmp_path / "long.wav")
    sf.write(path, ramp(30.0), RATE, subtype="FLOAT")
    read_crop(path, 0.0, 0.01, RATE)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child, args=(path, queue))
    child.start()
    assert _hammer(path, 2) == 0
    assert queue.get(timeout=60) == 0
    child.join(timeout=60)


def test_a_missing_file_beside_the_same_audio_in_another_format_says_so(tmp_path: Path) -> None:
    """VoxCeleb2 ships .m4a: a `{uri}.wav` template over it said only `does not exist`."""
    (tmp_path / "a.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    (tmp_path / "b.flac").write_bytes(b"fLaC")
    a, b = check_files([tmp_path / "a.wav", tmp_path / "b.wav"])
    assert a.problem == (f"audio file {tmp_path / 'a.wav'} does not exist, but {tmp_path / 'a.m4a'} does — convert "
                         "the corpus to wav (e.g. `ffmpeg -i IN.m4a -ac 1 -ar 16000 OUT.wav`) and point the template "
                         "at the converted files")
    assert b.problem.endswith(f"but {tmp_path / 'b.flac'} does — point the audio path template in database.yml at "
                              "the .flac files")
    # the template's own extension in the other case: `{uri}.flac` over files named `.FLAC`
    (tmp_path / "c.FLAC").write_bytes(b"fLaC")
    (c,) = check_files([tmp_path / "c.flac"])
    assert c.problem.endswith(f"but {tmp_path / 'c.FLAC'} does — point the audio path template in database.yml at "
                              "the .FLAC files")
