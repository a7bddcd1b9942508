"""Video decoding: open a container, index its frames, and decode only the wanted ones.

The decoding half of :mod:`evalkit.media.video` (which keeps the public API and re-exports what
other code uses); frame *planning* is :mod:`evalkit.media.frame_plan`.

* **Container access**: :func:`_open` (PyAV, decoder threading by :func:`configure_decoder`),
  :func:`_header_info` (a :class:`VideoInfo` from the stream header, no decoding).
* **Frame index** (:class:`_FrameIndex`): frame ``i`` is the ``i``-th frame in presentation
  order, i.e. the ``i``-th frame a decoder outputs when the stream is decoded from its start (what
  decord and torchcodec call frame ``i``). Built without decoding, from the container's sample
  table or a packet scan; a stream without usable timestamps gets a ``"decode-order"`` index.
* **One PyAV decode loop** (:func:`_decode_wanted`): it is told how a decoded frame is identified
  (:class:`_ByTimestamp`: by its pts through the frame index, seeking to the keyframe before a
  wanted frame when that skips more than :data:`SEEK_MIN_SKIP` frames; :class:`_ByPosition`: by
  counting from the start, never seeking). :func:`_read_pyav` applies the fallbacks: container
  index -> packet scan -> decode order.
* **Backends**: torchcodec / decord when installed and when they count the same frames as the
  index (:func:`_read_planned` picks; PyAV is always last).

Every user-fixable failure of one video raises :class:`evalkit.errors.InputError` with a one-line
message. Heavy modules (``av``, ``torchcodec``, ``decord``, PIL) are imported inside functions only.
"""

from __future__ import annotations

import bisect
import importlib.util
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from evalkit.errors import InputError, MissingDependencyError, UsageError
from evalkit.media.frame_plan import FramePlan

if TYPE_CHECKING:
    from PIL import Image

BACKENDS = ("pyav", "torchcodec", "decord")
"""Decoder backends; ``"auto"`` picks the first installed of torchcodec, decord, then pyav."""


# --------------------------------------------------------------------------------------------
# Container access and header
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream.

    Attributes:
        n_frames: frame count. From the stream header when it has one; when the header says 0
            (Matroska/WebM, some MPEG-TS) it is ``round(duration_s * fps)`` (``n_frames_source``
            says which). :func:`~evalkit.media.video.sample_video` replaces it with the exact count from the frame
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


# --------------------------------------------------------------------------------------------
# The frame index
# --------------------------------------------------------------------------------------------


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
    """What one PyAV read cost: frames the decoder produced, seeks made."""

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


class _FrameIdentity(Protocol):
    """How :func:`_decode_wanted` tells which frame the decoder produced, and where a run starts."""

    def begin(
        self, container: Any, stream: Any, target: int, stats: _DecodeStats, name: str
    ) -> Iterator[Any]:
        """A frame iterator positioned at or before frame ``target`` (a new decode run)."""
        ...

    def restart_for(self, target: int, last: int) -> bool:
        """Whether to start a new run for ``target`` when the current run last decoded ``last``."""
        ...

    def frame_of(self, frame: Any, last: int) -> int:
        """The index of ``frame``, the frame decoded after frame ``last`` of this run (-1: none)."""
        ...

    def ends_before(self, name: str, target: int, wanted: Sequence[int]) -> str:
        """The message when the stream ends before ``target``."""
        ...


@dataclass(frozen=True)
class _ByTimestamp:
    """Frames identified by their pts through the frame index; a run may start at a seek.

    A new run (seek) starts when the keyframe before the next wanted frame lies more than
    :data:`SEEK_MIN_SKIP` frames past the last decoded one."""

    index: _FrameIndex

    def begin(
        self, container: Any, stream: Any, target: int, stats: _DecodeStats, name: str
    ) -> Iterator[Any]:
        return _seek_to(container, stream, self.index, target, stats, name)

    def restart_for(self, target: int, last: int) -> bool:
        return self.index.keyframe_at_or_before(target) > last + SEEK_MIN_SKIP

    def frame_of(self, frame: Any, last: int) -> int:
        return self.index.index_of(frame.pts)

    def ends_before(self, name: str, target: int, wanted: Sequence[int]) -> str:
        return f"video {name} ends before frame {target} of {self.index.n_frames} (truncated or corrupt)"


