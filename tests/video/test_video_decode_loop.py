"""The one PyAV decode loop: identifying frames by timestamp or by position gives the same frames.

Frames are checked from their pixels (each synthetic frame shows its own index), and the two
identification modes are compared with each other pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import evalkit.media.video_decode as video_decode
from evalkit.errors import InputError
from evalkit.media.synthetic import decode_index
from evalkit.media.video import VideoSampling, sample_video
from evalkit.media.video_decode import (
    _build_index,
    _ByPosition,
    _ByTimestamp,
    _decode_wanted,
    _DecodeStats,
    _FrameIndex,
    _header_info,
    _IndexMismatch,
    _open,
)

from .conftest import LONG_FRAMES, SMALL_FRAMES, SMALL_VIDEOS

# first frames, neighbours, one keyframe interval apart, far apart, the last frames
WANTED = [0, 1, 2, 9, 10, 11, 17, 40, 63, 64, 98, 99]


def _decode(path: Path, wanted: Sequence[int], by_position: bool) -> tuple[list[Any], _DecodeStats, str]:
    """Decode ``wanted`` from ``path`` in one identification mode; returns the frames, the stats and
    the frame index's method (by position: on a fresh container, as ``_read_pyav`` does)."""
    container, stream = _open(path)
    try:
        index = _build_index(container, stream, _header_info(container, stream, path), path.name)
        if by_position:  # a packet scan has read the whole container: count from a fresh one
            container.close()
            container, stream = _open(path)
        identity = _ByPosition() if by_position else _ByTimestamp(index)
        stats = _DecodeStats()
        got = _decode_wanted(container, stream, identity, wanted, None, stats, path.name)
    finally:
        container.close()
    return [got[i] for i in wanted], stats, index.method


