"""GUI agents: ScreenSpot grounding (click accuracy) and AITZ offline UI-operation steps (TM/EM).

``screenspot`` / ``screenspot_v2`` - instruction + screenshot -> one click. Data:
``rootsautomation/ScreenSpot`` (split ``test``, 1,272 rows) and the ScreenSpot-v2 parquet mirror
``HongxinLi/ScreenSpot_v2`` (same columns): ``file_name``, ``bbox`` (the target element,
``[x1, y1, x2, y2]`` as fractions of the image; ``task.bbox_format=xywh_pixels`` for the
official SeeClick / OS-Copilot JSON rows), ``instruction``, ``data_type`` (``text``/``icon``),
``data_source`` (``ios``/``android`` = mobile, ``macos``/``windows`` = desktop, the rest = web),
``image``. The answer is parsed with :func:`evalkit.metrics.boxes.parse_point` in the model's box
convention (a box counts by its centre; ``point`` = SeeClick's ``(x, y)`` fractions); a sample is
right when the click lies inside the target box (edges included). Metrics: ``accuracy`` (pooled),
``accuracy_groups_mean`` (mean of the six platform x element-type groups, the "Average" column of
the SeeClick/ScreenSpot table), ``parse_failure_rate``; breakdowns by platform, element type,
platform x type and source.

``aitz`` - Android in the Zoo (Zhang et al. 2024; the UI-operation benchmark Qwen2-VL reports with
TM/EM): each test step = screenshot + goal + history (the gold descriptions of the previous steps)
-> one action in AITZ's action space (click/scroll/type/press/stop), matched by
:func:`evalkit.metrics.gui_actions.match_action` (rules and sources in that module and in
``docs/tasks-video-extra-agent.md``). AITZ is not on the Hugging Face hub (the authors ship a
Google-Drive/Baidu zip), so ``task.dataset.path`` is the unzipped release: ``<path>/<split>/
<subset>/<EPISODE>/<EPISODE>.json`` (a list of steps with ``episode_id``, ``step_id``,
``instruction``, ``image_path``, ``ui_positions``, ``result_touch_yx``, ``result_action_text``,
``coat_action_desc``, ...) next to the screenshots; a parquet/JSONL copy with the same columns
also loads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.plugins.grounding import parse_failure_counts

from evalkit.errors import InputError, UsageError
from evalkit.media.image import image_size, load_image
from evalkit.metrics.boxes import POINT_CONVENTIONS, parse_point, point_in_box
from evalkit.metrics.gui_actions import (
    ACTION_TYPES,
    PRESS_BUTTONS,
    SCROLL_DIRECTIONS,
    GoldStep,
    match_action,
    parse_action,
)
from evalkit.tasks.base import MetricSpec, Task, TaskResult
from evalkit.tasks.image_qa import ImageQATask
from evalkit.types import ImagePart, ModelInput, Record, Request, Sample, user_message

MOBILE_SOURCES = ("ios", "android")
DESKTOP_SOURCES = ("macos", "windows")
BBOX_FORMATS = ("xyxy_normalized", "xywh_pixels")


def screenspot_platform(data_source: str) -> str:
    """``mobile`` / ``desktop`` / ``web`` from a ScreenSpot ``data_source`` (as the benchmark groups)."""
    source = str(data_source).lower()
    if any(s in source for s in MOBILE_SOURCES):
        return "mobile"
    if any(s in source for s in DESKTOP_SOURCES):
        return "desktop"
    return "web"


def _convention(config: Mapping[str, Any], name: str) -> str:
    value = str(config.get("box_convention") or "qwen2_vl")
    if value not in POINT_CONVENTIONS:
        raise UsageError(
            f"task {name}: unknown box_convention {value!r}; choose one of {', '.join(POINT_CONVENTIONS)}"
        )
    return value


# ------------------------------------------------------------------------------------ ScreenSpot


class ScreenSpotTask(ImageQATask):
    """ScreenSpot / ScreenSpot-v2 GUI grounding: is the model's click inside the target element?"""

    version = "1"
    metrics = {
        "accuracy": MetricSpec(score="hit"),
        "accuracy_groups_mean": MetricSpec(score="hit", kind="macro", group="platform_type"),
        "parse_failure_rate": MetricSpec(score="parse_failure"),
    }
    main_metric = "accuracy"
    breakdown_keys = ("platform", "data_type", "platform_type", "data_source")
    id_column = "file_name"
    answer_column = "bbox"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.convention = _convention(self.config, self.name)
        self.bbox_format = str(self.config.get("bbox_format") or "xyxy_normalized")
        if self.bbox_format not in BBOX_FORMATS:
            raise UsageError(f"task {self.name}: bbox_format must be one of {', '.join(BBOX_FORMATS)}")
        if "{instruction}" not in self.prompt_template():
            raise UsageError(f"task {self.name}: the prompt template must contain {{instruction}}")
        self._sizes: dict[str, tuple[int, int]] = {}

    @property
    def has_targets(self) -> bool:
        """ScreenSpot's test split has public boxes."""
        return True

    def load(self) -> None:
        """Load the split (images undecoded) and check the columns."""
        super().load()
        missing = [c for c in ("bbox", "instruction", "image") if c not in self.dataset.column_names]
        if missing:
            raise UsageError(
                f"task {self.name}: dataset lacks column(s) {missing} (ScreenSpot schema: file_name, bbox, "
                "instruction, data_type, data_source, image)"
            )

    def samples(self) -> list[Sample]:
        """One sample per row; id ``<row>-<file_name>`` (a screenshot carries several instructions)."""
        cols = self._columns(["file_name", "bbox", "instruction", "data_type", "data_source"])
        out = []
        for i, name in enumerate(cols["file_name"]):
            source = cols["data_source"][i] or ""
            dtype = cols["data_type"][i] or ""
            platform = screenspot_platform(source)
            meta = {
                "instruction": cols["instruction"][i],
                "data_type": dtype,
                "data_source": source,
                "platform": platform,
                "platform_type": f"{platform}_{dtype}",
            }
            box = cols["bbox"][i]
            out.append(Sample(f"{i:05d}-{name or 'row'}", i, list(box) if box is not None else None, meta))
        return out

    def target_box(self, sample: Sample, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """The target element as a pixel box ``(x1, y1, x2, y2)``."""
        box = sample.target
        if not isinstance(box, list | tuple) or len(box) != 4:
            raise InputError(f"'bbox' must hold four numbers, got {box!r}")
        try:
            a, b, c, d = (float(v) for v in box)
        except (TypeError, ValueError):
            raise InputError(f"'bbox' holds non-numbers: {box!r}") from None
        if self.bbox_format == "xywh_pixels":
            x1, y1, x2, y2 = a, b, a + c, b + d
        else:
            x1, y1, x2, y2 = a * size[0], b * size[1], c * size[0], d * size[1]
        if not (x2 > x1 and y2 > y1):
            raise InputError(f"'bbox' {box!r} is not a box with positive width and height")
        return (x1, y1, x2, y2)

    def build_request(self, sample: Sample) -> Request:
        """Screenshot + the convention's prompt with the instruction."""
        instruction = sample.metadata.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise InputError("missing or empty 'instruction' field")
        image = load_image(self.row(sample).get("image"))
        self._sizes[sample.id] = image.size
        self.target_box(sample, image.size)
        prompt = self.prompt_template().replace("{instruction}", instruction.strip())
        return Request(
            sample.id, (user_message(ImagePart(image), prompt),), self.generation(), task=self.name
        )

    def _size(self, sample: Sample) -> tuple[int, int]:
        if sample.id not in self._sizes:
            self._sizes[sample.id] = image_size(self.row(sample).get("image"))
        return self._sizes[sample.id]

    def _judge(
        self, sample: Sample, prediction: str, seen: ModelInput
    ) -> tuple[Any, tuple[float, ...], tuple[int, int]]:
        size = self._size(sample)
        try:
            box = self.target_box(sample, size)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return parse_point(prediction, self.convention, size, seen.image_size(0)), box, size

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """:meth:`score_response` with nothing known of the model's input."""
        return self.score_response(sample, prediction, ModelInput())

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """:meth:`record_extra_response` with nothing known of the model's input."""
        return self.record_extra_response(sample, prediction, ModelInput())

    def score_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, float]:
        """``hit`` = 1 when the parsed click is inside the target box; unparseable = miss + parse
        failure (``pixel_json`` clicks are read in the pixels of the screenshot as the model was
        given it)."""
        point, box, _ = self._judge(sample, prediction, seen)
        return {
            "hit": 1.0 if point is not None and point_in_box(point, box) else 0.0,
            "parse_failure": 1.0 if point is None else 0.0,
        }

    def record_extra_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, Any]:
        """The parsed click, the target box (pixels) and the image size (plus, for
        ``pixel_json``, the input size the click was read in, when reported)."""
        point, box, size = self._judge(sample, prediction, seen)
        out: dict[str, Any] = {
            "click": None if point is None else [round(v, 2) for v in point],
            "target_box": [round(v, 2) for v in box],
            "image_size": list(size),
        }
        if self.convention == "pixel_json" and seen.image_size(0) is not None:
            out["input_image_size"] = list(seen.image_size(0))
        return out

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """Scored samples whose answer held no readable click."""
        return parse_failure_counts(records)

    def protocol(self) -> dict[str, Any]:
        """Adds the convention, the bbox format and the hit rule."""
        out = super().protocol()
        out["box_convention"] = self.convention
        out["bbox_format"] = self.bbox_format
        out["metric"] = (
            "hit = the click (a point, or the centre of a box, in the model's convention) lies inside the "
            "target box, edges included; accuracy = mean hit; accuracy_groups_mean = mean over the six "
            "platform x element-type groups"
        )
        return out


