"""Boxes: IoU, conversion, parsing per convention, formatting and round trips."""

from __future__ import annotations

import random

import pytest

from evalkit.metrics import (
    BOX_CONVENTIONS,
    POINT_CONVENTIONS,
    box_center,
    box_iou,
    format_box,
    format_point,
    parse_box,
    parse_point,
    point_in_box,
    xywh_to_xyxy,
)

SIZE = (640, 480)  # (width, height)

# --------------------------------------------------------------------------------------------
# IoU
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (5, 5, 15, 15), 25 / 175),
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),  # contained
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edge
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),  # disjoint
        ((0, 0, 0, 10), (0, 0, 10, 10), 0.0),  # zero-area box
        ((5, 5, 5, 5), (5, 5, 5, 5), 0.0),  # two identical points: union 0 -> 0
        ((10, 10, 0, 0), (0, 0, 10, 10), 1.0),  # reversed corners
        ((0.5, 0.5, 2.5, 1.5), (1.5, 0.5, 3.5, 1.5), 1 / 3),
    ],
)
def test_box_iou(a: tuple, b: tuple, expected: float) -> None:
    assert box_iou(a, b) == pytest.approx(expected, abs=1e-12)
    assert box_iou(b, a) == pytest.approx(expected, abs=1e-12)


def test_xywh_to_xyxy_and_point_in_box() -> None:
    assert xywh_to_xyxy([10, 20, 30, 40]) == (10.0, 20.0, 40.0, 60.0)
    assert point_in_box((10, 20), (10, 20, 40, 60))
    assert point_in_box((25, 30), (40, 60, 10, 20))
    assert not point_in_box((41, 30), (10, 20, 40, 60))


# --------------------------------------------------------------------------------------------
# Parsing, per convention
# --------------------------------------------------------------------------------------------

