"""Bounding boxes for grounding (RefCOCO, RefCOCO+, RefCOCOg): IoU, parsing and formatting.

All boxes returned or accepted here are pixel boxes ``(x1, y1, x2, y2)`` with ``x`` along the
image width; ``image_size`` is ``(width, height)`` (PIL's ``Image.size``).

Box conventions (part of a model preset, never guessed from the numbers):

``qwen2_vl``
    ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0-1000 grid; pixel = ``v / 1000 * size``.
    When the special tokens were stripped by detokenisation (``skip_special_tokens=True``) the
    bare ``(x1,y1),(x2,y2)`` is accepted too; with the tokens present, the first pair after
    ``<|box_start|>`` is used.
``qwen_vl``
    ``<box>(x1,y1),(x2,y2)</box>`` on the 0-1000 grid, divided by **999** as the official Qwen-VL
    grounding script does; the bare pair is accepted too (the completion prompt already ends with
    ``<box>``).
``pixel_json``
    Qwen2.5-VL style absolute pixels of the image *the model was given*: when that differs from
    the image (a backend's resize to its pixel budget, an API client's downscale), pass its size as
    ``input_size`` and the coordinates are scaled to ``image_size``. JSON with key ``bbox_2d`` - an
    object, or a list of objects
    (the first one with ``bbox_2d`` is taken), optionally inside a ```` ```json ```` fence; a bare
    JSON list of four numbers is accepted too.  Text that is not valid JSON (e.g. truncated by the
    token limit) falls back to the first complete ``"bbox_2d": [a, b, c, d]``.
``normalized``
    The first four numbers of the text (separated by commas, spaces or brackets), as fractions
    of the image size in ``[0, 1]``.

Parsing rules common to all conventions: reversed corners are reordered, coordinates are clipped
to the image (``[0, width] x [0, height]``), and anything without four finite numbers in the
expected shape (garbage, a truncated pair) gives ``None``.

Click points (GUI grounding, UI actions): :func:`parse_point` reads one ``(x, y)`` pixel point.
Under a box convention it accepts a point written the convention's way - ``(x,y)`` on the grid
(``qwen2_vl`` /1000, ``qwen_vl`` /999), ``{"point_2d": [x, y]}`` or ``[x, y]`` in pixels
(``pixel_json``), two fractions (``normalized``) - or a box of that convention, whose centre is
the click. The extra ``point`` convention is SeeClick's (the ScreenSpot authors' model): a bare
``(x, y)`` of fractions of the image size in ``[0, 1]``; a four-number box of fractions counts by
its centre. Points are clipped to the image like boxes.

Quantisation: the grid conventions move each coordinate by at most half a grid step
(``size / 2000`` px for ``qwen2_vl``, ``size / 1998`` for ``qwen_vl``; ``pixel_json`` rounds to
whole pixels, ``normalized`` is written with 4 decimals) - an IoU loss below 1% for boxes whose
sides are at least a quarter of the image, more for tiny boxes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

__all__ = [
    "BOX_CONVENTIONS",
    "box_iou",
    "xywh_to_xyxy",
    "parse_box",
    "format_box",
    "point_in_box",
    "POINT_CONVENTIONS",
    "box_center",
    "parse_point",
    "format_point",
]

BOX_CONVENTIONS = ("qwen2_vl", "qwen_vl", "pixel_json", "normalized")
"""The box conventions understood by :func:`parse_box` and :func:`format_box`."""

POINT_CONVENTIONS = (*BOX_CONVENTIONS, "point")
"""The conventions understood by :func:`parse_point` and :func:`format_point` (click points)."""

Box = tuple[float, float, float, float]

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_PAIR = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_FOUR = re.compile(
    rf"(?<![\w.])({_NUM})[\s,()\[\]]+({_NUM})[\s,()\[\]]+({_NUM})[\s,()\[\]]+({_NUM})(?![\w.])"
)
_BBOX_2D = re.compile(rf'"bbox_2d"\s*:\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]')
_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)
_GRID = {"qwen2_vl": 1000.0, "qwen_vl": 999.0}
_START_TOKEN = {"qwen2_vl": "<|box_start|>", "qwen_vl": "<box>"}


def _check_convention(convention: str) -> None:
    if convention not in BOX_CONVENTIONS:
        raise ValueError(f"unknown box convention {convention!r}; expected one of {BOX_CONVENTIONS}")


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes.

    Corners are taken as given or reversed (each box is the rectangle its two corners span).
    Disjoint or touching boxes give 0.0; when the union has zero area (two degenerate boxes)
    the IoU is 0.0, even for identical boxes.

    Examples:
        >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
        0.3333333333333333
    """
    ax1, ax2 = sorted((float(a[0]), float(a[2])))
    ay1, ay2 = sorted((float(a[1]), float(a[3])))
    bx1, bx2 = sorted((float(b[0]), float(b[2])))
    by1, by2 = sorted((float(b[1]), float(b[3])))
    iw = min(ax2, bx2) - max(ax1, bx1)
    ih = min(ay2, by2) - max(ay1, by1)
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def xywh_to_xyxy(box: Sequence[float]) -> Box:
    """COCO ``[x, y, w, h]`` -> ``(x1, y1, x2, y2)``."""
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def point_in_box(point: Sequence[float], box: Sequence[float]) -> bool:
    """True if ``(x, y)`` lies inside the box (edges included; corners in any order)."""
    x, y = float(point[0]), float(point[1])
    x1, x2 = sorted((float(box[0]), float(box[2])))
    y1, y2 = sorted((float(box[1]), float(box[3])))
    return x1 <= x <= x2 and y1 <= y <= y2


