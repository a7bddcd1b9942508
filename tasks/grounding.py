"""Referring expression comprehension (RefCOCO, RefCOCO+, RefCOCOg): Acc@0.5, mean IoU, parse failures.

Data: ``lmms-lab/RefCOCO`` (splits val/testA/testB/test), ``lmms-lab/RefCOCOPlus`` (val/testA/testB)
and ``lmms-lab/RefCOCOg`` (val/test, umd). Columns used: ``question_id`` (str), ``image``,
``answer`` (list of referring expressions for the object), ``bbox`` (COCO ``[x, y, w, h]``
in pixels of the stored image) and ``file_name`` (names the COCO image: ``metadata["image"]``, the
cluster key). A row is one referred object; evalkit makes **one sample per expression**, id
``<question_id>-<k>`` (``row<i>-<k>`` when the row has no id).

The box convention (how the model writes a box) is a model-preset setting, never guessed from the
numbers: ``task.box_convention`` defaults to ``model.box_convention`` and selects both the parser
(:func:`evalkit.metrics.boxes.parse_box`) and the prompt preset. Each prediction is parsed into a
pixel box clipped to the image; an unparseable answer scores IoU 0 and counts as a parse failure.

Per-sample scores: ``iou``, ``acc@0.5`` (1 if IoU >= 0.5), ``parse_failure`` (1 if no box could be
read); metrics are their means: ``acc@0.5`` (the paper metric), ``miou``, ``parse_failure_rate``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from evalkit.errors import InputError, UsageError
from evalkit.media.image import image_size, load_image
from evalkit.metrics.boxes import BOX_CONVENTIONS, box_iou, parse_box, xywh_to_xyxy
from evalkit.tasks.base import MetricSpec
from evalkit.tasks.image_qa import ImageQATask
from evalkit.types import ImagePart, ModelInput, Record, Request, Sample, user_message

#: what each convention means, recorded in the protocol of every run
CONVENTION_NOTES = {
    "qwen2_vl": "<|box_start|>(x1,y1),(x2,y2)<|box_end|> on a 0-1000 grid, pixel = v / 1000 * size "
    "(bare pair accepted when special tokens were stripped)",
    "qwen_vl": "<box>(x1,y1),(x2,y2)</box> on a 0-1000 grid, pixel = v / 999 * size "
    "(as Qwen-VL's official evaluate_grounding.py divides by 999)",
    "pixel_json": 'absolute pixels of the image as the model was given it, JSON {"bbox_2d": [x1, y1, x2, y2]} '
    "(Qwen2.5-VL style); scaled to the original image from the input size the backend reports "
    "(record extra input_image_size: after the processor's or the API client's resize), the "
    "original size when none is reported",
    "normalized": "four numbers x1, y1, x2, y2 as fractions of the image width/height in [0, 1]",
}
IOU_THRESHOLD = 0.5
#: the COCO image named in lmms-lab's ``file_name`` (``COCO_train2014_000000581857_<n>.jpg``: the
#: image's file name plus a per-object suffix, so the raw column differs between objects of one image)
_COCO_IMAGE = re.compile(r"COCO_[A-Za-z]+\d{4}_\d{12}")


def image_cluster(file_name: Any) -> str | None:
    """The cluster label of a row: the COCO image in ``file_name`` (``COCO_train2014_000000581857``),
    else the file name as given; None without one."""
    if not isinstance(file_name, str) or not file_name:
        return None
    match = _COCO_IMAGE.search(file_name)
    return match.group(0) if match else file_name


def parse_failure_counts(records: Sequence[Record]) -> dict[str, int]:
    """``{"parse_failures": n}``: scored records whose answer could not be read (their
    ``parse_failure`` score is set; shared by the box, click and GUI-action tasks)."""
    return {"parse_failures": sum(1 for r in records if r.error is None and r.scores.get("parse_failure"))}


class GroundingTask(ImageQATask):
    """RefCOCO-family referring expression comprehension: one sample per expression."""

    version = "1"
    metrics = {
        "acc@0.5": MetricSpec(score="acc@0.5"),
        "miou": MetricSpec(score="iou"),
        "parse_failure_rate": MetricSpec(score="parse_failure"),
    }
    main_metric = "acc@0.5"
    paper_scale = 100.0
    # several objects per image and several expressions per object: intervals resample whole
    # images (metadata["image"], the COCO image from the file_name column)
    cluster_key = "image"
    id_column = "question_id"
    answer_column = "answer"
    bbox_column = "bbox"
    image_column = "image"

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        self.id_column = str(self.config.get("id_column") or self.id_column)
        self.answer_column = str(self.config.get("expressions_column") or self.answer_column)
        self.bbox_column = str(self.config.get("bbox_column") or self.bbox_column)
        self.image_column = str(self.config.get("image_column") or self.image_column)
        self.box_convention = str(self.config.get("box_convention") or "qwen2_vl")
        if self.box_convention not in BOX_CONVENTIONS:
            raise UsageError(
                f"task {self.name}: unknown box_convention {self.box_convention!r}; "
                f"choose one of {', '.join(BOX_CONVENTIONS)} (set model.box_convention or task.box_convention)"
            )
        if "{expression}" not in self.prompt_template():
            raise UsageError(
                f"task {self.name}: the prompt template must contain {{expression}}; got {self.prompt_template()!r}"
            )
        self._sizes: dict[str, tuple[int, int]] = {}

    # ----------------------------------------------------------------- data
    @property
    def has_targets(self) -> bool:
        """RefCOCO test splits (testA/testB/test) have public boxes: always scored unless
        ``targets_hidden`` is set."""
        return not bool(self.config.get("targets_hidden", False))

    def load(self) -> None:
        """Load the split (images undecoded) and check that the needed columns exist."""
        super().load()
        missing = [
            c
            for c in (self.answer_column, self.bbox_column, self.image_column)
            if c not in self.dataset.column_names
        ]
        if missing:
            raise UsageError(
                f"task {self.name}: dataset {self.dataset_info.get('path')} has no column(s) {', '.join(missing)} "
                f"(columns: {', '.join(self.dataset.column_names)}); set task.expressions_column / "
                "task.bbox_column / task.image_column"
            )

    def samples(self) -> list[Sample]:
        """One sample per referring expression, id ``<question_id>-<k>``; a row without any
        expression still yields one sample (``-0``) so that it is reported as an input error."""
        cols = self._columns([self.id_column, self.answer_column, self.bbox_column, "file_name"])
        out = []
        for i, qid in enumerate(cols[self.id_column]):
            base = str(qid) if qid is not None else f"row{i}"
            raw = cols[self.answer_column][i]
            expressions: list[Any] = [raw] if isinstance(raw, str) else list(raw or [])
            box = cols[self.bbox_column][i]
            target = list(box) if isinstance(box, list | tuple) else box
            image = image_cluster(cols["file_name"][i])
            for k, expression in enumerate(expressions or [None]):
                meta = {"expression": expression} if expression is not None else {}
                if image is not None:
                    meta["image"] = image
                out.append(Sample(id=f"{base}-{k}", index=i, target=target, metadata=meta))
        return out

    # ----------------------------------------------------------------- requests
    def _gt_box(self, target: Any) -> tuple[float, float, float, float]:
        """The ground-truth pixel box ``(x1, y1, x2, y2)`` from the COCO ``[x, y, w, h]`` target."""
        if not isinstance(target, Sequence) or isinstance(target, str) or len(target) != 4:
            raise InputError(f"'{self.bbox_column}' must be [x, y, w, h] (four numbers), got {target!r}")
        try:
            x, y, w, h = (float(v) for v in target)
        except (TypeError, ValueError):
            raise InputError(f"'{self.bbox_column}' holds non-numbers: {target!r}") from None
        if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
            raise InputError(f"'{self.bbox_column}' {target!r} is not a box with positive width and height")
        return xywh_to_xyxy((x, y, w, h))

    def build_request(self, sample: Sample) -> Request:
        """Image + the convention's prompt with the expression filled in (``{expression}``)."""
        expression = sample.metadata.get("expression")
        if not isinstance(expression, str) or not expression.strip():
            raise InputError(
                f"no referring expression in '{self.answer_column}' (empty list or empty string)"
            )
        if self.has_targets:
            self._gt_box(sample.target)
        row = self.row(sample)
        image = load_image(row.get(self.image_column))
        self._sizes[sample.id] = image.size
        prompt = self.prompt_template().replace("{expression}", expression.strip())
        return Request(
            sample.id, (user_message(ImagePart(image), prompt),), self.generation(), task=self.name
        )

    def _image_size(self, sample: Sample) -> tuple[int, int]:
        """``(width, height)`` of the dataset's image (read from the image's header when the
        request was built in another process: ``evalkit score``, another rank, a resumed run)."""
        if sample.id not in self._sizes:
            self._sizes[sample.id] = image_size(self.row(sample).get(self.image_column))
        return self._sizes[sample.id]

    # ----------------------------------------------------------------- scoring
    def _parse(self, sample: Sample, prediction: str, seen: ModelInput) -> tuple[Any, Any, tuple[int, int]]:
        size = self._image_size(sample)
        pred = parse_box(prediction, self.box_convention, size, seen.image_size(0))
        return pred, self._gt_box(sample.target), size

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """:meth:`score_response` with nothing known of the model's input (pixels of the image)."""
        return self.score_response(sample, prediction, ModelInput())

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """:meth:`record_extra_response` with nothing known of the model's input."""
        return self.record_extra_response(sample, prediction, ModelInput())

    def score_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, float]:
        """IoU of the parsed box with the ground truth (0 when unparseable), hit at IoU >= 0.5;
        ``pixel_json`` boxes are read in the frame of the image as the model was given it."""
        try:
            pred, gt, _ = self._parse(sample, prediction, seen)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        iou = box_iou(pred, gt) if pred is not None else 0.0
        return {
            "iou": iou,
            "acc@0.5": 1.0 if iou >= IOU_THRESHOLD else 0.0,
            "parse_failure": 1.0 if pred is None else 0.0,
        }

    def record_extra_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, Any]:
        """The parsed and ground-truth pixel boxes (x1, y1, x2, y2) and the image size (plus, for
        ``pixel_json``, the input size the answer's pixels were read in, when reported)."""
        pred, gt, size = self._parse(sample, prediction, seen)
        out: dict[str, Any] = {
            "pred_box": None if pred is None else [round(v, 2) for v in pred],
            "gt_box": [round(v, 2) for v in gt],
            "image_size": list(size),
        }
        if self.box_convention == "pixel_json" and seen.image_size(0) is not None:
            out["input_image_size"] = list(seen.image_size(0))
        return out

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """Number of scored samples whose answer held no parseable box."""
        return parse_failure_counts(records)

    def protocol(self) -> dict[str, Any]:
        """Adds the box convention and the IoU rule to the recorded protocol."""
        out = super().protocol()
        out["box_convention"] = self.box_convention
        out["box_convention_detail"] = CONVENTION_NOTES[self.box_convention]
        out["metric"] = (
            "acc@0.5 = share of expressions with IoU >= 0.5 between the parsed box (clipped to the image) "
            "and the COCO [x, y, w, h] ground truth; unparseable answers score IoU 0 and count as parse failures"
        )
        out["columns"] = {
            "id": self.id_column,
            "expressions": self.answer_column,
            "bbox": self.bbox_column,
            "image": self.image_column,
        }
        return out