PARSE_CASES = [
    # qwen2_vl: 0-1000 grid, /1000
    ("qwen2_vl", "<|box_start|>(100,200),(500,800)<|box_end|>", (64.0, 96.0, 320.0, 384.0)),
    (
        "qwen2_vl",
        "<|object_ref_start|>the dog<|object_ref_end|><|box_start|>(100,200),(500,800)<|box_end|>",
        (64.0, 96.0, 320.0, 384.0),
    ),
    ("qwen2_vl", "the dog(100,200),(500,800)", (64.0, 96.0, 320.0, 384.0)),  # tokens stripped
    ("qwen2_vl", "<|box_start|>( 100 , 200 ) , ( 500 , 800 )<|box_end|>", (64.0, 96.0, 320.0, 384.0)),
    ("qwen2_vl", "<|box_start|>(500,800),(100,200)<|box_end|>", (64.0, 96.0, 320.0, 384.0)),  # reversed
    ("qwen2_vl", "<|box_start|>(500,200),(100,800)<|box_end|>", (64.0, 96.0, 320.0, 384.0)),  # mixed
    ("qwen2_vl", "<|box_start|>(-20,200),(1200,800)<|box_end|>", (0.0, 96.0, 640.0, 384.0)),  # clipped
    ("qwen2_vl", "(1,2),(3,4) then <|box_start|>(100,200),(500,800)<|box_end|>", (64.0, 96.0, 320.0, 384.0)),
    ("qwen2_vl", "<|box_start|>(100,200),(500,", None),  # truncated
    ("qwen2_vl", "<|box_start|>(100,200)<|box_end|>", None),  # a point, not a box
    ("qwen2_vl", "I cannot find it.", None),
    ("qwen2_vl", "", None),
    # qwen_vl: 0-1000 grid, /999
    ("qwen_vl", "<ref>the dog</ref><box>(999,0),(0,999)</box>", (0.0, 0.0, 640.0, 480.0)),
    (
        "qwen_vl",
        "(333,333),(666,666)</box>",
        (640 * 333 / 999, 480 * 333 / 999, 640 * 666 / 999, 480 * 666 / 999),
    ),
    (
        "qwen_vl",
        "<box>(100,200),(5000,800)</box>",
        (640 * 100 / 999, 480 * 200 / 999, 640.0, 480 * 800 / 999),
    ),
    ("qwen_vl", "<box>(100,200),(</box>", None),
    ("qwen_vl", "<box>(a,b),(c,d)</box>", None),
    # pixel_json: absolute pixels
    (
        "pixel_json",
        '```json\n[\n\t{"bbox_2d": [10, 20, 300, 400], "label": "dog"}\n]\n```',
        (10.0, 20.0, 300.0, 400.0),
    ),
    ("pixel_json", '{"bbox_2d": [10.5, 20, 300, 400]}', (10.5, 20.0, 300.0, 400.0)),
    (
        "pixel_json",
        '[{"label": "x"}, {"bbox_2d": [1, 2, 3, 4]}, {"bbox_2d": [5, 6, 7, 8]}]',
        (1.0, 2.0, 3.0, 4.0),
    ),
    ("pixel_json", "[10, 20, 300, 400]", (10.0, 20.0, 300.0, 400.0)),
    ("pixel_json", '```json\n[{"bbox_2d": [300, 400, 10, 20]}]\n```', (10.0, 20.0, 300.0, 400.0)),
    ("pixel_json", '[{"bbox_2d": [-5, 20, 900, 700]}]', (0.0, 20.0, 640.0, 480.0)),
    (
        "pixel_json",
        '```json\n[{"bbox_2d": [10, 20, 300, 400], "label": "do',
        (10.0, 20.0, 300.0, 400.0),
    ),  # cut off
    ("pixel_json", '```json\n[{"bbox_2d": [10, 20, 30', None),
    ("pixel_json", '[{"bbox_2d": [10, 20, 30]}]', None),
    ("pixel_json", '[{"bbox_2d": ["a", 20, 30, 40]}]', None),
    ("pixel_json", '[{"bbox_2d": [NaN, 20, 30, 40]}]', None),
    ("pixel_json", '[{"bbox_2d": [true, 20, 30, 40]}]', None),
    ("pixel_json", "The dog is on the left.", None),
    # normalized: fractions of the image size
    ("normalized", "[0.1, 0.2, 0.5, 0.6]", (64.0, 96.0, 320.0, 288.0)),
    ("normalized", "The box is (0.1, 0.2), (0.5, 0.6).", (64.0, 96.0, 320.0, 288.0)),
    ("normalized", "0.5 0.6 0.1 0.2", (64.0, 96.0, 320.0, 288.0)),
    ("normalized", "[-0.1, 0.2, 1.5, 0.6]", (0.0, 96.0, 640.0, 288.0)),
    ("normalized", "[0.1, 0.2, 0.5]", None),
    ("normalized", "no box", None),
]


@pytest.mark.parametrize(("convention", "text", "expected"), PARSE_CASES)
def test_parse_box(convention: str, text: str, expected: tuple | None) -> None:
    got = parse_box(text, convention, SIZE)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-9)


def test_every_convention_has_parse_cases() -> None:
    assert {c for c, _, e in PARSE_CASES if e is None} == set(BOX_CONVENTIONS)
    assert {c for c, _, e in PARSE_CASES if e is not None} == set(BOX_CONVENTIONS)


def test_grid_scale_uses_width_for_x_and_height_for_y() -> None:
    assert parse_box("(1000,0),(1000,1000)", "qwen2_vl", (200, 100)) == (200.0, 0.0, 200.0, 100.0)


def test_unknown_convention_and_bad_size_raise() -> None:
    with pytest.raises(ValueError):
        parse_box("(1,2),(3,4)", "yolo", SIZE)
    with pytest.raises(ValueError):
        format_box((1, 2, 3, 4), "yolo", SIZE)
    with pytest.raises(ValueError):
        parse_box("(1,2),(3,4)", "qwen2_vl", (0, 480))


# --------------------------------------------------------------------------------------------
# Formatting and round trips
# --------------------------------------------------------------------------------------------


def test_format_box_strings() -> None:
    box = (64, 96, 320, 384)
    assert format_box(box, "qwen2_vl", SIZE) == "<|box_start|>(100,200),(500,800)<|box_end|>"
    assert format_box(box, "qwen_vl", SIZE) == "<box>(100,200),(500,799)</box>"
    assert '"bbox_2d": [64, 96, 320, 384]' in format_box(box, "pixel_json", SIZE)
    assert format_box(box, "normalized", SIZE) == "[0.1000, 0.2000, 0.5000, 0.8000]"


