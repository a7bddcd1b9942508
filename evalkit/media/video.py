"""Video input: frame sampling as the model preset defines it, and decoding of only those frames.

Two halves:

* **Planning** (pure, no I/O): :class:`VideoSampling` holds the protocol knobs of a model preset /
  task config; :func:`plan_frames` turns a video's frame count and rate (and optional clip bounds)
  into a :class:`FramePlan` (frame indices, timestamps, per-frame pixel budget) exactly as
  qwen-vl-utils does (``smart_nframes`` + ``torch.linspace(...).round()`` +
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
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from evalkit.errors import InputError, MissingDependencyError, UsageError

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
# Protocol knobs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoSampling:
    """How frames are sampled from a video and how large each frame may be (Qwen2-VL defaults).

    Exactly one mode is active: ``fps`` (frames per second of video) or ``nframes`` (a fixed
    count). Leaving both unset means ``fps=2.0``; setting ``nframes`` alone switches ``fps`` off.
    The instance is frozen and validated; build it from a preset / task config with
    :meth:`from_config` and record it with :meth:`to_dict`.

    Attributes:
        fps: sampling rate in frames per second of video (Qwen2-VL: 2.0). The count is
            ``clip_frames / video_fps * fps``, clamped to ``[min_frames, max_frames]`` and to the
            clip's frame count, then made a multiple of ``frame_factor`` (see ``rounding``).
        nframes: fixed number of frames, rounded to the nearest multiple of ``frame_factor``
            (Python ``round``, ties to even: 13 -> 12, 15 -> 16). ``min_frames`` / ``max_frames``
            do not apply in this mode (as in qwen-vl-utils).
        min_frames: fps mode: lower bound on the count, rounded up to ``frame_factor`` (4).
        max_frames: fps mode: upper bound on the count, rounded down to ``frame_factor`` (768,
            the Qwen2-VL Video-MME setting); always also capped at the clip's frame count.
        frame_factor: the count is a multiple of this (2 = Qwen2-VL's temporal patch size).
        min_pixels: lower bound on each frame's pixel count after resizing (128 * 28 * 28).
        max_pixels: an explicit per-frame pixel budget (qwen-vl-utils' ``max_pixels`` of the video
            element), or ``None`` (not given: the budget comes from ``total_pixels``, capped at
            qwen-vl-utils' ``VIDEO_MAX_PIXELS`` = 768 * 28 * 28). What an explicit value does depends
            on ``max_pixels_rule``.
        max_pixels_rule: ``"replace"`` (qwen-vl-utils <= 0.0.8, the release Qwen2-VL's README
            installed; the ``qwen2_vl`` default): an explicit ``max_pixels`` *is* the per-frame
            budget, whatever the frame count; ``"min"`` (qwen-vl-utils >= 0.0.9): the budget is the
            smaller of ``max_pixels`` and the ``total_pixels`` budget.
        total_pixels: budget for the whole clip: each frame may use at most
            ``total_pixels / nframes * frame_factor`` pixels, but never less than
            ``int(1.05 * min_pixels)`` (24576 * 28 * 28, qwen-vl-utils <= 0.0.8; later versions
            use 128000 * 28 * 28 * 0.9).
        image_factor: resized sides are multiples of this (28 = 14-px patches merged 2 x 2).
        rounding: how fps mode makes the count a multiple of ``frame_factor``: ``"round"``
            (nearest, qwen-vl-utils <= 0.0.8, the Qwen2-VL release) or ``"floor"``
            (qwen-vl-utils >= 0.0.9, Qwen2.5-VL era). The two differ by ``frame_factor`` frames
            on some durations.
        short_video: what to do when the clip has fewer frames than the count asks for:
            ``"limit"`` (default) samples every frame it can without repeating, i.e. the count
            becomes the largest multiple of ``frame_factor`` <= the clip's frames (a one-frame
            clip is repeated to ``frame_factor`` frames); this is qwen-vl-utils' own behaviour in
            fps mode. ``"repeat"`` keeps the requested count and lets the evenly spaced indices
            repeat frames. ``"error"`` raises :class:`InputError` wherever qwen-vl-utils raises
            (requested ``nframes`` above the clip's frames, or fewer than ``frame_factor`` frames).
    """

    fps: float | None = None
    nframes: int | None = None
    min_frames: int = 4
    max_frames: int = 768
    frame_factor: int = 2
    min_pixels: int = 128 * 28 * 28
    max_pixels: int | None = None
    total_pixels: int = 24576 * 28 * 28
    image_factor: int = 28
    rounding: Literal["round", "floor"] = "round"
    short_video: Literal["limit", "repeat", "error"] = "limit"
    max_pixels_rule: Literal["replace", "min"] = "replace"

    def __post_init__(self) -> None:
        if self.fps is not None and self.nframes is not None:
            raise UsageError(
                f"video sampling: set either fps ({self.fps}) or nframes ({self.nframes}), not both"
            )
        if self.fps is None and self.nframes is None:
            object.__setattr__(self, "fps", _DEFAULT_FPS)
        if self.fps is not None and not (isinstance(self.fps, (int, float)) and self.fps > 0):
            raise UsageError(f"video sampling: fps must be a positive number, got {self.fps!r}")
        for name in (
            "min_frames",
            "max_frames",
            "frame_factor",
            "min_pixels",
            "total_pixels",
            "image_factor",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"video sampling: {name} must be a positive integer, got {value!r}")
        if self.nframes is not None:
            if not isinstance(self.nframes, int) or isinstance(self.nframes, bool):
                raise UsageError(f"video sampling: nframes must be an integer, got {self.nframes!r}")
            if _round_by_factor(self.nframes, self.frame_factor) < self.frame_factor:
                raise UsageError(
                    f"video sampling: nframes={self.nframes} rounds to fewer than frame_factor={self.frame_factor} frames"
                )
        if self.min_frames > self.max_frames:
            raise UsageError(
                f"video sampling: min_frames ({self.min_frames}) > max_frames ({self.max_frames})"
            )
        if self.max_pixels is not None and (
            not isinstance(self.max_pixels, int) or isinstance(self.max_pixels, bool) or self.max_pixels < 1
        ):
            raise UsageError(
                f"video sampling: max_pixels must be a positive integer or null, got {self.max_pixels!r}"
            )
        if self.max_pixels_rule not in ("replace", "min"):
            raise UsageError(
                f"video sampling: max_pixels_rule must be 'replace' or 'min', got {self.max_pixels_rule!r}"
            )
        if self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise UsageError(
                f"video sampling: min_pixels ({self.min_pixels}) > max_pixels ({self.max_pixels})"
            )
        if self.rounding not in ("round", "floor"):
            raise UsageError(f"video sampling: rounding must be 'round' or 'floor', got {self.rounding!r}")
        if self.short_video not in ("limit", "repeat", "error"):
            raise UsageError(
                f"video sampling: short_video must be 'limit', 'repeat' or 'error', got {self.short_video!r}"
            )

    @property
    def mode(self) -> Literal["fps", "nframes"]:
        """``"nframes"`` when a fixed count is set, else ``"fps"``."""
        return "nframes" if self.nframes is not None else "fps"

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> VideoSampling:
        """Build from a preset / task config mapping (a dict or an OmegaConf ``DictConfig``).

        Unknown keys raise :class:`UsageError` (a misspelt knob must not be silently ignored).
        ``None`` or an empty mapping gives the Qwen2-VL defaults. Setting ``nframes`` in a config
        that inherits ``fps`` from a preset needs ``fps: null`` next to it.
        """
        if config is None:
            return cls()
        data = dict(config.items())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"video sampling: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """All knobs as plain values, for results files (the active mode's other field is None)."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FramePlan:
    """Which frames to take from one video, and the pixel budget for each.

    Attributes:
        indices: frame indices (presentation order, 0-based), non-decreasing; repeated only under
            ``short_video="repeat"`` or for a one-frame clip.
        timestamps: ``index / video_fps`` in seconds from the first frame, one per index.
        frame_pixels: ``(min_pixels, max_pixels)`` for each resized frame: the per-frame budget
            ``max(min(768 * 28 * 28, total_pixels / n * frame_factor), int(1.05 * min_pixels))``
            (a float, as in qwen-vl-utils); an explicit ``max_pixels`` replaces it
            (``max_pixels_rule="replace"``) or caps it (``"min"``).
        n_total_frames: the video's frame count the plan was made for.
        video_fps: the video's average frame rate the plan was made for.
        clip: ``(first, last)`` frame index of the clip that was sampled (whole video if no bounds).
        sample_fps: ``n / clip_frames * video_fps``, the rate qwen-vl-utils reports with the video.
        notes: human-readable fallbacks that were applied (clamped bounds, short video...).
    """

    indices: tuple[int, ...]
    timestamps: tuple[float, ...]
    frame_pixels: tuple[int, float]
    n_total_frames: int
    video_fps: float
    clip: tuple[int, int]
    sample_fps: float
    notes: tuple[str, ...] = ()

    @property
    def nframes(self) -> int:
        """Number of sampled frames (with repeats)."""
        return len(self.indices)


def _round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def _ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def _floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def _to_f32(value: Fraction | int) -> Fraction:
    """Round an exact rational to the nearest IEEE float32 (ties to even), exactly."""
    q = Fraction(value)
    if q == 0:
        return Fraction(0)
    sign = -1 if q < 0 else 1
    q = abs(q)
    exp = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** exp > q:
        exp -= 1
    scale = Fraction(2) ** (23 - exp)  # mantissa in [2^23, 2^24)
    return sign * Fraction(round(q * scale)) / scale  # round() on Fraction: ties to even


def _linspace_round(start: int, end: int, steps: int) -> list[int]:
    """``torch.linspace(start, end, steps).round().long()`` (float32), reproduced exactly.

    torch's CPU kernel computes ``step = (end - start) / (steps - 1)`` in float32 and element
    ``i`` as ``start + step * i`` for the first half and ``end - step * (steps - 1 - i)`` for the
    second, each a fused multiply-add (one rounding), then rounds half to even. Near-ties on long
    videos (> ~30k frames) round differently from exact arithmetic, so exact arithmetic would pick
    other frames than qwen-vl-utils; tests check this function against the installed torch.
    """
    if steps == 1:
        return [start]
    if 0 <= start < 2**24 and 0 <= end < 2**24 and (end - start) >= (steps - 1) / 32:
        return _linspace_round_fast(start, end, steps)
    return _linspace_round_exact(start, end, steps)


def _linspace_round_exact(start: int, end: int, steps: int) -> list[int]:
    """:func:`_linspace_round` in exact rationals, rounding to float32 after every operation."""
    if steps == 1:
        return [start]
    s32, e32 = _to_f32(start), _to_f32(end)
    step = _to_f32(_to_f32(e32 - s32) / _to_f32(steps - 1))
    halfway = steps // 2
    out = []
    for i in range(steps):
        value = _to_f32(s32 + step * i) if i < halfway else _to_f32(e32 - step * (steps - 1 - i))
        out.append(round(value))  # ties to even, like torch.round
    return out


def _linspace_round_fast(start: int, end: int, steps: int) -> list[int]:
    """:func:`_linspace_round` in float64 numpy, exact under its caller's conditions.

    A float32 +, -, * or / done in float64 and rounded to float32 is correctly rounded (53 >= 2*24+2
    bits). For the fused multiply-add, ``step * i`` is exact in float64 (24 + 24 bits) and so is
    the sum while ``step >= 1/32`` and the bounds are integers below 2**24 (at most 48 - log2(step)
    <= 53 significant bits), leaving a single rounding to float32, as in the fused operation.
    """
    import numpy as np

    f32, f64 = np.float32, np.float64
    s32, e32 = f64(f32(start)), f64(f32(end))
    step = f64(f32(f64(f32(e32 - s32)) / f64(f32(steps - 1))))
    i = np.arange(steps, dtype=np.float64)
    head = (s32 + step * i).astype(np.float32)
    tail = (e32 - step * (steps - 1 - i)).astype(np.float32)
    values = np.where(i < steps // 2, head, tail)
    return [int(v) for v in np.rint(values)]  # rint: ties to even


#: qwen-vl-utils' ``VIDEO_MAX_PIXELS``: the cap of the ``total_pixels`` budget of one frame
VIDEO_MAX_PIXELS = 768 * 28 * 28


def _frame_budget(sampling: VideoSampling, nframes: int) -> float:
    """The per-frame ``max_pixels`` qwen-vl-utils passes to ``smart_resize`` (by version rule)."""
    derived = max(
        min(VIDEO_MAX_PIXELS, sampling.total_pixels / nframes * sampling.frame_factor),
        int(sampling.min_pixels * 1.05),
    )
    if sampling.max_pixels is None:
        return derived
    if sampling.max_pixels_rule == "replace":  # <= 0.0.8: ele.get("max_pixels", derived)
        return sampling.max_pixels
    return min(sampling.max_pixels, derived)  # >= 0.0.9: the smaller of the two


def _clip_range(
    n_total: int, video_fps: float, start_s: float | None, end_s: float | None, notes: list[str]
) -> tuple[int, int]:
    """First and last frame of a clip, as qwen-vl-utils' ``calculate_video_frame_range``."""
    if start_s is None and end_s is None:
        return 0, n_total - 1
    if start_s is not None and end_s is not None and start_s >= end_s:
        raise InputError(f"video clip start {start_s}s is not before its end {end_s}s")
    max_duration = n_total / video_fps
    start_frame = 0
    if start_s is not None:
        clamped = max(0.0, min(start_s, max_duration))
        if clamped != start_s:
            notes.append(f"clip start {start_s}s clamped to {clamped}s (video is {max_duration:.3f}s)")
        start_frame = math.ceil(clamped * video_fps)
    end_frame = n_total - 1
    if end_s is not None:
        clamped = max(0.0, min(end_s, max_duration))
        if clamped != end_s:
            notes.append(f"clip end {end_s}s beyond the video's end {max_duration:.3f}s; clamped to the end")
        end_frame = min(math.floor(clamped * video_fps), n_total - 1)
    if start_frame >= end_frame:
        raise InputError(
            f"video clip [{start_s}, {end_s}]s holds fewer than 2 frames (frames {start_frame}..{end_frame} "
            f"of a {max_duration:.3f}s video at {video_fps:g} fps)"
        )
    return start_frame, end_frame


def _count_frames(clip_frames: int, video_fps: float, sampling: VideoSampling, notes: list[str]) -> int:
    """Number of frames to sample from a clip (qwen-vl-utils' ``smart_nframes`` + fallbacks)."""
    ff = sampling.frame_factor
    policy = sampling.short_video
    if sampling.nframes is not None:
        requested = _round_by_factor(sampling.nframes, ff)
        capped = requested
        if requested > clip_frames:
            capped = _floor_by_factor(clip_frames, ff)
    else:
        assert sampling.fps is not None
        min_f = _ceil_by_factor(sampling.min_frames, ff)
        wanted = clip_frames / video_fps * sampling.fps
        max_uncapped = _floor_by_factor(sampling.max_frames, ff)
        max_f = _floor_by_factor(min(sampling.max_frames, clip_frames), ff)
        if sampling.rounding == "round":  # qwen-vl-utils <= 0.0.8
            requested = _round_by_factor(min(max(wanted, min_f), max_uncapped), ff)
            capped = _round_by_factor(min(max(wanted, min_f), max_f), ff)
        else:  # qwen-vl-utils >= 0.0.9
            requested = _floor_by_factor(min(max(wanted, min_f), max_uncapped), ff)
            capped = _floor_by_factor(min(max(wanted, min_f), max_f, clip_frames), ff)
    if capped >= ff and capped == requested:
        return requested
    # The clip is shorter than the count asks for.
    if policy == "error":
        if capped >= ff and sampling.nframes is None:
            return capped  # qwen-vl-utils' fps mode caps at the clip silently
        raise InputError(
            f"video clip has {clip_frames} frame(s), fewer than the {requested} requested "
            f"(short_video='error'; use 'limit' or 'repeat' to sample it anyway)"
        )
    if policy == "repeat":
        notes.append(f"clip has {clip_frames} frame(s) < {requested} requested; frames repeated")
        return requested
    if capped >= ff:
        if sampling.nframes is not None:
            notes.append(f"clip has {clip_frames} frame(s) < nframes {requested}; sampled {capped}")
        return capped
    notes.append(f"clip has {clip_frames} frame(s) < frame_factor {ff}; frames repeated to {ff}")
    return ff


def plan_frames(
    n_total_frames: int,
    video_fps: float,
    sampling: VideoSampling,
    start_s: float | None = None,
    end_s: float | None = None,
) -> FramePlan:
    """Choose the frames to sample from a video of ``n_total_frames`` frames at ``video_fps``.

    Pure function. Matches qwen-vl-utils: the clip ``[start_s, end_s]`` (seconds, either may be
    None) becomes frames ``ceil(start_s * fps) .. min(floor(end_s * fps), n - 1)`` with bounds first
    clamped to ``[0, n / fps]`` (``calculate_video_frame_range``); the count comes from
    ``smart_nframes`` on the clip's frame count; the indices are
    ``torch.linspace(first, last, count).round()`` in float32.

    Fallbacks (recorded in :attr:`FramePlan.notes`): a bound beyond the video's end is clamped to
    the end; a negative start is clamped to 0; a clip shorter than the count follows
    ``sampling.short_video``. Raises :class:`InputError` when ``start_s >= end_s``, when the clip
    holds fewer than 2 frames (including a start at or beyond the end), or when the video has no
    frames or no valid rate.
    """
    if n_total_frames < 1:
        raise InputError("video has no frames")
    if not (video_fps > 0 and math.isfinite(video_fps)):
        raise InputError(f"video has no valid frame rate ({video_fps!r})")
    notes: list[str] = []
    first, last = _clip_range(n_total_frames, video_fps, start_s, end_s, notes)
    clip_frames = last - first + 1
    n = _count_frames(clip_frames, video_fps, sampling, notes)
    indices = tuple(_linspace_round(first, last, n))
    return FramePlan(
        indices=indices,
        timestamps=tuple(i / video_fps for i in indices),
        frame_pixels=(sampling.min_pixels, _frame_budget(sampling, n)),
        n_total_frames=n_total_frames,
        video_fps=float(video_fps),
        clip=(first, last),
        sample_fps=n / clip_frames * video_fps,
        notes=tuple(notes),
    )


def smart_resize(
    height: int, width: int, factor: int, min_pixels: float, max_pixels: float
) -> tuple[int, int]:
    """qwen-vl-utils' ``smart_resize``: sides multiples of ``factor``, area within the bounds.

    Keeps the aspect ratio as closely as possible. Raises :class:`InputError` for an aspect ratio
    above 200 (as qwen-vl-utils refuses it) or a non-positive side.
    """
    if height < 1 or width < 1:
        raise InputError(f"frame size {width}x{height} is empty")
    if max(height, width) / min(height, width) > _MAX_ASPECT_RATIO:
        raise InputError(
            f"frame aspect ratio {max(height, width) / min(height, width):.1f} exceeds {_MAX_ASPECT_RATIO}"
        )
    h_bar = max(factor, _round_by_factor(height, factor))
    w_bar = max(factor, _round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, _floor_by_factor(height / beta, factor))
        w_bar = max(factor, _floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by_factor(height * beta, factor)
        w_bar = _ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def resize_frame_budget(height: int, width: int, sampling: VideoSampling, nframes: int) -> tuple[int, int]:
    """``(height, width)`` each frame is resized to when ``nframes`` frames are sampled.

    ``smart_resize`` with ``factor=image_factor``, ``min_pixels`` and the per-frame budget of
    :attr:`FramePlan.frame_pixels` (which shrinks as more frames share ``total_pixels``).
    """
    if nframes < 1:
        raise ValueError("nframes must be >= 1")
    return smart_resize(
        height, width, sampling.image_factor, sampling.min_pixels, _frame_budget(sampling, nframes)
    )


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
