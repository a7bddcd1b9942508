"""Video frame planning (pure, no I/O): which frames of a video a model preset samples, and at what size.

:class:`VideoSampling` holds the protocol knobs of a model preset / task config; :func:`plan_frames`
turns a video's frame count and rate (and optional clip bounds) into a :class:`FramePlan` (frame
indices, timestamps, per-frame pixel budget) exactly as qwen-vl-utils does (``smart_nframes`` +
``torch.linspace(...).round()`` + ``calculate_video_frame_range``); :func:`resize_frame_budget`
gives the per-frame size. Decoding the planned frames is :mod:`evalkit.media.video`'s half.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any, Literal

from evalkit.errors import InputError, UsageError

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