# ------------------------------------------------------------------------------------ AITZ

#: what the {coordinates} field of the AITZ prompt says, per convention
COORDINATE_HINTS = {
    "qwen2_vl": "x and y on a 0-1000 grid of the screenshot (0,0 = top left, 1000,1000 = bottom right)",
    "qwen_vl": "x and y on a 0-1000 grid of the screenshot (0,0 = top left)",
    "pixel_json": "x and y in pixels of the screenshot",
    "normalized": "x and y as fractions of the screenshot width and height, between 0 and 1",
    "point": "x and y as fractions of the screenshot width and height, between 0 and 1",
}


def _json_list(value: Any, what: str) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InputError(f"'{what}' is not valid JSON: {value[:60]!r}") from None
    if not isinstance(value, list):
        raise InputError(f"'{what}' must be a list, got {type(value).__name__}")
    return value


def aitz_gold(row: Mapping[str, Any], size: tuple[int, int]) -> GoldStep:
    """The gold action of one AITZ step, coordinates in pixels of its screenshot.

    The action type is the first word of ``coat_action_desc`` (``input`` = type), as AITZ's
    evaluator reads it; the scroll direction its second word; the button the first of
    enter/back/home it mentions; the typed text ``result_action_text``; the click point
    ``result_touch_yx`` (``[y, x]`` fractions); element boxes ``ui_positions`` (``[y, x, h, w]``
    pixels).
    """
    desc = str(row.get("coat_action_desc") or "").strip()
    words = desc.lower().split()
    first = words[0] if words else ""
    kind = "type" if first == "input" else next((t for t in ACTION_TYPES if t in first), None)
    if kind is None:
        raise InputError(f"gold action {desc!r} is not one of {ACTION_TYPES}")
    width, height = size
    elements = []
    for pos in _json_list(row.get("ui_positions") or "[]", "ui_positions"):
        if isinstance(pos, list) and len(pos) == 4:
            y, x, h, w = (float(v) for v in pos)
            elements.append((x, y, x + w, y + h))
    point = None
    if kind == "click":
        yx = _json_list(row.get("result_touch_yx"), "result_touch_yx")
        if len(yx) != 2 or not all(isinstance(v, int | float) for v in yx) or min(yx) < 0:
            raise InputError(
                f"click step without a touch point: result_touch_yx={row.get('result_touch_yx')!r}"
            )
        point = (float(yx[1]) * width, float(yx[0]) * height)
    direction = None
    if kind == "scroll":
        direction = words[1] if len(words) > 1 and words[1] in SCROLL_DIRECTIONS else None
        if direction is None:
            raise InputError(f"scroll step without a direction: {desc!r}")
    button = (
        next((b for b in ("enter", "back", "home") if b in desc.lower()), None) if kind == "press" else None
    )
    if kind == "press" and button not in PRESS_BUTTONS:
        raise InputError(f"press step without a known button: {desc!r}")
    text = str(row.get("result_action_text") or "") if kind == "type" else None
    return GoldStep(
        kind, point=point, direction=direction, text=text, button=button, elements=tuple(elements)
    )


