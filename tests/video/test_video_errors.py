"""Bad video inputs become one-line InputErrors (recorded per sample), never crashes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from evalkit.errors import InputError
from evalkit.media.synthetic import write_index_video
from evalkit.media.video import VideoSampling, plan_frames, probe_video, read_frames, sample_video


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="module")
def bad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import av

    root = tmp_path_factory.mktemp("bad-videos")
    (root / "zero.mp4").touch()
    (root / "random.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    )
    (root / "text.mp4").write_text("not a video\n" * 20)
    with av.open(str(root / "audio.wav"), "w") as out:  # a valid media file without video
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    for name, kwargs in [
        ("full.mp4", {}),
        ("faststart.mp4", {"faststart": True}),
        ("full.mkv", {}),
        ("full.avi", {"codec": "mpeg4"}),
    ]:
        write_index_video(root / name, 200, fps=10, gop=10, **kwargs)
    _truncate(root / "full.mp4", root / "cut.mp4", 0.5)  # index (moov) at the end: lost
    _truncate(root / "faststart.mp4", root / "cut-faststart.mp4", 0.5)  # index kept, data missing
    _truncate(root / "full.mkv", root / "cut.mkv", 0.5)
    _truncate(root / "full.avi", root / "cut.avi", 0.5)
    return root


def _assert_input_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("missing.mp4", "not found"),
        ("zero.mp4", "empty"),
        ("random.mp4", "cannot open"),
        ("text.mp4", "cannot open"),
        ("audio.wav", "no video stream"),
        ("cut.mp4", "cannot open"),
        ("cut-faststart.mp4", "truncated|cannot be decoded"),
        ("cut.mkv", "truncated"),
        ("cut.avi", "truncated"),
    ],
)
def test_bad_video_sample(bad_dir: Path, name: str, match: str) -> None:
    _assert_input_error(lambda: sample_video(bad_dir / name, VideoSampling(nframes=8), resize=False), match)


@pytest.mark.parametrize("name", ["missing.mp4", "zero.mp4", "random.mp4", "audio.wav", "cut.mp4"])
def test_bad_video_probe(bad_dir: Path, name: str) -> None:
    _assert_input_error(lambda: probe_video(bad_dir / name), ".")


def test_directory_is_not_a_video(bad_dir: Path) -> None:
    _assert_input_error(lambda: sample_video(bad_dir, VideoSampling()), "not a file")


def test_read_frames_bad_input(bad_dir: Path) -> None:
    plan = plan_frames(200, 10.0, VideoSampling(nframes=4))
    _assert_input_error(lambda: read_frames(bad_dir / "cut.mkv", plan), "truncated")
    assert len(read_frames(bad_dir / "full.mkv", plan)) == 4


def test_intact_files_still_work(bad_dir: Path) -> None:
    for name in ("full.mp4", "faststart.mp4", "full.mkv", "full.avi"):
        assert len(sample_video(bad_dir / name, VideoSampling(nframes=4), resize=False).frames) == 4


def test_clip_errors_are_input_errors(bad_dir: Path) -> None:
    path = bad_dir / "full.mp4"  # 20 s
    _assert_input_error(lambda: sample_video(path, VideoSampling(), start_s=8.0, end_s=3.0), "not before")
    _assert_input_error(lambda: sample_video(path, VideoSampling(), start_s=25.0), "fewer than 2 frames")
    sv = sample_video(path, VideoSampling(nframes=4), start_s=15.0, end_s=99.0, resize=False)
    assert sv.indices[-1] == 199 and any("beyond" in note for note in sv.notes)


def test_truncation_check_ignores_container_duration_when_audio_may_outlast_video() -> None:
    """Only a header describing the video stream itself can call a video truncated."""
    from types import SimpleNamespace

    from evalkit.media.video import VideoInfo
    from evalkit.media.video_decode import _check_truncation, _FrameIndex

    index = _FrameIndex("packet-scan", 100, [0], pts=list(range(100)))
    from_container = VideoInfo(200, 10.0, 20.0, 64, 48, "h264", "duration")  # 20 s from the container
    bare_stream = SimpleNamespace(duration=None, time_base=None, metadata={})
    with_audio = SimpleNamespace(streams=[bare_stream, SimpleNamespace()])
    _check_truncation(
        with_audio, bare_stream, index, from_container, "a.mkv"
    )  # audio may be longer: no error
    with pytest.raises(InputError, match="truncated"):
        _check_truncation(SimpleNamespace(streams=[bare_stream]), bare_stream, index, from_container, "a.mkv")
    tagged = SimpleNamespace(duration=None, time_base=None, metadata={"DURATION": "00:00:20.000000000"})
    with pytest.raises(InputError, match="truncated"):
        _check_truncation(with_audio, tagged, index, from_container, "a.mkv")
