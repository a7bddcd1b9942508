"""Decoding: the frames that come back are the planned ones (read from their pixels)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import evalkit.media.video_decode as video_decode
from evalkit.errors import InputError, MissingDependencyError, UsageError
from evalkit.media.synthetic import decode_index, encode_index, write_index_video
from evalkit.media.video import (
    VideoSampling,
    available_backends,
    plan_frames,
    probe_video,
    read_frames,
    sample_video,
)

from .conftest import LONG_FPS, LONG_FRAMES, LONG_GOP, SMALL_FRAMES, SMALL_VIDEOS

BACKENDS = available_backends()  # pyav always; torchcodec / decord when installed


def decoded(frames: list) -> list[int]:
    return [decode_index(frame) for frame in frames]


def test_index_code_roundtrip_and_check_bits() -> None:
    for index in (0, 1, 77, 2399, 123_456):
        assert decode_index(encode_index(index, (64, 48))) == index
        assert decode_index(encode_index(index, (392, 280))) == index
    broken = encode_index(5)
    broken[:8, :8] = 255 - broken[:8, :8]  # flip one index block: index and check disagree
    with pytest.raises(ValueError):
        decode_index(broken)


@pytest.mark.parametrize("name", list(SMALL_VIDEOS))
def test_sampled_frames_are_the_planned_ones(name: str, small_video: Callable[[str], Path]) -> None:
    path = small_video(name)
    for sampling, clip in [
        (VideoSampling(), (None, None)),
        (VideoSampling(nframes=16), (None, None)),
        (VideoSampling(nframes=8), (2.0, 5.5)),
        (VideoSampling(nframes=120, short_video="repeat"), (None, None)),
    ]:
        sv = sample_video(path, sampling, *clip, backend="pyav", resize=False)
        assert sv.info.n_frames == SMALL_FRAMES
        assert decoded(sv.frames) == list(sv.indices), (name, sampling, clip)
        assert sv.indices == plan_frames(SMALL_FRAMES, sv.info.fps, sampling, *clip).indices
        assert sv.frame_index == SMALL_VIDEOS[name][2]
        assert sv.backend == "pyav"


@pytest.mark.parametrize("min_skip", [0, 10_000])
@pytest.mark.parametrize("name", ["mp4-h264-bframes", "mkv-h264-bframes", "mp4-vfr"])
def test_seeking_and_forward_decoding_agree(
    name: str, min_skip: int, small_video: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seek before every wanted frame (0) or never (10 000): same frames either way."""
    monkeypatch.setattr(video_decode, "SEEK_MIN_SKIP", min_skip)
    sv = sample_video(small_video(name), VideoSampling(nframes=16), backend="pyav", resize=False)
    assert decoded(sv.frames) == list(sv.indices)
    assert (sv.seeks > 1) == (min_skip == 0)


def test_raw_stream_without_timestamps_is_decoded_in_order(tmp_path: Path) -> None:
    """A raw H.264 elementary stream has no pts and cannot seek: frames are counted from the start."""
    path = write_index_video(tmp_path / "raw.h264", 60, fps=10, gop=10)
    sv = sample_video(path, VideoSampling(nframes=8), backend="pyav", resize=False)
    assert sv.frame_index == "decode-order" and sv.info.n_frames == 60
    assert decoded(sv.frames) == list(sv.indices)