@pytest.mark.parametrize("min_skip", [0, 8, 10_000])
@pytest.mark.parametrize("name", list(SMALL_VIDEOS))
def test_timestamp_and_position_identification_agree(
    name: str, min_skip: int, small_video: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeking before every frame (0), the default, or never: same frames as counting from the start."""
    monkeypatch.setattr(video_decode, "SEEK_MIN_SKIP", min_skip)
    path = small_video(name)
    by_time, time_stats, method = _decode(path, WANTED, by_position=False)
    by_count, count_stats, _ = _decode(path, WANTED, by_position=True)
    assert method == SMALL_VIDEOS[name][2]  # really the timestamp path (container index / packets)
    assert [decode_index(f) for f in by_time] == WANTED
    assert [decode_index(f) for f in by_count] == WANTED
    assert [f.tobytes() for f in by_time] == [f.tobytes() for f in by_count]
    # counting: one run from the start, no seek, exactly frames 0..99 decoded
    assert (count_stats.seeks, count_stats.decoded) == (0, SMALL_FRAMES)
    if min_skip == 10_000:  # by timestamp, never seeking again: the same single run
        assert (time_stats.seeks, time_stats.decoded) == (1, SMALL_FRAMES)
    else:  # far-apart wanted frames are reached by seeking, decoding fewer frames
        assert time_stats.seeks > 1 and time_stats.decoded < SMALL_FRAMES


def _force_decode_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every video look like one without usable timestamps (identified by counting)."""
    real_scan = video_decode._scan_index

    def decode_order_scan(container, stream, name):  # type: ignore[no-untyped-def]
        return _FrameIndex("decode-order", real_scan(container, stream, name).n_frames, [0])

    monkeypatch.setattr(video_decode, "_container_index", lambda stream: None)
    monkeypatch.setattr(video_decode, "_scan_index", decode_order_scan)


@pytest.mark.parametrize("name", ["mp4-h264-bframes", "mkv-h264-bframes", "avi-mpeg4", "mp4-vfr"])
def test_forced_decode_order_samples_the_same_frames(
    name: str, small_video: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_video(name)
    sampling = VideoSampling(nframes=12)
    indexed = sample_video(path, sampling, start_s=1.0, end_s=9.0, backend="pyav", resize=False)
    _force_decode_order(monkeypatch)
    counted = sample_video(path, sampling, start_s=1.0, end_s=9.0, backend="pyav", resize=False)
    assert (indexed.frame_index, counted.frame_index) == (SMALL_VIDEOS[name][2], "decode-order")
    assert counted.indices == indexed.indices
    assert [decode_index(f) for f in counted.frames] == list(counted.indices)
    assert [f.tobytes() for f in counted.frames] == [f.tobytes() for f in indexed.frames]
    assert (counted.seeks, counted.decoded_frames) == (0, max(counted.indices) + 1)


def test_forced_decode_order_long_video(long_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    indexed = sample_video(long_video, VideoSampling(nframes=8), backend="pyav", resize=False)
    _force_decode_order(monkeypatch)
    counted = sample_video(long_video, VideoSampling(nframes=8), backend="pyav", resize=False)
    assert indexed.indices[-1] == LONG_FRAMES - 1
    assert [decode_index(f) for f in counted.frames] == list(indexed.indices)
    assert (counted.seeks, counted.decoded_frames) == (0, LONG_FRAMES)
    assert indexed.seeks > 1 and indexed.decoded_frames < LONG_FRAMES // 4


def test_ends_before_a_wanted_frame_keeps_each_modes_message(small_video: Callable[[str], Path]) -> None:
    path = small_video("mp4-h264")
    with pytest.raises(
        InputError, match=r"^video h264\.mp4 ends before frame 100 of 100 \(truncated or corrupt\)$"
    ):
        _decode(path, [5, 100, 120], by_position=False)
    with pytest.raises(InputError, match=r"^video h264\.mp4 ends before frame 120 \(truncated or corrupt\)$"):
        _decode(path, [5, 100, 120], by_position=True)


class _ScriptedContainer:
    """A container whose decoder outputs frames with the given pts, in the given order."""

    def __init__(self, pts: Sequence[int]) -> None:
        self.pts = list(pts)
        self.seeks: list[int] = []

    def seek(self, offset: int, **_: Any) -> None:
        self.seeks.append(offset)

    def decode(self, stream: Any) -> Any:
        return iter([SimpleNamespace(pts=p) for p in self.pts])


def _ten_frame_index() -> _FrameIndex:
    pts = [100 * i for i in range(10)]
    return _FrameIndex("packet-scan", 10, [0], pts=pts, _lookup={p: i for i, p in enumerate(pts)})


@pytest.mark.parametrize(
    ("decoded_pts", "wanted", "message", "decoded"),
    [
        ([0, 200, 100, 300], [3], "frame order 2 -> 1", 3),  # decoder went backwards
        ([0, 200, 300], [1], r"frame 1 skipped \(got 2\)", 2),  # a wanted frame never came
        ([0, 150], [3], "pts 150 not in the packet index", 2),  # timestamp off the index
    ],
)
def test_timestamps_that_contradict_the_decoder_are_mismatches(
    decoded_pts: list[int], wanted: list[int], message: str, decoded: int
) -> None:
    container = _ScriptedContainer(decoded_pts)
    stats = _DecodeStats()
    with pytest.raises(_IndexMismatch, match=message):
        _decode_wanted(container, None, _ByTimestamp(_ten_frame_index()), wanted, None, stats, "x.mkv")
    assert container.seeks == [0]  # the one run began at the keyframe's timestamp
    assert (stats.seeks, stats.decoded) == (1, decoded)


def test_position_identity_never_seeks_and_ignores_timestamps() -> None:
    """Counting from the start: pts are not looked at (here all None), and no seek is made."""
    container = _ScriptedContainer([None] * 6)  # type: ignore[list-item]
    stats = _DecodeStats()
    with pytest.raises(InputError, match="ends before frame 9"):
        _decode_wanted(container, None, _ByPosition(), [9], None, stats, "raw.h264")
    assert container.seeks == [] and (stats.seeks, stats.decoded) == (0, 6)
