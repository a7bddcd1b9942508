"""Video input: frame sampling as the model preset defines it, and decoding of only those frames.

Two halves, in two modules:

* **Planning** (pure, no I/O; in :mod:`evalkit.media.frame_plan`, re-exported here):
  :class:`VideoSampling` holds the protocol knobs of a model preset / task config;
  :func:`plan_frames` turns a video's frame count and rate (and optional clip bounds) into a
  :class:`FramePlan` (frame indices, timestamps, per-frame pixel budget) exactly as qwen-vl-utils
  does (``smart_nframes`` + ``torch.linspace(...).round()`` +
  ``calculate_video_frame_range``); :func:`resize_frame_budget` gives the per-frame size.
* **Decoding**: :func:`probe_video`, :func:`read_frames` and :func:`sample_video` decode only the
  planned frames with PyAV (seek to the keyframe before a wanted frame when that skips work,
  otherwise decode forward), or with torchcodec / decord when installed, selecting the same
  frames. Only the wanted frames are ever kept.

**Frame index.** Frame ``i`` is the ``i``-th frame in presentation order, i.e. the ``i``-th frame
a decoder outputs when the stream is decoded from its start (what decord and torchcodec call frame
``i``, and what "decode everything and pick" gives). Frames are identified after a seek by their
presentation timestamp (``pts`` in the stream's ``time_base``), never by counting, through a
frame index built without decoding (see :class:`_FrameIndex`).

Every user-fixable failure of one video raises :class:`evalkit.errors.InputError` with a one-line
message, so the runner records it per sample. Heavy modules (``av``, ``torchcodec``, ``decord``)
are imported inside functions only. See ``docs/video.md`` for the protocol knobs and fallbacks.
"""

from __future__ import annotations

import bisect
import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import InputError, MissingDependencyError, UsageError
from evalkit.media.frame_plan import (  # noqa: F401 - planning lives in frame_plan; re-exported
    VIDEO_MAX_PIXELS,
    FramePlan,
    VideoSampling,
    _ceil_by_factor,
    _clip_range,
    _count_frames,
    _floor_by_factor,
    _frame_budget,
    _linspace_round,
    _linspace_round_exact,
    _linspace_round_fast,
    _round_by_factor,
    _to_f32,
    plan_frames,
    resize_frame_budget,
    smart_resize,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BACKENDS",
    "FramePlan",
    "SampledVideo",
    "VideoInfo",
    "VideoSampling",
    "available_backends",
    "configure_decoder",
    "plan_frames",
    "probe_video",
    "read_frames",
    "resize_frame_budget",
    "sample_video",
    "smart_resize",
]

BACKENDS = ("pyav", "torchcodec", "decord")
"""Decoder backends; ``"auto"`` picks the first installed of torchcodec, decord, then pyav."""

_DEFAULT_FPS = 2.0
_MAX_ASPECT_RATIO = 200  # qwen-vl-utils' MAX_RATIO