def _finish(values: Sequence[float], sx: float, sy: float, width: float, height: float) -> Box | None:
    x1, y1, x2, y2 = values
    if not all(math.isfinite(v) for v in values):
        return None
    x1, x2 = sorted((min(max(x1 * sx, 0.0), width), min(max(x2 * sx, 0.0), width)))
    y1, y2 = sorted((min(max(y1 * sy, 0.0), height), min(max(y2 * sy, 0.0), height)))
    return (x1, y1, x2, y2)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: object, length: int) -> list[float] | None:
    """``value`` as floats when it is a list of exactly ``length`` numbers, else None."""
    if isinstance(value, list) and len(value) == length and all(_is_number(v) for v in value):
        return [float(v) for v in value]
    return None


def _json_coordinates(
    text: str, key: str, length: int, pattern: re.Pattern[str], *, pattern_after_json_list: bool
) -> list[float] | None:
    """The ``length`` coordinates of a JSON answer (``[...]`` or ``{key: [...], ...}`` objects,
    fenced or not; the first object holding ``key`` decides), else the first ``pattern`` match.

    ``pattern_after_json_list``: whether ``pattern`` is still tried when the answer parses as a
    JSON list none of whose objects holds ``key`` (boxes: no; points: yes)."""
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    try:
        data = json.loads(body.strip())
    except (ValueError, RecursionError):
        data = None
    plain = _numbers(data, length)
    if plain is not None:
        return plain
    items = [data] if isinstance(data, dict) else data if isinstance(data, list) else []
    for item in items:
        if isinstance(item, dict) and key in item:
            return _numbers(item[key], length)
    if isinstance(data, dict | list) and not pattern_after_json_list:
        return None
    match = pattern.search(text)
    return [float(v) for v in match.groups()] if match else None


def _json_box(text: str) -> list[float] | None:
    return _json_coordinates(text, "bbox_2d", 4, _BBOX_2D, pattern_after_json_list=False)


def _image_extent(image_size: tuple[int, int], caller: str) -> tuple[float, float]:
    """``(width, height)`` as floats; a ValueError naming ``caller`` when not positive."""
    width, height = float(image_size[0]), float(image_size[1])
    if not (width > 0 and height > 0):
        raise ValueError(f"{caller}(): image_size must be positive (width, height), got {image_size}")
    return width, height


def _search_after_start_token(pattern: re.Pattern[str], text: str, convention: str) -> re.Match[str] | None:
    """The first ``pattern`` match after the convention's box start token (anywhere when absent)."""
    start = text.find(_START_TOKEN[convention])
    return pattern.search(text, start + 1 if start >= 0 else 0)