def test_wrong_container_index_is_detected_and_rescanned(
    small_video: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the container's table misleads (here: a grid twice too coarse), decoded timestamps fall
    off the grid, and evalkit rebuilds the index from packets instead of picking wrong frames."""
    real = video_decode._container_index

    def misleading(stream):  # type: ignore[no-untyped-def]
        index = real(stream)
        index.step *= 2
        return index

    monkeypatch.setattr(video_decode, "_container_index", misleading)
    sv = sample_video(
        small_video("mp4-h264-bframes"), VideoSampling(nframes=16), backend="pyav", resize=False
    )
    assert sv.frame_index == "packet-scan"
    assert decoded(sv.frames) == list(sv.indices)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["mp4-h264-bframes", "mkv-h264-bframes", "avi-mpeg4"])
def test_backends_select_identical_frames(
    name: str, backend: str, small_video: Callable[[str], Path]
) -> None:
    path = small_video(name)
    sv = sample_video(path, VideoSampling(nframes=12), start_s=1.0, end_s=9.0, backend=backend, resize=False)
    assert sv.backend == backend
    assert decoded(sv.frames) == list(sv.indices)
    frames = read_frames(path, sv.plan, backend=backend)
    assert decoded(frames) == list(sv.indices)


def test_auto_backend_prefers_installed_fast_decoder(small_video: Callable[[str], Path]) -> None:
    sv = sample_video(small_video("mp4-h264"), VideoSampling(nframes=4), resize=False)
    assert sv.backend == BACKENDS[0]


def test_backend_errors(small_video: Callable[[str], Path]) -> None:
    path = small_video("mp4-h264")
    with pytest.raises(UsageError):
        sample_video(path, VideoSampling(nframes=4), backend="opencv")
    missing = [b for b in ("torchcodec", "decord") if b not in BACKENDS]
    for name in missing:
        with pytest.raises(MissingDependencyError):
            sample_video(path, VideoSampling(nframes=4), backend=name)


def test_resize_to_frame_budget(small_video: Callable[[str], Path]) -> None:
    sv = sample_video(small_video("mp4-h264"), VideoSampling(nframes=16))
    assert sv.frame_size == (280, 392)  # 64x48 enlarged to min_pixels, multiples of 28
    assert all(f.size == (392, 280) and f.mode == "RGB" for f in sv.frames)
    assert decoded(sv.frames) == list(sv.indices)


def test_record_is_json(small_video: Callable[[str], Path]) -> None:
    sv = sample_video(small_video("mp4-ntsc"), VideoSampling(nframes=4), end_s=9.0, resize=False)
    record = json.loads(json.dumps(sv.record()))
    assert record["indices"] == list(sv.indices)
    assert record["timestamps"] == [round(i * 1001 / 30000, 6) for i in sv.indices]
    assert record["notes"] and "beyond" in record["notes"][0]  # 9 s > the 3.3 s video


def test_probe_header_and_duration_fallback(small_video: Callable[[str], Path]) -> None:
    info = probe_video(small_video("mp4-h264"))
    assert (info.n_frames, info.fps, info.width, info.height, info.n_frames_source) == (
        100,
        10.0,
        64,
        48,
        "header",
    )
    mkv = probe_video(small_video("mkv-h264-bframes"))  # Matroska has no frame count in its header
    assert (mkv.n_frames, mkv.n_frames_source) == (100, "duration")
    assert mkv.duration_s == pytest.approx(10.0, abs=0.2)


def test_read_frames_rejects_plan_for_other_video(small_video: Callable[[str], Path]) -> None:
    plan = plan_frames(200, 10.0, VideoSampling(nframes=4))
    with pytest.raises(InputError, match="200 frames"):
        read_frames(small_video("mp4-h264"), plan)


def test_only_wanted_frames_are_converted(
    small_video: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = video_decode._convert

    def counting(frame, size, reformatter=None):  # type: ignore[no-untyped-def]
        calls.append(decode_index(frame.to_image()))
        return real(frame, size, reformatter)

    monkeypatch.setattr(video_decode, "_convert", counting)
    sv = sample_video(
        small_video("mp4-h264"),
        VideoSampling(nframes=16, short_video="repeat"),
        end_s=0.9,
        backend="pyav",
        resize=False,
    )
    assert len(sv.indices) == 16 and len(set(sv.indices)) == 10
    assert sorted(calls) == sorted(set(sv.indices))  # each distinct frame converted once, nothing else
    assert sv.frames[1] is sv.frames[2]  # repeated index -> the same image object


# --- the 20-minute video -------------------------------------------------------------------------


def test_long_video_fps_mode_768_frames(long_video: Path) -> None:
    sv = sample_video(long_video, VideoSampling(), backend="pyav", resize=False)
    assert sv.info.n_frames == LONG_FRAMES and sv.info.duration_s == pytest.approx(1200.0)
    assert len(sv.frames) == 768
    assert decoded(sv.frames) == list(sv.indices)
    assert sv.timestamps[-1] == pytest.approx((LONG_FRAMES - 1) / LONG_FPS)


@pytest.mark.parametrize("nframes", [8, 32])
def test_long_video_decodes_only_what_it_needs(long_video: Path, nframes: int) -> None:
    sv = sample_video(long_video, VideoSampling(nframes=nframes), backend="pyav", resize=False)
    assert decoded(sv.frames) == list(sv.indices)
    # at most one keyframe interval (plus the target) per wanted frame, far below all 2,400
    assert sv.decoded_frames <= nframes * (LONG_GOP + 2)
    assert sv.seeks >= nframes // 2


def test_long_video_clip(long_video: Path) -> None:
    sv = sample_video(
        long_video, VideoSampling(nframes=8), start_s=600.0, end_s=900.0, backend="pyav", resize=False
    )
    assert sv.plan.clip == (1200, 1800)
    assert decoded(sv.frames) == list(sv.indices)
    assert sv.decoded_frames <= 8 * (LONG_GOP + 2)


# --- memory --------------------------------------------------------------------------------------

_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    from evalkit.media.video import VideoSampling, sample_video
    import av

    path = sys.argv[1]
    sample_video(path, VideoSampling(nframes=2), backend="pyav", resize=False)  # warm up libraries

    def peak_mb():  # VmHWM: this process's peak RSS (ru_maxrss would include the parent's peak)
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    before = peak_mb()
    sv = sample_video(path, VideoSampling(nframes=8), backend="pyav", resize=False)
    sampled = peak_mb() - before
    del sv
    before = peak_mb()
    with av.open(str(path)) as c:  # control: keep every frame, as read-everything decoders do
        every = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    control = peak_mb() - before
    print(json.dumps({"sampled": sampled, "control": control, "frames": len(every)}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for peak RSS")
def test_peak_memory_bounded_by_sampled_frames(tmp_path: Path) -> None:
    """8 of 300 frames at 320x240 (all 300 as RGB: 69 MB) must not grow the process by the video."""
    path = write_index_video(tmp_path / "mem.mp4", 300, fps=10, size=(320, 240), gop=30)
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["frames"] == 300
    assert result["control"] > 50, result  # the measurement can see a whole decoded video
    assert result["sampled"] < 15, result