def _random_box(rng: random.Random, width: int, height: int, min_frac: float) -> tuple[float, ...]:
    w = rng.uniform(min_frac, 1.0) * width
    h = rng.uniform(min_frac, 1.0) * height
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return (x, y, x + w, y + h)


@pytest.mark.parametrize("convention", BOX_CONVENTIONS)
def test_round_trip_iou(convention: str) -> None:
    """format -> parse keeps IoU >= 0.99 for boxes with sides >= 1/4 of an image of >= 800 px
    (worst case of the grid rounding: (1 - 2 * 0.5/250)**2 > 0.99; of whole pixels: sides of
    >= 200 px), and every coordinate within half a quantisation step for any box and size."""
    rng = random.Random(BOX_CONVENTIONS.index(convention))
    half_step = {"qwen2_vl": 1 / 2000, "qwen_vl": 1 / 1998, "pixel_json": None, "normalized": 0.00005}
    for _ in range(300):
        size = (rng.randint(800, 4000), rng.randint(800, 4000))
        gt = _random_box(rng, *size, min_frac=0.25)
        parsed = parse_box(format_box(gt, convention, size), convention, size)
        assert parsed is not None
        assert box_iou(parsed, gt) >= 0.99, (convention, size, gt, parsed)

        size = (rng.randint(20, 4000), rng.randint(20, 4000))
        tiny = _random_box(rng, *size, min_frac=0.0)
        parsed = parse_box(format_box(tiny, convention, size), convention, size)
        assert parsed is not None
        for k, (p, g) in enumerate(zip(parsed, tiny, strict=True)):
            side = size[k % 2]
            bound = 0.5 if half_step[convention] is None else half_step[convention] * side
            assert abs(p - g) <= bound + 1e-9, (convention, size, tiny, parsed)


# --------------------------------------------------------------------------------------------
# Click points (parse_point / format_point, the `point` convention)
# --------------------------------------------------------------------------------------------

POINT_CASES = [
    # grid conventions: a single pair on the grid, or a box -> its centre
    ("qwen2_vl", "(500,250)", (320.0, 120.0)),
    ("qwen2_vl", "<|box_start|>(100,200),(300,400)<|box_end|>", (128.0, 144.0)),
    ("qwen2_vl", "Click at <|box_start|>(250,500)<|box_end|>", (160.0, 240.0)),
    ("qwen2_vl", "(1200,-5)", (640.0, 0.0)),  # clipped to the image
    ("qwen2_vl", "(500,", None),
    ("qwen2_vl", "somewhere on the left", None),
    ("qwen_vl", "<box>(999,999)</box>", (640.0, 480.0)),
    ("qwen_vl", "<box>(0,0),(999,999)</box>", (320.0, 240.0)),
    ("qwen_vl", "<box>(a,b)</box>", None),
    # pixel_json: point_2d, a bare pair, or a bbox_2d centre
    ("pixel_json", '{"point_2d": [100, 50]}', (100.0, 50.0)),
    ("pixel_json", '```json\n[{"point_2d": [10, 20], "label": "ok"}]\n```', (10.0, 20.0)),
    ("pixel_json", "[30, 40]", (30.0, 40.0)),
    ("pixel_json", '{"bbox_2d": [10, 20, 30, 40]}', (20.0, 30.0)),
    ("pixel_json", '{"point_2d": [10, 2', None),
    ("pixel_json", '{"point_2d": ["a", 2]}', None),
    # normalized: two fractions, or four -> centre
    ("normalized", "(0.5, 0.25)", (320.0, 120.0)),
    ("normalized", "[0.1, 0.2, 0.3, 0.4]", (128.0, 144.0)),
    ("normalized", "no idea", None),
    # point (SeeClick): (x, y) fractions
    ("point", "(0.25,0.50)", (160.0, 240.0)),
    ("point", "The element is at (0.1, 0.9).", (64.0, 432.0)),
    ("point", "[0.1, 0.2, 0.3, 0.4]", (128.0, 144.0)),
    ("point", "(0.25,", None),
    ("point", "", None),
]


@pytest.mark.parametrize(("convention", "text", "expected"), POINT_CASES)
def test_parse_point(convention: str, text: str, expected: tuple | None) -> None:
    got = parse_point(text, convention, SIZE)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-9)


