"""SEED-Bench (v1): ``seedbench_img`` / ``seedbench_video`` (option log-likelihood, the official and
Qwen-VL protocol) and their generative variants ``seedbench_img_gen`` / ``seedbench_video_gen``.

**Data**: ``lmms-lab/SEED-Bench`` split ``test`` (19,242 questions: 14,233 image questions of
dimensions 1-9, 5,009 video questions of dimensions 10-12). Columns: ``answer`` (a letter A-D),
``choice_a``-``choice_d``, ``data_id``, ``data_type`` (``image`` / ``video``), ``question``,
``question_id``, ``question_type_id`` (the evaluation dimension, 1-12), ``image`` (a list of images:
the picture, or the frames extracted from the video clip), ``segment``. The image tasks keep the
``data_type == "image"`` rows, the video tasks the ``video`` rows.

**Protocols** (``task.mode``):

* ``likelihood`` (``seedbench_img``, ``seedbench_video``; Qwen-VL ``eval_mm/seed_bench``): each option
  letter is a candidate continuation after ``Question: ...\\nOptions: A. ...\\nAnswer:`` (preset
  ``qwen_vl``: completion style, a newline after every image, candidates ``" A"``...); the highest
  mean log-probability per token wins (request kind ``choice_logprobs``).
* ``generate`` (``*_gen``; lmms-eval ``seedbench``): ``{question}\\nA. ...\\nD. ...\\nAnswer with the
  option's letter from the given choices directly.``; scorer ``lmms_eval``: the first character of
  the stripped answer must be the gold letter.

**Video frames**: ``task.frames`` frames (Qwen-VL used 4 per video) are taken from the clip's stored
frames with Qwen-VL's segment rule (:func:`segment_indices`: the middle of ``frames`` equal
segments; all frames when there are fewer), each passed as an image.

Reported: ``accuracy`` with a breakdown by ``question_type_id`` (the evaluation dimension).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from evalkit.plugins.scienceqa import OptionRankingTask, option_lines

from evalkit.errors import InputError, UsageError
from evalkit.media.image import load_image
from evalkit.tasks.base import Task
from evalkit.types import Sample

CHOICE_COLUMNS = ("choice_a", "choice_b", "choice_c", "choice_d")
DATA_TYPES = ("image", "video")


def segment_indices(n_frames: int, n_segments: int) -> list[int]:
    """Qwen-VL's SEED-Bench frame rule: every frame when there are fewer than ``n_segments``;
    otherwise split ``n_frames - 1`` into ``n_segments`` equal steps and take
    ``int(step / 2) + round(step * k)`` for k = 0..n_segments-1."""
    if n_frames <= 0 or n_segments <= 0:
        return []
    if n_segments > n_frames:
        return list(range(n_frames))
    step = (n_frames - 1) / n_segments
    start = int(step / 2)
    return [start + round(step * k) for k in range(n_segments)]


def seed_first_letter(prediction: str, letters: Sequence[str]) -> str | None:
    """lmms-eval's SEED-Bench reading: the first character of the stripped answer (None when it
    is not one of the letters)."""
    pred = (prediction or "").strip()[:1]
    return pred if pred in letters else None


class SEEDBenchTask(OptionRankingTask):
    """SEED-Bench image or video questions (``task.data_type``), likelihood-ranked or generated."""

    id_column = "question_id"
    answer_column = "answer"
    metadata_columns = ("question_type_id", "data_type")
    extra_columns = ("data_type",)
    breakdown_keys = ("question_type_id",)
    extra_fields: ClassVar[frozenset[str]] = frozenset({"options"})

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        data_type = str(self.config.get("data_type", "image"))
        if data_type not in DATA_TYPES:
            raise UsageError(f"task {self.name}: data_type must be image or video, got {data_type!r}")
        self.data_type = data_type

    def load(self) -> None:
        """Load the question table with the image lists left undecoded (decoded per request)."""
        from datasets import Image, Sequence

        Task.load(self)  # not ImageQATask.load: the column is a list of images, not one image
        if self.image_column in self.dataset.column_names:
            self.dataset = self.dataset.cast_column(self.image_column, Sequence(Image(decode=False)))

    def samples(self) -> list[Sample]:
        """The rows of the configured ``data_type``, in dataset order."""
        return [s for s in super().samples() if s.metadata.get("data_type") == self.data_type]

    @property
    def n_frames(self) -> int:
        """Frames per video question (``task.frames``)."""
        return max(1, int(self.config.get("frames") or 4))

    def options(self, sample: Sample, row: Mapping[str, Any] | None = None) -> list[str]:
        """``choice_a``-``choice_d`` (a missing one is an input error)."""
        row = row if row is not None else self._choice_row(sample)
        values = [row.get(c) for c in CHOICE_COLUMNS]
        if not all(isinstance(v, str) for v in values):
            raise InputError("choice_a-choice_d must all be text")
        return [str(v) for v in values]

    def _choice_row(self, sample: Sample) -> dict[str, Any]:
        if not hasattr(self, "_choices"):
            self._choices = {c: self.dataset[c] for c in CHOICE_COLUMNS}
        return {c: self._choices[c][sample.index] for c in CHOICE_COLUMNS}

    def gold_index(self, sample: Sample, n_options: int) -> int:
        """``answer`` is a letter A-D."""
        gold = str(sample.target or "").strip().upper()
        letters = "ABCD"[:n_options]
        if len(gold) != 1 or gold not in letters:
            raise ValueError(f"gold answer {sample.target!r} is not one of the letters {', '.join(letters)}")
        return letters.index(gold)

    def images(self, sample: Sample, row: Mapping[str, Any]) -> list[Any]:
        """The picture (image questions) or ``task.frames`` frames of the clip (video questions)."""
        raw = row.get(self.image_column)
        if not isinstance(raw, list | tuple) or not raw:
            raise InputError("no image in the 'image' list")
        if self.data_type == "video":
            raw = [raw[i] for i in segment_indices(len(raw), self.n_frames)]
        else:
            raw = raw[:1]
        return [load_image(v) for v in raw]

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """``question`` and ``options`` (``A. ...`` lines)."""
        fields = super().prompt_fields(sample, row)
        fields["options"] = option_lines(self.options(sample, row))
        return fields

    def lmms_eval_letter(self, prediction: str, letters: Sequence[str]) -> str | None:
        """lmms-eval's SEED-Bench rule: the first character of the answer."""
        return seed_first_letter(prediction, letters)

    def protocol(self) -> dict[str, Any]:
        """Adds the data type and, for video, the frame count and rule."""
        out = super().protocol()
        out["data_type"] = self.data_type
        if self.data_type == "video":
            out["frames"] = self.n_frames
            out["frame_rule"] = "Qwen-VL SEED-Bench segment middles over the stored frames"
        return out
