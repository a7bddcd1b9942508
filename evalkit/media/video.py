"""Video input: frame sampling as the model preset defines it, and decoding of only those frames.

The public API (:func:`probe_video`, :func:`read_frames`, :func:`sample_video`,
:class:`SampledVideo`, and the names below re-exported from the two halves):

* **Planning** (pure, no I/O; :mod:`evalkit.media.frame_plan`): :class:`VideoSampling` holds the
  protocol knobs of a model preset / task config; :func:`plan_frames` turns a video's frame count
  and rate (and optional clip bounds) into a :class:`FramePlan` (frame indices, timestamps,
  per-frame pixel budget) exactly as qwen-vl-utils does (``smart_nframes`` +
  ``torch.linspace(...).round()`` + ``calculate_video_frame_range``); :func:`resize_frame_budget`
  gives the per-frame size.
* **Decoding** (:mod:`evalkit.media.video_decode`): the frame index (built without decoding), one
  PyAV decode loop that seeks to the keyframe before a wanted frame when that skips work and
  otherwise decodes forward, and torchcodec / decord when installed, selecting the same frames.
  Only the wanted frames are ever kept.

**Frame index.** Frame ``i`` is the ``i``-th frame in presentation order, i.e. the ``i``-th frame
a decoder outputs when the stream is decoded from its start (what decord and torchcodec call frame
``i``, and what "decode everything and pick" gives). Frames are identified after a seek by their
presentation timestamp, never by counting (see :class:`evalkit.media.video_decode._FrameIndex`).

Every user-fixable failure of one video raises :class:`evalkit.errors.InputError` with a one-line
message, so the runner records it per sample. Heavy modules (``av``, ``torchcodec``, ``decord``)
are imported inside functions only. See ``docs/video.md`` for the protocol knobs and fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import InputError
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

# decoding (and VideoInfo, what the container header says) lives in video_decode; re-exported
from evalkit.media.video_decode import (  # noqa: F401
    BACKENDS,
    VideoInfo,
    _build_index,
    _check_path,
    _convert,
    _header_info,
    _open,
    _read_planned,
    available_backends,
    configure_decoder,
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
            ``decode-order``); see :class:`~evalkit.media.video_decode._FrameIndex`.
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
        frames, *_ = _read_planned(p, container, stream, index, plan, backend, size)
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
    keyframe lies more than :data:`~evalkit.media.video_decode.SEEK_MIN_SKIP` frames past the
    last decoded frame, otherwise it decodes forward; frames are identified by timestamp (by
    counting from the start when the stream has none), so the selection equals decoding every
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
        frames, used, index, stats, notes = _read_planned(p, container, stream, index, plan, backend, size)
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