@dataclass(frozen=True)
class _ByPosition:
    """Frames identified by counting from the start of a freshly opened container (no usable
    timestamps): one run, never a seek."""

    def begin(
        self, container: Any, stream: Any, target: int, stats: _DecodeStats, name: str
    ) -> Iterator[Any]:
        return _decode_from(container, stream, None, stats)

    def restart_for(self, target: int, last: int) -> bool:
        return False

    def frame_of(self, frame: Any, last: int) -> int:
        return last + 1

    def ends_before(self, name: str, target: int, wanted: Sequence[int]) -> str:
        return f"video {name} ends before frame {wanted[-1]} (truncated or corrupt)"


def _decode_wanted(
    container: Any,
    stream: Any,
    identity: _FrameIdentity,
    wanted: Sequence[int],
    size: tuple[int, int] | None,
    stats: _DecodeStats,
    name: str,
) -> dict[int, Image.Image]:
    """Decode the sorted unique ``wanted`` frames, identifying each decoded frame by ``identity``.

    Only the wanted frames are converted (and resized to ``size``). Raises :class:`_IndexMismatch`
    when the identities contradict the decoder (it went backwards, or skipped a wanted frame) and
    :class:`InputError` when the stream ends before a wanted frame."""
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()
    out: dict[int, Image.Image] = {}
    frames: Iterator[Any] | None = None
    cur = -1  # index of the last decoded frame of the current decode run
    for target in wanted:
        if frames is None or identity.restart_for(target, cur):
            if frames is not None:
                frames.close()
            frames = identity.begin(container, stream, target, stats, name)
            cur = -1
        found = False
        for frame in frames:
            stats.decoded += 1
            i = identity.frame_of(frame, cur)
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
            raise InputError(identity.ends_before(name, target, wanted))
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


def _read_pyav(
    path: Path,
    container: Any,
    stream: Any,
    index: _FrameIndex,
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
                got = _decode_wanted(container, stream, _ByTimestamp(index), wanted, size, stats, name)
                return got, index
        except _IndexMismatch:
            if index.method == "container-index":
                fresh, fresh_stream = _open(path)
                try:
                    scanned = _scan_index(fresh, fresh_stream, name)
                finally:
                    fresh.close()
                if scanned.method == "packet-scan" and scanned.n_frames == index.n_frames:
                    return _read_pyav(path, container, stream, scanned, wanted, size, stats)
        fresh, fresh_stream = _open(path)
        try:
            return _decode_wanted(fresh, fresh_stream, _ByPosition(), wanted, size, stats, name), index
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


def _read_planned(
    path: Path,
    container: Any,
    stream: Any,
    index: _FrameIndex,
    plan: FramePlan,
    backend: str,
    size: tuple[int, int] | None,
) -> tuple[list[Image.Image], str, _FrameIndex, _DecodeStats, list[str]]:
    """The frames of ``plan`` (in plan order) from the first backend of ``backend`` that reads them.

    Returns ``(frames, backend used, frame index used, PyAV stats, notes on fallbacks)``; the
    index changes when PyAV had to rebuild it from a packet scan."""
    wanted = sorted(set(plan.indices))
    notes: list[str] = []
    stats = _DecodeStats(decoded=-1, seeks=-1)
    for name in _backend_order(backend):
        got: dict[int, Image.Image] | None
        if name == "pyav":
            stats = _DecodeStats()
            got, index = _read_pyav(path, container, stream, index, wanted, size, stats)
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
