"""UI actions of offline GUI-agent benchmarks (AITZ): parsing a model's action and matching it
against the gold step (type match TM, exact match EM).

Action space (AITZ, ``Android in the Zoo``; its official ``coat/evaluate.py`` uses the same five
types): ``click`` (a point or a box), ``scroll`` (``up``/``down``/``left``/``right``), ``type``
(text), ``press`` (``back``/``home``/``enter``) and ``stop`` (task complete).

Matching rules (:func:`match_action`), per step:

* **TM** - the predicted action type equals the gold type (an unparseable answer is wrong).
* **EM** - TM and the arguments agree:

  - ``click`` given as a **box**: the gold touch point lies in the predicted box enlarged x1.2
    about its centre, or the gold point lies in a UI element box (enlarged x1.2) whose IoU with
    the enlarged predicted box exceeds 0.5 (AITZ ``_check_click_``);
  - ``click`` given as a **point**: the point lies in a UI element box (enlarged x1.2) that also
    holds the gold touch point, or it is within 14% of the screen (normalised Euclidean distance,
    x by width and y by height) of the gold point (Android-in-the-Wild action matching, whose
    screens AITZ re-annotates; a point has no area, so AITZ's box rule is applied to the element);
  - ``scroll``: same direction; ``press``: same button; ``stop``: always;
  - ``type``: after normalisation (lower case, stripped, whitespace collapsed) the predicted text
    is a substring of the gold text or vice versa, or their Levenshtein ratio exceeds 0.8
    (AITZ); an empty predicted text never matches (AITZ's ``"" in gold`` would accept it).

Coordinates: every box/point here is in pixels of the screenshot; :func:`parse_action` converts
from the model's convention with :func:`evalkit.metrics.boxes.parse_point` /
:func:`~evalkit.metrics.boxes.parse_box`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evalkit.metrics.boxes import BOX_CONVENTIONS, box_iou, parse_box, parse_point

__all__ = [
    "ACTION_TYPES",
    "SCROLL_DIRECTIONS",
    "PRESS_BUTTONS",
    "UIAction",
    "GoldStep",
    "parse_action",
    "match_action",
    "levenshtein_ratio",
    "enlarge_box",
    "normalize_action_text",
]

ACTION_TYPES = ("click", "scroll", "type", "press", "stop")
SCROLL_DIRECTIONS = ("up", "down", "left", "right")
PRESS_BUTTONS = ("back", "home", "enter")

#: synonyms a model may use, mapped onto the action space (first word of the action)
_TYPE_ALIASES = {
    "click": "click", "tap": "click", "touch": "click", "long_press": "click",
    "scroll": "scroll", "swipe": "scroll",
    "type": "type", "input": "type", "input_text": "type", "write": "type",
    "press": "press", "key": "press", "navigate_back": "press", "navigate_home": "press",
    "back": "press", "home": "press", "enter": "press",
    "stop": "stop", "finish": "stop", "complete": "stop", "terminate": "stop", "done": "stop",
    "status_task_complete": "stop",
}  # fmt: skip

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class UIAction:
    """One parsed action; coordinates in pixels of the screenshot."""

    type: str
    point: Point | None = None
    box: Box | None = None
    direction: str | None = None
    text: str | None = None
    button: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict without empty fields (stored in the samples file)."""
        out: dict[str, Any] = {"type": self.type}
        if self.point is not None:
            out["point"] = [round(v, 2) for v in self.point]
        if self.box is not None:
            out["box"] = [round(v, 2) for v in self.box]
        for key in ("direction", "text", "button"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class GoldStep:
    """The gold action of one step and the UI element boxes (pixels) of its screen."""

    type: str
    point: Point | None = None
    direction: str | None = None
    text: str | None = None
    button: str | None = None
    elements: tuple[Box, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------------------ helpers


def normalize_action_text(text: str) -> str:
    """Lower case, stripped, inner whitespace collapsed."""
    return " ".join(str(text).lower().split())


def levenshtein_ratio(a: str, b: str) -> float:
    """``1 - indel_distance / (len(a) + len(b))`` (python-Levenshtein's ``ratio``: a substitution
    costs 2); 1.0 for two empty strings.

    Examples:
        >>> levenshtein_ratio("kitten", "sitting")
        0.6153846153846154
    """
    total = len(a) + len(b)
    if total == 0:
        return 1.0
    # indel distance = len(a) + len(b) - 2 * LCS(a, b)
    prev = [0] * (len(b) + 1)
    for ca in a:
        cur = [0]
        for j, cb in enumerate(b, start=1):
            cur.append(prev[j - 1] + 1 if ca == cb else max(prev[j], cur[j - 1]))
        prev = cur
    return 1.0 - (total - 2 * prev[-1]) / total


def enlarge_box(box: Sequence[float], scale: float) -> Box:
    """The box scaled by ``scale`` about its centre."""
    x1, x2 = sorted((float(box[0]), float(box[2])))
    y1, y2 = sorted((float(box[1]), float(box[3])))
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def _inside(point: Point, box: Box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


# ------------------------------------------------------------------------------------ parsing

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_QUOTED = re.compile(r"[\"“']([^\"”']*)[\"”']")


def _json_action(text: str) -> dict[str, Any] | None:
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None
    body = match.group(0)
    for candidate in (body, body[: body.find("}") + 1]):
        try:
            data = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(data, dict):
            return data
    return None


def _canonical_type(word: str) -> str | None:
    return _TYPE_ALIASES.get(word.strip().lower().replace(" ", "_").replace("-", "_"))


def _button_of(raw_type: str, text: str) -> str | None:
    for candidate in (raw_type.lower(), text.lower()):
        for button in PRESS_BUTTONS:
            if button in candidate:
                return button
    return None


def _direction_of(text: str) -> str | None:
    found = [(m.start(), m.group(0)) for m in re.finditer(r"\b(up|down|left|right)\b", text.lower())]
    return min(found)[1] if found else None


def _coordinates(
    value: Any, convention: str, image_size: tuple[int, int], input_size: tuple[int, int] | None = None
) -> tuple[Point | None, Box | None]:
    """A JSON coordinate value ``[x, y]`` or ``[x1, y1, x2, y2]`` in the model's convention."""
    if not isinstance(value, list | tuple) or len(value) not in (2, 4):
        return None, None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return None, None
    if len(value) == 2:
        text = (
            json.dumps({"point_2d": list(value)})
            if convention == "pixel_json"
            else f"({value[0]},{value[1]})"
        )
        return parse_point(text, convention, image_size, input_size), None
    box_conv = "normalized" if convention == "point" else convention
    if box_conv in ("qwen2_vl", "qwen_vl"):
        text = f"({value[0]},{value[1]}),({value[2]},{value[3]})"
    else:
        text = json.dumps(list(value))
    return None, parse_box(text, box_conv, image_size, input_size)


def parse_action(
    text: str, convention: str, image_size: tuple[int, int], input_size: tuple[int, int] | None = None
) -> UIAction | None:
    """Read one action from a model's answer (``None`` = unparseable).

    Preferred form: one JSON object ``{"action": "click", "point": [x, y]}`` (or ``"box":
    [x1, y1, x2, y2]``), ``{"action": "scroll", "direction": "up"}``, ``{"action": "type",
    "text": "..."}``, ``{"action": "press", "button": "back"}``, ``{"action": "stop"}``, with
    coordinates in the model's ``convention`` (0-1000 grid for ``qwen2_vl``). Also accepted: a
    plain line starting with the action word (``CLICK (500,300)``, ``SCROLL DOWN``,
    ``TYPE "milk"``, ``PRESS HOME``, ``STOP``), coordinates read by
    :func:`~evalkit.metrics.boxes.parse_point`. A click without readable coordinates, a scroll
    without a direction or a press without a known button is unparseable. ``input_size``: the
    size of the screenshot as the model was given it (``pixel_json`` pixels are in that frame; see
    :func:`~evalkit.metrics.boxes.parse_box`).
    """
    data = _json_action(text)
    if data is not None:
        raw = str(data.get("action") or data.get("action_type") or data.get("type") or "")
        kind = _canonical_type(raw)
        rest = " ".join(str(v) for k, v in data.items() if k not in ("action", "action_type", "type"))
    else:
        words = re.findall(r"[A-Za-z_]+", text)
        raw, kind = "", None
        for word in words[:8]:  # the action word comes first (after an optional "Action:")
            kind = _canonical_type(word)
            if kind is not None:
                raw = word
                break
        rest = text[text.lower().find(raw.lower()) + len(raw) :] if raw else ""
    if kind is None:
        return None
    if kind == "click":
        point, box = None, None
        if data is not None:
            for key in ("point", "coordinate", "point_2d", "box", "bbox", "bbox_2d"):
                if key in data:
                    point, box = _coordinates(data[key], convention, image_size, input_size)
                    break
        else:
            box_conv = "normalized" if convention == "point" else convention
            if box_conv in BOX_CONVENTIONS:
                box = parse_box(rest, box_conv, image_size, input_size)
            if box is None:
                point = parse_point(rest, convention, image_size, input_size)
        if point is None and box is None:
            return None
        return UIAction("click", point=point, box=box)
    if kind == "scroll":
        direction = _direction_of(str(data.get("direction", "")) if data is not None else rest)
        return UIAction("scroll", direction=direction) if direction else None
    if kind == "type":
        if data is not None:
            value = data.get("text", data.get("value", ""))
            typed = str(value) if value is not None else ""
        else:
            quoted = _QUOTED.search(rest)
            typed = quoted.group(1) if quoted else rest.strip().strip(":").strip()
        return UIAction("type", text=typed)
    if kind == "press":
        button = _button_of(raw, str(data.get("button", data.get("key", ""))) if data is not None else rest)
        return UIAction("press", button=button) if button else None
    return UIAction("stop")


# ------------------------------------------------------------------------------------ matching


def _click_matches(pred: UIAction, gold: GoldStep, screen: tuple[int, int], scale: float,
                   iou_threshold: float, distance: float) -> bool:  # fmt: skip
    if gold.point is None:
        return False
    elements = [enlarge_box(e, scale) for e in gold.elements]
    holding_gold = [e for e in elements if _inside(gold.point, e)]
    if pred.box is not None:
        big = enlarge_box(pred.box, scale)
        if _inside(gold.point, big):
            return True
        return any(box_iou(big, e) > iou_threshold for e in holding_gold)
    if pred.point is None:
        return False
    if any(_inside(pred.point, e) for e in holding_gold):
        return True
    dx = (pred.point[0] - gold.point[0]) / float(screen[0])
    dy = (pred.point[1] - gold.point[1]) / float(screen[1])
    return math.hypot(dx, dy) <= distance


def match_action(
    pred: UIAction | None,
    gold: GoldStep,
    screen_size: tuple[int, int],
    *,
    element_scale: float = 1.2,
    iou_threshold: float = 0.5,
    click_distance: float = 0.14,
    text_ratio: float = 0.8,
) -> tuple[bool, bool]:
    """``(type_match, exact_match)`` of one predicted action against the gold step (module docstring).

    Examples:
        >>> gold = GoldStep("click", point=(50, 50), elements=((40, 40, 60, 60),))
        >>> match_action(UIAction("click", point=(59, 59)), gold, (1000, 1000))
        (True, True)
        >>> match_action(UIAction("scroll", direction="up"), gold, (1000, 1000))
        (False, False)
    """
    if pred is None or pred.type != gold.type:
        return False, False
    if gold.type == "click":
        ok = _click_matches(pred, gold, screen_size, element_scale, iou_threshold, click_distance)
    elif gold.type == "scroll":
        ok = pred.direction is not None and pred.direction == gold.direction
    elif gold.type == "press":
        ok = pred.button is not None and pred.button == gold.button
    elif gold.type == "type":
        p, g = normalize_action_text(pred.text or ""), normalize_action_text(gold.text or "")
        ok = bool(p) and (p in g or g in p or levenshtein_ratio(p, g) > text_ratio)
    else:
        ok = True
    return True, ok


def gold_from_mapping(step: Mapping[str, Any]) -> GoldStep:
    """A :class:`GoldStep` from a JSON-like mapping (tests and fixtures)."""
    return GoldStep(
        type=str(step["type"]),
        point=tuple(step["point"]) if step.get("point") is not None else None,  # type: ignore[arg-type]
        direction=step.get("direction"),
        text=step.get("text"),
        button=step.get("button"),
        elements=tuple(tuple(e) for e in step.get("elements", ())),  # type: ignore[misc]
    )