# --------------------------------------------------------------------------------------------
# Probing and the frame index
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream.

    Attributes:
        n_frames: frame count. From the stream header when it has one; when the header says 0
            (Matroska/WebM, some MPEG-TS) it is ``round(duration_s * fps)`` (``n_frames_source``
            says which). :func:`sample_video` replaces it with the exact count from the frame
            index (``n_frames_source="index"``).
        fps: average frame rate (the stream's ``avg_frame_rate``, else its guessed rate).
        duration_s: stream duration in seconds (the container's when the stream has none).
        width: coded width in pixels.
        height: coded height in pixels.
        codec: decoder name (``h264``, ``mpeg4``...).
        n_frames_source: ``"header"``, ``"duration"`` or ``"index"``.
    """

    n_frames: int
    fps: float
    duration_s: float
    width: int
    height: int
    codec: str = ""
    n_frames_source: str = "header"


def _check_path(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"video not found: {p}")
    if not p.is_file():
        raise InputError(f"video path is not a file: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"video file is empty (0 bytes): {p}")
    return p


def _open(path: str | Path) -> tuple[Any, Any]:
    """Open a video with PyAV and return ``(container, stream)``; errors become InputError."""
    import av

    p = _check_path(path)
    try:
        container = av.open(str(p), mode="r")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot open video {p.name}: {_one_line(exc)}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"no video stream in {p.name}")
    stream = container.streams.video[0]
    configure_decoder(stream)
    return container, stream


SINGLE_THREAD_MAX_PIXELS = 640 * 480
"""Frames up to this many pixels are decoded on one thread. Below VGA a frame decodes in tens of
microseconds and FFmpeg's thread hand-offs (and, after every seek, the pipeline flush) cost more
than they save: on the synthetic 64x48 video one thread decodes twice as fast. Larger frames keep
FFmpeg's default threading."""


def configure_decoder(stream: Any) -> None:
    """Set the threading evalkit decodes ``stream`` with (before its first decode).

    Public so that comparisons (``benchmarks/video.py``) decode with identical settings.
    """
    ctx = stream.codec_context
    if (ctx.width or 0) * (ctx.height or 0) <= SINGLE_THREAD_MAX_PIXELS:
        ctx.thread_count = 1


def _one_line(exc: BaseException) -> str:
    """A short one-line reason: FFmpeg's message without errno and file name."""
    reason = getattr(exc, "strerror", None) or str(exc)
    text = str(reason).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _stream_fps(stream: Any) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return 0.0


def _stream_duration(stream: Any) -> float | None:
    """The video stream's own duration in seconds: its header field, else Matroska's per-stream
    ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``); None when only the container's is known."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    return None


def _header_info(container: Any, stream: Any, path: Path) -> VideoInfo:
    fps = _stream_fps(stream)
    duration = _stream_duration(stream)
    if duration is None:
        duration = container.duration / 1_000_000 if container.duration is not None else 0.0
    n_frames, source = int(stream.frames or 0), "header"
    if n_frames <= 0:
        n_frames, source = (round(duration * fps) if fps > 0 else 0), "duration"
    ctx = stream.codec_context
    return VideoInfo(
        n_frames=n_frames,
        fps=fps,
        duration_s=duration,
        width=int(ctx.width or 0),
        height=int(ctx.height or 0),
        codec=ctx.name or "",
        n_frames_source=source,
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Read a video's header with PyAV (no decoding) and return its :class:`VideoInfo`.

    Streams whose header has no frame count (``frames == 0``, e.g. Matroska) get
    ``round(duration_s * fps)``. Raises :class:`InputError` for a missing or empty file, a file
    PyAV cannot open, a file without a video stream, or a stream without frames or rate.
    """
    p = _check_path(path)
    container, stream = _open(p)
    try:
        info = _header_info(container, stream, p)
    finally:
        container.close()
    if info.fps <= 0:
        raise InputError(f"video {p.name} has no frame rate")
    if info.n_frames <= 0:
        raise InputError(f"video {p.name} has no frames")
    return info


class _IndexMismatch(Exception):
    """A decoded frame's timestamp does not fit the frame index (internal; triggers a fallback)."""


@dataclass
class _FrameIndex:
    """Maps frame index <-> presentation timestamp without decoding.

    Built one of two ways:

    * ``"container-index"``: the container's own sample table (MP4/MOV, AVI) lists every frame
      with constant spacing ``step``; frame ``i`` has ``pts = start + i * step``. Costs nothing
      (no reading of packets). Used only when the table has one entry per frame, no discarded
      entries and constant spacing; with B-frames the table holds decode timestamps, but for such
      constant-rate streams the presentation times form the same grid from the stream's start.
      Every decoded frame is checked against the grid; a miss falls back to a packet scan.
    * ``"packet-scan"``: demux every packet (no decoding) and sort their pts; frame ``i`` has the
      ``i``-th smallest pts (what decord and torchcodec's exact mode do). Used for Matroska/WebM,
      variable frame rate and anything irregular.

    ``keyframes`` are approximate presentation indices of keyframes, used only to decide when a
    seek saves work (correctness never depends on them).
    """

    method: str
    n_frames: int
    keyframes: list[int]
    start: int = 0
    step: int = 0
    pts: list[int] = field(default_factory=list)
    _lookup: dict[int, int] = field(default_factory=dict)

    def pts_of(self, index: int) -> int:
        if self.method == "container-index":
            return self.start + index * self.step
        return self.pts[index]

    def index_of(self, pts: int | None) -> int:
        if pts is None:
            raise _IndexMismatch("decoded frame without pts")
        if self.method == "container-index":
            offset, rem = divmod(pts - self.start, self.step)
            if rem or not 0 <= offset < self.n_frames:
                raise _IndexMismatch(f"pts {pts} off the frame grid")
            return offset
        found = self._lookup.get(pts)
        if found is None:
            raise _IndexMismatch(f"pts {pts} not in the packet index")
        return found

    def keyframe_at_or_before(self, index: int) -> int:
        pos = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[pos] if pos >= 0 else 0


def _container_index(stream: Any) -> _FrameIndex | None:
    try:
        entries = stream.index_entries
        n = len(entries)
    except (AttributeError, TypeError):  # PyAV < 14 has no index_entries
        return None
    if n < 2 or n != int(stream.frames or 0) or stream.start_time is None:
        return None
    # one pass over FFmpeg's AVIndexEntry array: (timestamp, flags); flag 1 = keyframe, 2 = discard
    table = [(entry.timestamp, entry.flags) for entry in entries]
    if any(flags & _AVINDEX_DISCARD_FRAME for _, flags in table):
        return None
    step = table[1][0] - table[0][0]
    if step <= 0 or any(b[0] - a[0] != step for a, b in zip(table, table[1:], strict=False)):
        return None
    keyframes = [i for i, (_, flags) in enumerate(table) if flags & _AVINDEX_KEYFRAME] or [0]
    return _FrameIndex("container-index", n, keyframes, start=int(stream.start_time), step=step)


_AVINDEX_KEYFRAME = 0x0001  # libavformat/avformat.h
_AVINDEX_DISCARD_FRAME = 0x0002


def _scan_index(container: Any, stream: Any, name: str) -> _FrameIndex:
    """Demux every packet of a freshly opened container (no decoding) into a frame index."""
    import av

    records = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            records.append((packet.pts, packet.is_keyframe))
    except av.FFmpegError as exc:
        raise InputError(
            f"video {name} is truncated or corrupt (read error after {len(records)} packets: {_one_line(exc)})"
        ) from None
    if any(pts is None for pts, _ in records):
        # No usable timestamps: frame i is simply the i-th decoded frame (sequential decoding only).
        return _FrameIndex("decode-order", len(records), [0])
    records.sort()
    pts = [p for p, _ in records]
    if len(set(pts)) != len(pts):
        return _FrameIndex("decode-order", len(records), [0])
    keyframes = [i for i, (_, key) in enumerate(records) if key] or [0]
    return _FrameIndex("packet-scan", len(pts), keyframes, pts=pts, _lookup={p: i for i, p in enumerate(pts)})


def _check_truncation(container: Any, stream: Any, index: _FrameIndex, header: VideoInfo, name: str) -> None:
    """Refuse a video whose content is clearly shorter than its header says (a cut-off download).

    Only headers that describe the video stream itself count: a frame count, the stream's own
    duration, or the container's duration when there is no other stream (an audio track may
    legitimately outlast the video)."""
    if index.method == "container-index" or header.n_frames <= 0:
        return
    stream_specific = header.n_frames_source == "header" or _stream_duration(stream) is not None
    if not stream_specific and len(container.streams) > 1:
        return
    tolerance = max(2.0 * header.fps, 0.05 * header.n_frames)
    if index.n_frames < header.n_frames - tolerance:
        raise InputError(
            f"video {name} is truncated: header says {header.n_frames} frames "
            f"({header.n_frames_source}), only {index.n_frames} present"
        )


def _build_index(container: Any, stream: Any, header: VideoInfo, name: str) -> _FrameIndex:
    """The frame index of a freshly opened container (see :class:`_FrameIndex`)."""
    index = _container_index(stream)
    if index is None:
        index = _scan_index(container, stream, name)
        _check_truncation(container, stream, index, header, name)
    if index.n_frames < 1:
        raise InputError(f"video {name} has no frames")
    return index


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------

SEEK_MIN_SKIP = 8
"""Seek only when the keyframe before the next wanted frame is more than this many frames past the
last decoded one. A seek flushes the decoder (and its frame-thread pipeline) and re-reads from the
keyframe, so for nearby frames decoding forward is cheaper; beyond a few frames seeking wins."""


@dataclass
class _DecodeStats:
    decoded: int = 0
    seeks: int = 0


def _convert(frame: Any, size: tuple[int, int] | None, reformatter: Any = None) -> Image.Image:
    """An RGB PIL image of a decoded frame (same pixels as ``frame.to_image()``), optionally resized.

    Passing one ``VideoReformatter`` for all frames of a read reuses its swscale context.
    """
    from PIL import Image

    rgb = (
        reformatter.reformat(frame, format="rgb24")
        if reformatter is not None
        else frame.reformat(format="rgb24")
    )
    image = Image.fromarray(rgb.to_ndarray())
    if size is not None and (image.height, image.width) != size:
        image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return image


def _decode_from(container: Any, stream: Any, offset: int | None, stats: _DecodeStats) -> Iterator[Any]:
    import av

    if offset is not None:
        try:
            container.seek(offset, backward=True, any_frame=False, stream=stream)
        except av.FFmpegError as exc:  # not seekable: fall back to decoding from the start
            raise _IndexMismatch(f"seek failed: {_one_line(exc)}") from None
        stats.seeks += 1
    return container.decode(stream)


def _read_pyav_indexed(
    container: Any,
    stream: Any,
    index: _FrameIndex,
    wanted: Sequence[int],
    size: tuple[int, int] | None,
    stats: _DecodeStats,
    name: str,
) -> dict[int, Image.Image]:
    """Decode the sorted unique ``wanted`` frames, seeking when it skips work."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    out: dict[int, Image.Image] = {}
    frames: Iterator[Any] | None = None
    cur = -1  # index of the last decoded frame of the current decode run
    for target in wanted:
        keyframe = index.keyframe_at_or_before(target)
        if frames is None or keyframe > cur + SEEK_MIN_SKIP:
            if frames is not None:
                frames.close()
            frames = _seek_to(container, stream, index, target, stats, name)
            cur = -1
        found = False
        for frame in frames:
            stats.decoded += 1
            i = index.index_of(frame.pts)
            if i < cur:  # decoder went backwards: timestamps do not identify frames
                raise _IndexMismatch(f"frame order {cur} -> {i}")
            cur = i
            if i == target:
                out[target] = _convert(frame, size, reformatter)
                found = True
                break
            if i > target:
                raise _IndexMismatch(f"frame {target} skipped (got {i})")
        if not found:
            raise InputError(
                f"video {name} ends before frame {target} of {index.n_frames} (truncated or corrupt)"
            )
    return out


def _seek_to(
    container: Any, stream: Any, index: _FrameIndex, target: int, stats: _DecodeStats, name: str
) -> Iterator[Any]:
    """A frame iterator positioned at or before ``target``.

    Seeks (backward) to the timestamp of the keyframe before ``target``; if the demuxer lands
    after the target anyway (seek tables keyed by decode time, open GOPs, approximate keyframe
    positions), retries from the two keyframes before that, then from the start."""
    import av

    pos = bisect.bisect_right(index.keyframes, target) - 1
    candidates: list[int | None] = [
        index.pts_of(index.keyframes[k]) for k in range(pos, max(pos - 3, -1), -1)
    ]
    candidates.append(None)  # from the start
    for offset in candidates:
        if offset is None:
            try:
                container.seek(0)
            except av.FFmpegError as exc:
                raise _IndexMismatch(f"seek failed: {_one_line(exc)}") from None
            stats.seeks += 1
        frames = _decode_from(container, stream, offset, stats)
        first = next(frames, None)
        if first is None:
            continue
        if first.pts is not None and index.index_of(first.pts) <= target:
            return _chain(first, frames)  # the consumer counts this frame
        stats.decoded += 1
        if offset is None:
            raise _IndexMismatch(f"decoding from the start begins after frame {target}")
    raise InputError(f"video {name}: cannot decode frame {target} (seek failed)")


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _read_pyav_sequential(
    container: Any,
    stream: Any,
    wanted: Sequence[int],
    size: tuple[int, int] | None,
    stats: _DecodeStats,
    name: str,
) -> dict[int, Image.Image]:
    """Decode a freshly opened container from its start, counting frames (no usable timestamps)."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    out: dict[int, Image.Image] = {}
    remaining = set(wanted)
    last = max(wanted)
    for i, frame in enumerate(_decode_from(container, stream, None, stats)):
        stats.decoded += 1
        if i in remaining:
            out[i] = _convert(frame, size, reformatter)
        if i >= last:
            break
    if len(out) < len(remaining):
        raise InputError(f"video {name} ends before frame {last} (truncated or corrupt)")
    return out


def _read_pyav(
    path: Path,
    container: Any,
    stream: Any,
    index: _FrameIndex,
    header: VideoInfo,
    wanted: Sequence[int],
    size: tuple[int, int] | None,
    stats: _DecodeStats,
) -> tuple[dict[int, Image.Image], _FrameIndex]:
    """PyAV reading with fallbacks: container index -> packet scan -> decode order.

    Fallbacks that must start over from the beginning use a freshly opened container, because
    some inputs (raw elementary streams) cannot seek back to their start.
    """
    import av

    name = path.name
    try:
        try:
            if index.method != "decode-order":
                return _read_pyav_indexed(container, stream, index, wanted, size, stats, name), index
        except _IndexMismatch:
            if index.method == "container-index":
                fresh, fresh_stream = _open(path)
                try:
                    scanned = _scan_index(fresh, fresh_stream, name)
                finally:
                    fresh.close()
                if scanned.method == "packet-scan" and scanned.n_frames == index.n_frames:
                    return _read_pyav(path, container, stream, scanned, header, wanted, size, stats)
        fresh, fresh_stream = _open(path)
        try:
            return _read_pyav_sequential(fresh, fresh_stream, wanted, size, stats, name), index
        finally:
            fresh.close()
    except av.FFmpegError as exc:
        raise InputError(f"video {name} cannot be decoded: {_one_line(exc)}") from None


def _read_torchcodec(
    path: Path, wanted: Sequence[int], n_frames: int, size: tuple[int, int] | None
) -> dict[int, Image.Image] | None:
    from PIL import Image
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(path), seek_mode="exact", dimension_order="NHWC")
    if decoder.metadata.num_frames != n_frames:
        return None
    batch = decoder.get_frames_at(indices=list(wanted)).data.numpy()
    out = {}
    for i, array in zip(wanted, batch, strict=True):
        image = Image.fromarray(array)
        if size is not None and (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        out[i] = image
    return out


def _read_decord(
    path: Path, wanted: Sequence[int], n_frames: int, size: tuple[int, int] | None
) -> dict[int, Image.Image] | None:
    import decord
    from PIL import Image

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    if len(reader) != n_frames:
        return None
    out = {}
    for i in wanted:  # one at a time: get_batch would hold a second copy of every frame
        image = Image.fromarray(reader[i].asnumpy())
        if size is not None and (image.height, image.width) != size:
            image = image.resize((size[1], size[0]), Image.Resampling.BICUBIC)
        out[i] = image
    return out


def available_backends() -> list[str]:
    """Installed decoder backends, in the order ``backend="auto"`` tries them."""
    found = [name for name in ("torchcodec", "decord") if importlib.util.find_spec(name) is not None]
    return [*found, "pyav"]


def _backend_order(backend: str) -> list[str]:
    if backend == "auto":
        return available_backends()
    if backend not in BACKENDS:
        raise UsageError(f"unknown video backend {backend!r}; choose from auto, {', '.join(BACKENDS)}")
    if backend != "pyav" and importlib.util.find_spec(backend) is None:
        raise MissingDependencyError(f"video backend {backend!r} is not installed (pip install {backend})")
    return [backend]


@dataclass(frozen=True)
class SampledVideo:
    """The frames sampled from one video, with what is needed to record and reproduce them.

    Attributes:
        frames: RGB PIL images, one per index (repeated indices share one image object).
        timestamps: seconds from the video's first frame, one per frame (``index / fps``).
        indices: frame indices (presentation order), one per frame.
        info: the video's :class:`VideoInfo` (``n_frames`` from the frame index).
        plan: the :class:`FramePlan` that chose the frames.
        frame_size: ``(height, width)`` of the returned frames.
        backend: decoder that produced the frames (``pyav``, ``torchcodec``, ``decord``).
        frame_index: how frames were identified (``container-index``, ``packet-scan``,
            ``decode-order``); see :class:`_FrameIndex`.
        decoded_frames: frames the decoder produced (PyAV only; -1 otherwise).
        seeks: seeks performed (PyAV only; -1 otherwise).
        notes: fallbacks applied (from the plan and the decoder choice).
    """

    frames: list[Image.Image]
    timestamps: tuple[float, ...]
    indices: tuple[int, ...]
    info: VideoInfo
    plan: FramePlan
    frame_size: tuple[int, int]
    backend: str
    frame_index: str
    decoded_frames: int = -1
    seeks: int = -1
    notes: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """JSON-serialisable per-sample metadata (for the samples file)."""
        return {
            "indices": list(self.indices),
            "timestamps": [round(t, 6) for t in self.timestamps],
            "n_total_frames": self.info.n_frames,
            "video_fps": self.info.fps,
            "clip_frames": list(self.plan.clip),
            "frame_size": list(self.frame_size),
            "frame_pixels": list(self.plan.frame_pixels),
            "sample_fps": self.plan.sample_fps,
            "backend": self.backend,
            "frame_index": self.frame_index,
            "notes": list(self.notes),
        }


def _read_planned(
    path: Path,
    container: Any,
    stream: Any,
    index: _FrameIndex,
    header: VideoInfo,
    plan: FramePlan,
    backend: str,
    size: tuple[int, int] | None,
) -> tuple[list[Image.Image], str, _FrameIndex, _DecodeStats, list[str]]:
    wanted = sorted(set(plan.indices))
    notes: list[str] = []
    stats = _DecodeStats(decoded=-1, seeks=-1)
    for name in _backend_order(backend):
        got: dict[int, Image.Image] | None
        if name == "pyav":
            stats = _DecodeStats()
            got, index = _read_pyav(path, container, stream, index, header, wanted, size, stats)
        else:
            reader = _read_torchcodec if name == "torchcodec" else _read_decord
            try:
                got = reader(path, wanted, index.n_frames, size)
            except Exception as exc:  # a broken optional backend must not fail the sample
                notes.append(f"{name} failed ({_one_line(exc)}); fell back")
                continue
            if got is None:
                notes.append(f"{name} counts a different number of frames; fell back")
                continue
        return [got[i] for i in plan.indices], name, index, stats, notes
    raise InputError(f"no decoder could read {path.name}")  # unreachable: pyav is always last


def read_frames(
    path: str | Path,
    plan: FramePlan,
    backend: str = "auto",
    size: tuple[int, int] | None = None,
) -> list[Image.Image]:
    """Decode the frames of ``plan`` from ``path`` as RGB PIL images, in plan order.

    Only the planned frames are decoded and kept (repeated indices share one image); see
    :func:`sample_video` for the decoding strategy. ``backend``: ``"auto"`` (torchcodec, then
    decord, then PyAV: whichever is installed first), or one of :data:`BACKENDS`. A faster
    backend is used only when it counts the same number of frames as evalkit's frame index, so
    the selection is identical; otherwise PyAV decodes. ``size`` = ``(height, width)`` resizes
    each kept frame right after decoding (bicubic), bounding memory by the resized frames.

    Raises :class:`InputError` for unusable videos and when ``plan`` was made for a different
    frame count than the video has.
    """
    p = _check_path(path)
    container, stream = _open(p)
    try:
        header = _header_info(container, stream, p)
        index = _build_index(container, stream, header, p.name)
        if plan.n_total_frames != index.n_frames:
            raise InputError(
                f"frame plan is for {plan.n_total_frames} frames but {p.name} has {index.n_frames}"
            )
        frames, *_ = _read_planned(p, container, stream, index, header, plan, backend, size)
    finally:
        container.close()
    return frames


def sample_video(
    path: str | Path,
    sampling: VideoSampling,
    start_s: float | None = None,
    end_s: float | None = None,
    backend: str = "auto",
    resize: bool = True,
) -> SampledVideo:
    """Sample a video (or the clip ``[start_s, end_s]`` in seconds) as ``sampling`` says.

    Steps: open with PyAV; build the frame index (container sample table, else a packet scan:
    no decoding); :func:`plan_frames` with the exact frame count and the average frame rate;
    decode only the planned frames. PyAV seeks to the keyframe before a wanted frame when that
    keyframe lies more than :data:`SEEK_MIN_SKIP` frames past the last decoded frame, otherwise it
    decodes forward; frames are identified by timestamp, so the selection equals decoding every
    frame and picking. Peak memory: the kept frames plus the decoder's working set.

    With ``resize=True`` (default) each kept frame is resized (bicubic) right after decoding to
    :func:`resize_frame_budget` for the plan's frame count, i.e. what the Qwen2-VL processor
    expects (qwen-vl-utils resizes with torchvision's antialiased bicubic; values can differ by
    one grey level). ``resize=False`` keeps the decoded size.

    Raises :class:`InputError` (one line) for a missing, empty, truncated, undecodable or
    stream-less file and for unusable clip bounds; :class:`UsageError` /
    :class:`MissingDependencyError` for a bad ``backend``.
    """
    p = _check_path(path)
    container, stream = _open(p)
    try:
        header = _header_info(container, stream, p)
        if header.fps <= 0:
            raise InputError(f"video {p.name} has no frame rate")
        index = _build_index(container, stream, header, p.name)
        plan = plan_frames(index.n_frames, header.fps, sampling, start_s, end_s)
        size = None
        if resize:
            if header.width <= 0 or header.height <= 0:
                raise InputError(f"video {p.name} has no frame size")
            size = resize_frame_budget(header.height, header.width, sampling, plan.nframes)
        frames, used, index, stats, notes = _read_planned(
            p, container, stream, index, header, plan, backend, size
        )
    finally:
        container.close()
    info = VideoInfo(
        n_frames=index.n_frames,
        fps=header.fps,
        duration_s=header.duration_s,
        width=header.width,
        height=header.height,
        codec=header.codec,
        n_frames_source="index",
    )
    return SampledVideo(
        frames=frames,
        timestamps=plan.timestamps,
        indices=plan.indices,
        info=info,
        plan=plan,
        frame_size=size if size is not None else (frames[0].height, frames[0].width),
        backend=used,
        frame_index=index.method,
        decoded_frames=stats.decoded,
        seeks=stats.seeks,
        notes=plan.notes + tuple(notes),
    )