class AITZTask(Task):
    """AITZ offline step evaluation: type match (TM) and exact match (EM) per step."""

    version = "1"
    metrics = {
        "exact_match": MetricSpec(score="exact_match"),
        "type_match": MetricSpec(score="type_match"),
        "parse_failure_rate": MetricSpec(score="parse_failure"),
    }
    main_metric = "exact_match"
    breakdown_keys = ("action_type", "subset")

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.convention = _convention(self.config, self.name)
        self.rows: list[dict[str, Any]] = []
        self._sizes: dict[str, tuple[int, int]] = {}

    # ----------------------------------------------------------------- data
    def load(self) -> None:
        """Read every episode JSON of the split (official release layout), or a table of steps."""
        ds = dict(self.config.get("dataset") or {})
        raw = str(ds.get("path") or "")
        if not raw:
            raise UsageError("task.dataset.path is not set (the unzipped AITZ release folder)")
        split = str(ds.get("split") or "test")
        root = Path(raw).expanduser()
        split_dir = root / split
        if split_dir.is_dir():
            self.rows = []
            for path in sorted(split_dir.rglob("*.json")):
                try:
                    steps = json.loads(path.read_text())
                except ValueError as exc:
                    raise UsageError(f"task {self.name}: {path} is not valid JSON: {exc}") from None
                for step in steps if isinstance(steps, list) else []:
                    if isinstance(step, dict):
                        self.rows.append(
                            {**step, "_json_dir": str(path.parent), "_split_dir": str(split_dir)}
                        )
            if not self.rows:
                raise UsageError(f"task {self.name}: no episode JSON files under {split_dir}")
            self.dataset_info = {"path": raw, "split": split, "resolved_path": str(split_dir.resolve()),
                                 "num_rows": len(self.rows)}  # fmt: skip
        else:
            super().load()
            self.rows = [
                {**r, "_split_dir": str(root if root.is_dir() else root.parent)}
                for r in self.dataset.to_list()
            ]
        self.rows.sort(key=lambda r: (str(r.get("episode_id")), int(r.get("step_id") or 0)))
        self._history: dict[tuple[str, int], list[str]] = {}
        by_episode: dict[str, list[dict[str, Any]]] = {}
        for r in self.rows:
            by_episode.setdefault(str(r.get("episode_id")), []).append(r)
        for episode, steps in by_episode.items():
            for r in steps:
                step = int(r.get("step_id") or 0)
                self._history[(episode, step)] = [
                    str(p.get("coat_action_desc") or "") for p in steps if int(p.get("step_id") or 0) < step
                ]

    def samples(self) -> list[Sample]:
        """One sample per step, id ``<episode_id>-<step_id>``; metadata subset and gold action type."""
        out = []
        for i, r in enumerate(self.rows):
            first = (str(r.get("coat_action_desc") or "").lower().split() or [""])[0]
            kind = "type" if first == "input" else next((t for t in ACTION_TYPES if t in first), "unknown")
            image_path = str(r.get("image_path") or "")
            subset = image_path.split("/")[0] if "/" in image_path else str(r.get("subset") or "")
            meta = {"action_type": kind, "subset": subset, "episode_id": str(r.get("episode_id"))}
            out.append(
                Sample(f"{r.get('episode_id')}-{r.get('step_id')}", i, r.get("coat_action_desc"), meta)
            )
        return out

    def _screenshot_source(self, sample: Sample) -> Any:
        """Where the step's screenshot is: the ``image`` cell, else ``<split>/<image_path>``, else
        the file of that name next to the episode JSON."""
        row = self.rows[sample.index]
        if row.get("image") is not None:
            return row["image"]
        rel = str(row.get("image_path") or "")
        if not rel:
            raise InputError("missing 'image_path' field")
        candidates = [Path(row["_split_dir"]) / rel]
        if row.get("_json_dir"):
            candidates.append(Path(row["_json_dir"]) / Path(rel).name)
        for c in candidates:
            if c.is_file():
                return str(c)
        raise InputError(f"screenshot {rel} not found")

    def screenshot(self, sample: Sample) -> Any:
        """The step's screenshot, decoded (see :meth:`_screenshot_source`)."""
        return load_image(self._screenshot_source(sample))

    # ----------------------------------------------------------------- requests
    def build_request(self, sample: Sample) -> Request:
        """Screenshot + goal + numbered history + the action-space instruction."""
        row = self.rows[sample.index]
        goal = row.get("instruction")
        if not isinstance(goal, str) or not goal.strip():
            raise InputError("missing or empty 'instruction' (goal) field")
        image = self.screenshot(sample)
        self._sizes[sample.id] = image.size
        aitz_gold(row, image.size)  # a gold step that cannot be read is an input error
        history = self._history.get((str(row.get("episode_id")), int(row.get("step_id") or 0)), [])
        lines = "\n".join(f"{k}. {h}" for k, h in enumerate(history, start=1)) or "None"
        prompt = self.prompt_template().format(
            goal=goal.strip(), history=lines, coordinates=COORDINATE_HINTS[self.convention]
        )
        return Request(
            sample.id, (user_message(ImagePart(image), prompt),), self.generation(), task=self.name
        )

    # ----------------------------------------------------------------- scoring
    def _judge(
        self, sample: Sample, prediction: str, seen: ModelInput
    ) -> tuple[Any, GoldStep, tuple[int, int]]:
        if sample.id not in self._sizes:
            try:
                self._sizes[sample.id] = image_size(self._screenshot_source(sample))
            except InputError as exc:
                raise ValueError(str(exc)) from None
        size = self._sizes[sample.id]
        try:
            gold = aitz_gold(self.rows[sample.index], size)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return parse_action(prediction, self.convention, size, seen.image_size(0)), gold, size

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """:meth:`score_response` with nothing known of the model's input."""
        return self.score_response(sample, prediction, ModelInput())

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """:meth:`record_extra_response` with nothing known of the model's input."""
        return self.record_extra_response(sample, prediction, ModelInput())

    def score_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, float]:
        """``type_match``, ``exact_match`` (AITZ rules) and ``parse_failure`` of one step
        (``pixel_json`` coordinates are read in the screenshot as the model was given it)."""
        pred, gold, size = self._judge(sample, prediction, seen)
        tm, em = match_action(pred, gold, size, **self.match_options())
        return {"type_match": float(tm), "exact_match": float(em), "parse_failure": float(pred is None)}

    def match_options(self) -> dict[str, float]:
        """The matching thresholds (config ``matching``; defaults = AITZ / AitW values)."""
        opts = {"element_scale": 1.2, "iou_threshold": 0.5, "click_distance": 0.14, "text_ratio": 0.8}
        opts.update({k: float(v) for k, v in dict(self.config.get("matching") or {}).items() if k in opts})
        return opts

    def record_extra_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, Any]:
        """The parsed and the gold action (plus, for ``pixel_json``, the input size the action's
        coordinates were read in, when reported)."""
        pred, gold, _ = self._judge(sample, prediction, seen)
        gold_json: dict[str, Any] = {"type": gold.type}
        if gold.point is not None:
            gold_json["point"] = [round(v, 2) for v in gold.point]
        for key in ("direction", "text", "button"):
            if getattr(gold, key) is not None:
                gold_json[key] = getattr(gold, key)
        out: dict[str, Any] = {"action": None if pred is None else pred.to_json(), "gold_action": gold_json}
        if self.convention == "pixel_json" and seen.image_size(0) is not None:
            out["input_image_size"] = list(seen.image_size(0))
        return out

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """Scored steps whose answer held no readable action."""
        return parse_failure_counts(records)

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """The generic aggregate, plus TM per gold action type next to EM."""
        result = super().aggregate(records)
        per_type: dict[str, list[float]] = {}
        for r in records:
            if r.error is None and "type_match" in r.scores:
                per_type.setdefault(str(r.metadata.get("action_type")), []).append(r.scores["type_match"])
        if per_type and "action_type" in result.breakdowns:
            for kind, values in per_type.items():
                result.breakdowns["action_type"][kind]["type_match"] = sum(values) / len(values)
        return result

    def protocol(self) -> dict[str, Any]:
        """Adds the convention, the matching thresholds and the rules."""
        out = super().protocol()
        out["box_convention"] = self.convention
        out["matching"] = self.match_options()
        out["history"] = "gold coat_action_desc of the previous steps of the episode"
        out["metric"] = (
            "TM = predicted action type == gold type; EM = TM and arguments match (evalkit.metrics.gui_actions: "
            "click box/point vs gold touch point and x1.2-enlarged UI element boxes or 14% distance; scroll "
            "direction; press button; type text substring or Levenshtein ratio > 0.8)"
        )
        return out