def _input_scale(
    image_size: tuple[float, float], input_size: tuple[int, int] | None, caller: str
) -> tuple[float, float]:
    """``(sx, sy)`` from the pixels of the model's input image to those of the image."""
    if input_size is None:
        return 1.0, 1.0
    w_in, h_in = _image_extent(input_size, caller)
    return image_size[0] / w_in, image_size[1] / h_in


def parse_box(
    text: str, convention: str, image_size: tuple[int, int], input_size: tuple[int, int] | None = None
) -> Box | None:
    """Parse a model's box answer into a pixel box ``(x1, y1, x2, y2)`` clipped to the image.

    Args:
        text: the model's answer.
        convention: one of :data:`BOX_CONVENTIONS` (see the module docstring).
        image_size: ``(width, height)`` in pixels.
        input_size: ``(width, height)`` of the image as the model was given it, when it differs
            (``pixel_json`` coordinates are in that frame; the grid and normalized conventions are
            relative, so it changes nothing for them).

    Returns:
        the box, or ``None`` when no complete box can be read (a parse failure: the task scores
        IoU 0 and counts it).

    Raises:
        ValueError: unknown convention or a non-positive image size.

    Examples:
        >>> parse_box("<|box_start|>(100,200),(500,800)<|box_end|>", "qwen2_vl", (640, 480))
        (64.0, 96.0, 320.0, 384.0)
        >>> parse_box("(500,800),(100,200", "qwen2_vl", (640, 480)) is None
        True
        >>> parse_box('{"bbox_2d": [32, 48, 160, 192]}', "pixel_json", (640, 480), input_size=(320, 240))
        (64.0, 96.0, 320.0, 384.0)
    """
    _check_convention(convention)
    width, height = _image_extent(image_size, "parse_box")
    if convention in _GRID:
        match = _search_after_start_token(_PAIR, text, convention)
        if match is None:
            return None
        grid = _GRID[convention]
        return _finish([float(v) for v in match.groups()], width / grid, height / grid, width, height)
    if convention == "pixel_json":
        values = _json_box(text)
        sx, sy = _input_scale((width, height), input_size, "parse_box")
        return None if values is None else _finish(values, sx, sy, width, height)
    match = _FOUR.search(text)
    if match is None:
        return None
    return _finish([float(v) for v in match.groups()], width, height, width, height)


def format_box(
    box: Sequence[float],
    convention: str,
    image_size: tuple[int, int],
    input_size: tuple[int, int] | None = None,
) -> str:
    """Write a pixel box ``(x1, y1, x2, y2)`` the way a model of ``convention`` answers (a
    ``pixel_json`` model given the image at ``input_size`` writes pixels of that size).

    The inverse of :func:`parse_box` up to quantisation (grid conventions round to integers on the
    grid, ``pixel_json`` to whole pixels, ``normalized`` to 4 decimals).  Used by fake models in
    tests to answer with the ground-truth box.

    Examples:
        >>> format_box((64, 96, 320, 384), "qwen2_vl", (640, 480))
        '<|box_start|>(100,200),(500,800)<|box_end|>'
    """
    _check_convention(convention)
    width, height = float(image_size[0]), float(image_size[1])
    x1, y1, x2, y2 = (float(v) for v in box)
    if convention in _GRID:
        grid = _GRID[convention]
        gx1, gx2 = round(x1 / width * grid), round(x2 / width * grid)
        gy1, gy2 = round(y1 / height * grid), round(y2 / height * grid)
        pair = f"({gx1},{gy1}),({gx2},{gy2})"
        if convention == "qwen2_vl":
            return f"<|box_start|>{pair}<|box_end|>"
        return f"<box>{pair}</box>"
    if convention == "pixel_json":
        sx, sy = _input_scale((width, height), input_size, "format_box")
        coords = ", ".join(str(round(v)) for v in (x1 / sx, y1 / sy, x2 / sx, y2 / sy))
        return f'```json\n[\n\t{{"bbox_2d": [{coords}], "label": "object"}}\n]\n```'
    coords = ", ".join(f"{v:.4f}" for v in (x1 / width, y1 / height, x2 / width, y2 / height))
    return f"[{coords}]"


# ------------------------------------------------------------------------------------ points