def test_every_point_convention_has_cases() -> None:
    assert set(POINT_CONVENTIONS) == {*BOX_CONVENTIONS, "point"}
    assert {c for c, _, e in POINT_CASES if e is None} == set(POINT_CONVENTIONS)
    assert {c for c, _, e in POINT_CASES if e is not None} == set(POINT_CONVENTIONS)


def test_point_convention_is_not_a_box_convention() -> None:
    with pytest.raises(ValueError):
        parse_box("(0.1,0.2)", "point", SIZE)
    with pytest.raises(ValueError):
        parse_point("(1,2)", "yolo", SIZE)
    with pytest.raises(ValueError):
        parse_point("(1,2)", "qwen2_vl", (640, 0))
    assert box_center((10, 20, 30, 60)) == (20.0, 40.0)


@pytest.mark.parametrize("convention", POINT_CONVENTIONS)
def test_point_round_trip(convention: str) -> None:
    """format_point -> parse_point lands within half a quantisation step of the point."""
    rng = random.Random(POINT_CONVENTIONS.index(convention))
    step = {"qwen2_vl": 1 / 1000, "qwen_vl": 1 / 999, "normalized": 1 / 100, "point": 1 / 100}
    for _ in range(200):
        size = (rng.randint(20, 4000), rng.randint(20, 4000))
        pt = (rng.uniform(0, size[0]), rng.uniform(0, size[1]))
        got = parse_point(format_point(pt, convention, size), convention, size)
        assert got is not None
        for k in range(2):
            bound = 0.5 if convention == "pixel_json" else step[convention] / 2 * size[k]
            assert abs(got[k] - pt[k]) <= bound + 1e-9, (convention, size, pt, got)


# --------------------------------------------------------------------------------------------
# The frame of the model's input (pixel_json answers are pixels of the image as given)
# --------------------------------------------------------------------------------------------


def test_pixel_json_is_scaled_from_the_input_frame() -> None:
    seen = (320, 160)  # the model got the 640 x 480 image at 320 x 160 (aspect not kept)
    assert parse_box('{"bbox_2d": [32, 16, 160, 128]}', "pixel_json", SIZE, seen) == (
        64.0,
        48.0,
        320.0,
        384.0,
    )
    assert parse_box('{"bbox_2d": [300, 150, 400, 200]}', "pixel_json", SIZE, seen) == (
        600.0,
        450.0,
        640.0,
        480.0,
    )
    assert parse_point('{"point_2d": [80, 40]}', "pixel_json", SIZE, seen) == (160.0, 120.0)
    assert parse_point('[{"bbox_2d": [0, 0, 160, 80]}]', "pixel_json", SIZE, seen) == (160.0, 120.0)
    # relative conventions do not depend on the frame
    for convention in ("qwen2_vl", "qwen_vl", "normalized"):
        text = format_box((64, 96, 320, 384), convention, SIZE)
        assert parse_box(text, convention, SIZE, seen) == parse_box(text, convention, SIZE)
    assert parse_point("(0.25,0.5)", "point", SIZE, seen) == (160.0, 240.0)
    with pytest.raises(ValueError):
        parse_box('{"bbox_2d": [1, 2, 3, 4]}', "pixel_json", SIZE, (0, 160))


@pytest.mark.parametrize("seen", [(320, 240), (1280, 960), (333, 517), (640, 480)])
def test_pixel_json_round_trips_through_any_input_frame(seen) -> None:
    rng = random.Random(7)
    for _ in range(50):
        box = _random_box(rng, *SIZE, min_frac=0.2)
        text = format_box(box, "pixel_json", SIZE, input_size=seen)
        parsed = parse_box(text, "pixel_json", SIZE, input_size=seen)
        # whole pixels of the input frame: at most half an input pixel, in image pixels
        tol = max(SIZE[0] / seen[0], SIZE[1] / seen[1]) / 2 + 1e-9
        assert all(abs(a - b) <= tol for a, b in zip(parsed, box, strict=True))
        point = box_center(box)
        got = parse_point(format_point(point, "pixel_json", SIZE, input_size=seen), "pixel_json", SIZE, seen)
        assert all(abs(a - b) <= tol for a, b in zip(got, point, strict=True))