_POINT_PAIR = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_TWO = re.compile(rf"(?<![\w.])({_NUM})[\s,()\[\]]+({_NUM})(?![\w.])")
_POINT_2D = re.compile(rf'"point_2d"\s*:\s*\[\s*({_NUM})\s*,\s*({_NUM})\s*\]')

Point = tuple[float, float]


def box_center(box: Sequence[float]) -> Point:
    """The centre ``(x, y)`` of an ``(x1, y1, x2, y2)`` box."""
    return ((float(box[0]) + float(box[2])) / 2.0, (float(box[1]) + float(box[3])) / 2.0)


def _clip_point(x: float, y: float, width: float, height: float) -> Point | None:
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return (min(max(x, 0.0), width), min(max(y, 0.0), height))


def _json_point(text: str) -> list[float] | None:
    return _json_coordinates(text, "point_2d", 2, _POINT_2D, pattern_after_json_list=True)


def parse_point(
    text: str, convention: str, image_size: tuple[int, int], input_size: tuple[int, int] | None = None
) -> Point | None:
    """Parse a model's click answer into a pixel point ``(x, y)`` clipped to the image.

    A box in ``convention`` counts by its centre (tried first, so that a box is never misread as
    its first corner); otherwise a single point written the convention's way (module docstring).

    Args:
        text: the model's answer.
        convention: one of :data:`POINT_CONVENTIONS`.
        image_size: ``(width, height)`` in pixels.
        input_size: the size of the image as the model was given it (``pixel_json``: see
            :func:`parse_box`).

    Returns:
        the point, or ``None`` when neither a box nor a point can be read.

    Raises:
        ValueError: unknown convention or a non-positive image size.

    Examples:
        >>> parse_point("(500,250)", "qwen2_vl", (640, 480))
        (320.0, 120.0)
        >>> parse_point("<|box_start|>(100,200),(300,400)<|box_end|>", "qwen2_vl", (640, 480))
        (128.0, 144.0)
        >>> parse_point("(0.25,0.5)", "point", (640, 480))
        (160.0, 240.0)
    """
    if convention not in POINT_CONVENTIONS:
        raise ValueError(f"unknown point convention {convention!r}; expected one of {POINT_CONVENTIONS}")
    width, height = _image_extent(image_size, "parse_point")
    box_convention = "normalized" if convention == "point" else convention
    box = parse_box(text, box_convention, image_size, input_size)
    if box is not None:
        return box_center(box)
    if convention in _GRID:
        match = _search_after_start_token(_POINT_PAIR, text, convention)
        if match is None:
            return None
        grid = _GRID[convention]
        x, y = (float(v) for v in match.groups())
        return _clip_point(x / grid * width, y / grid * height, width, height)
    if convention == "pixel_json":
        values = _json_point(text)
        sx, sy = _input_scale((width, height), input_size, "parse_point")
        return None if values is None else _clip_point(values[0] * sx, values[1] * sy, width, height)
    match = _TWO.search(text)
    if match is None:
        return None
    x, y = (float(v) for v in match.groups())
    return _clip_point(x * width, y * height, width, height)


def format_point(
    point: Sequence[float],
    convention: str,
    image_size: tuple[int, int],
    input_size: tuple[int, int] | None = None,
) -> str:
    """Write a pixel point the way a model of ``convention`` answers a click (inverse of
    :func:`parse_point` up to quantisation; used by fake models in tests; ``input_size``: as in
    :func:`format_box`).

    Examples:
        >>> format_point((320, 120), "qwen2_vl", (640, 480))
        '(500,250)'
        >>> format_point((160, 240), "point", (640, 480))
        '(0.25,0.50)'
    """
    if convention not in POINT_CONVENTIONS:
        raise ValueError(f"unknown point convention {convention!r}; expected one of {POINT_CONVENTIONS}")
    width, height = float(image_size[0]), float(image_size[1])
    x, y = float(point[0]), float(point[1])
    if convention in _GRID:
        grid = _GRID[convention]
        return f"({round(x / width * grid)},{round(y / height * grid)})"
    if convention == "pixel_json":
        sx, sy = _input_scale((width, height), input_size, "format_point")
        return f'{{"point_2d": [{round(x / sx)}, {round(y / sy)}]}}'
    return f"({x / width:.2f},{y / height:.2f})"
