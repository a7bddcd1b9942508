"""A generator of malformed and hostile inputs, and a harness that runs them through real tasks.

Every :class:`Case` is one bad input (a broken image, a wrong-typed column, hostile ``qa_pairs``,
an unparseable box...) with the outcome evalkit promises for it:

* ``input`` — a per-sample error record with ``error_type == "input"``;
* ``score`` — a per-sample error record with ``error_type == "score"``;
* ``ok`` — documented handling, no error: the sample is evaluated (e.g. EXIF rotation applied,
  CMYK/palette/alpha/16-bit converted to RGB, an unparseable box scored 0 and counted as a parse
  failure); an optional ``check`` verifies the handling itself;
* ``record`` — either of the above: a record exists and the run completed (a value whose meaning is
  the dataset's business, e.g. an empty question);
* ``refused`` — the whole run is refused up front with one clear :class:`EvalkitError` line (a
  missing column, duplicate ids), before any sample is evaluated;
* ``input_or_refused`` — per-sample input errors, or the run refused as above.

Cases are grouped into suites: one small parquet per suite, run in-process with the scripted
``fake`` backend (:func:`run_suites`). A case is *handled* when its outcome matches; a suite whose
run raises anything else (a traceback) counts all of its cases as not handled. Video cases call
:func:`evalkit.media.video.sample_video` directly (no video task is registered yet): each must
raise :class:`~evalkit.errors.InputError`, which the runner records per sample.

    python -c "from evalkit.testing.malformed import main; main()"
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import traceback
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPECTATIONS = ("input", "score", "ok", "record", "refused", "input_or_refused")


@dataclass
class Case:
    """One malformed input and the outcome evalkit promises for it."""

    name: str
    category: str
    expect: str
    #: sample ids (or id prefixes ending in ``*``) whose records this case owns
    ids: list[str] = field(default_factory=list)
    #: optional extra check of the handling (True = as documented)
    check: Callable[[], bool] | None = None
    note: str = ""


@dataclass
class Outcome:
    """What happened to one case."""

    suite: str
    case: Case
    handled: bool
    detail: str


@dataclass
class Suite:
    """One run: a task, a dataset file and the cases it holds."""

    name: str
    task: str
    data: Path | None
    cases: list[Case]
    overrides: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    #: for suites without a run (video): a function returning per-case outcomes
    direct: Callable[[], list[Outcome]] | None = None


# ----------------------------------------------------------------------------- images
def _encode(img: Any, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(size: tuple[int, int] = (24, 16), color: tuple[int, int, int] = (200, 30, 30)) -> Any:
    from PIL import Image

    img = Image.new("RGB", size, (250, 250, 250))
    img.paste(Image.new("RGB", (size[0] // 2, size[1] // 2), color), (0, 0))
    return img


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression-bomb header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _png_chunk(b"IEND", b"")
    )


def bomb_jpeg(width: int = 40_000, height: int = 40_000) -> bytes:
    """A small JPEG whose SOF0 header is patched to claim ``width x height`` pixels."""
    data = bytearray(_encode(_rgb(), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_jpeg(orientation: int, size: tuple[int, int] = (24, 16)) -> bytes:
    """A JPEG with the EXIF Orientation tag set (1-8)."""
    img = _rgb(size)
    exif = img.getexif()
    exif[0x0112] = orientation
    return _encode(img, "JPEG", exif=exif.tobytes())


def _cell(data: bytes | None, path: str | None = None) -> dict[str, Any]:
    return {"bytes": data, "path": path}


def _loads_as(value: Any, size: tuple[int, int] | None = None, pixel: tuple[Any, Any] | None = None) -> bool:
    from evalkit.media.image import load_image

    img = load_image(value)
    if img.mode != "RGB":
        return False
    if size is not None and img.size != size:
        return False
    return pixel is None or img.getpixel(pixel[0]) == pixel[1]


def image_cases(tmp: Path) -> list[tuple[str, Any, str, Callable[[], bool] | None, str]]:
    """``(name, image cell, expectation, check, note)`` for every malformed/odd image."""
    from PIL import Image

    png = _encode(_rgb(), "PNG")
    jpg = _encode(_rgb((64, 48)), "JPEG", quality=90)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "empty.png").write_bytes(b"")
    (tmp / "good.png").write_bytes(png)
    (tmp / "adir.png").mkdir(exist_ok=True)
    out: list[tuple[str, Any, str, Callable[[], bool] | None, str]] = [
        ("png_truncated_half", _cell(png[: len(png) // 2]), "input", None, ""),
        ("png_truncated_header", _cell(png[:33]), "input", None, ""),
        ("png_signature_only", _cell(png[:8]), "input", None, ""),
        ("jpeg_truncated_half", _cell(jpg[: len(jpg) // 2]), "input", None, ""),
        ("jpeg_truncated_100b", _cell(jpg[:100]), "input", None, ""),
        ("jpeg_soi_only", _cell(b"\xff\xd8"), "input", None, ""),
        ("zero_bytes", _cell(b""), "input", None, ""),
        ("cell_none", None, "input", None, ""),
        ("bytes_and_path_none", _cell(None, None), "input", None, ""),
        ("garbage_bytes", _cell(bytes(random.Random(1).randrange(256) for _ in range(300))), "input", None, ""),
        ("png_signature_then_garbage", _cell(b"\x89PNG\r\n\x1a\n" + b"x" * 200), "input", None, ""),
        ("html_error_page", _cell(b"<html><body>404 Not Found</body></html>"), "input", None, ""),
        ("gzip_bytes", _cell(zlib.compress(png)), "input", None, ""),
        ("bomb_png_30000x30000", _cell(bomb_png()), "input", None, "refused from the header"),
        ("bomb_jpeg_40000x40000", _cell(bomb_jpeg()), "input", None, "refused from the header"),
        ("bomb_png_just_over_limit", _cell(bomb_png(13_380, 13_380)), "input", None, "179.0 Mpx > 178.96 Mpx"),
        ("path_missing", _cell(None, str(tmp / "nope.png")), "input", None, ""),
        ("path_zero_byte_file", _cell(None, str(tmp / "empty.png")), "input", None, ""),
        ("path_is_directory", _cell(None, str(tmp / "adir.png")), "input", None, ""),
        ("path_good_file", _cell(None, str(tmp / "good.png")), "ok", None, ""),
    ]  # fmt: skip
    one = Image.new("RGB", (1, 1), (1, 2, 3))
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([255, 0, 0] * 256)
    pal_t = pal.copy()
    pal_t.info["transparency"] = 0
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    la = Image.new("LA", (8, 8), (0, 0))
    i16 = Image.new("I;16", (8, 8), 65535)
    i32 = Image.new("I", (8, 8), 7)
    f32 = Image.new("F", (8, 8), 0.5)
    bw = Image.new("1", (8, 8), 1)
    frames = [_rgb(color=(i * 40, 0, 0)) for i in range(3)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:])
    white = (255, 255, 255)
    ok_cases: list[tuple[str, bytes, Callable[[bytes], bool], str]] = [
        ("one_pixel_png", _encode(one, "PNG"), lambda b: _loads_as(b, (1, 1)), ""),
        ("one_pixel_jpeg", _encode(one, "JPEG"), lambda b: _loads_as(b, (1, 1)), ""),
        ("one_pixel_grey_png", _encode(Image.new("L", (1, 1), 9), "PNG"), lambda b: _loads_as(b, (1, 1)), ""),
        ("thin_strip_1x3000", _encode(Image.new("RGB", (1, 3000)), "PNG"), lambda b: _loads_as(b, (1, 3000)), ""),
        ("cmyk_jpeg", _encode(cmyk, "JPEG"), lambda b: _loads_as(b, (8, 8)), "converted to RGB"),
        ("cmyk_tiff", _encode(cmyk, "TIFF"), lambda b: _loads_as(b, (8, 8)), "converted to RGB"),
        ("palette_png", _encode(pal, "PNG"), lambda b: _loads_as(b, (8, 8), ((0, 0), (255, 0, 0))), ""),
        ("palette_transparent_png", _encode(pal_t, "PNG", transparency=0), lambda b: _loads_as(b, (8, 8), ((0, 0), white)), "alpha on white"),
        ("rgba_transparent_png", _encode(rgba, "PNG"), lambda b: _loads_as(b, (8, 8), ((0, 0), white)), "alpha on white"),
        ("la_png", _encode(la, "PNG"), lambda b: _loads_as(b, (8, 8), ((0, 0), white)), "alpha on white"),
        ("grey16_png", _encode(i16, "PNG"), lambda b: _loads_as(b, (8, 8), ((0, 0), white)), "16-bit scaled to 8"),
        ("int32_tiff", _encode(i32, "TIFF"), lambda b: _loads_as(b, (8, 8)), "scaled to 8 bits"),
        ("float_tiff", _encode(f32, "TIFF"), lambda b: _loads_as(b, (8, 8)), "scaled to 8 bits"),
        ("bilevel_png", _encode(bw, "PNG"), lambda b: _loads_as(b, (8, 8), ((0, 0), white)), ""),
        ("animated_gif", gif.getvalue(), lambda b: _loads_as(b, (24, 16)), "first frame"),
        ("webp", _encode(_rgb(), "WEBP"), lambda b: _loads_as(b, (24, 16)), ""),
        ("bmp", _encode(_rgb(), "BMP"), lambda b: _loads_as(b, (24, 16)), ""),
        ("tiff", _encode(_rgb(), "TIFF"), lambda b: _loads_as(b, (24, 16)), ""),
    ]  # fmt: skip
    for orientation in range(1, 9):  # EXIF 5-8 swap width and height, as datasets' Image feature does
        size = (16, 24) if orientation >= 5 else (24, 16)
        ok_cases.append(
            (f"exif_orientation_{orientation}", exif_jpeg(orientation), lambda b, s=size: _loads_as(b, s),
             "EXIF orientation applied (ImageOps.exif_transpose)")
        )  # fmt: skip
    for name, data, check, note in ok_cases:
        out.append((name, _cell(data), "ok", lambda d=data, c=check: c(d), note))
    return out


# ----------------------------------------------------------------------------- suites
def _docvqa_rows(n: int, seed: int) -> dict[str, list[Any]]:
    from evalkit.testing.docvqa import make_docvqa_rows

    return make_docvqa_rows(n, seed=seed)


def _write(cols: dict[str, list[Any]], path: Path, features: Any = None) -> Path:
    """Write columns as parquet with the hub's feature metadata, bypassing ``datasets``' own
    validation (which would refuse some of the malformed cells this module exists to produce)."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    if features is None:
        datasets.utils.logging.disable_progress_bar()
        datasets.Dataset.from_dict(cols).to_parquet(str(path))
        return path
    pq.write_table(pa.Table.from_pydict(cols, schema=features.arrow_schema), str(path))
    return path


def docvqa_suites(root: Path) -> list[Suite]:
    """DocVQA: every image case, field cases, prediction cases, and schema variants."""
    from evalkit.testing.docvqa import docvqa_features

    imgs = image_cases(root / "files")
    fields: list[tuple[str, str, Any, str]] = [  # (name, column, value, expectation)
        ("question_none", "question", None, "input"),
        ("question_empty", "question", "", "record"),
        ("question_whitespace", "question", " \t\n ", "record"),
        ("question_4mb", "question", "why " * 1_000_000, "record"),
        ("question_control_chars", "question", "what\x00is\x1bthis\x07?", "record"),
        ("question_rtl_emoji", "question", "\u202emma\u202c 😀 ما هذا؟", "ok"),
        ("answers_none", "answers", None, "input"),
        ("answers_empty_list", "answers", [], "input"),
        ("answers_none_element", "answers", [None], "record"),
        ("answers_empty_string", "answers", [""], "record"),
        ("answers_2mb", "answers", ["x" * 2_000_000], "ok"),
        ("question_types_none", "question_types", None, "ok"),
        ("question_types_empty", "question_types", [], "ok"),
        ("question_id_empty", "questionId", "", "record"),
        ("question_id_100kb", "questionId", "q" * 100_000, "record"),
    ]
    predictions: list[tuple[str, str]] = [
        ("prediction_empty", ""),
        ("prediction_3mb", "y" * 3_000_000),
        ("prediction_nul", "a\x00b"),
        ("prediction_nan_text", "NaN"),
        ("prediction_json_junk", '{"answer": [1, 2'),
    ]
    n = len(imgs) + len(fields) + len(predictions) + 1
    cols = _docvqa_rows(n, seed=77)
    cols["questionId"] = [f"m{i:03d}" for i in range(n)]
    cases: list[Case] = []
    answers: dict[str, str] = {}
    i = 0
    for name, cell, expect, check, note in imgs:
        cols["image"][i] = cell
        cases.append(Case(name, "image", expect, [cols["questionId"][i]], check, note))
        i += 1
    for name, column, value, expect in fields:
        cols[column][i] = value
        ids = [cols["questionId"][i] if column != "questionId" else str(value)]
        cases.append(Case(name, "field", expect, ids))
        i += 1
    for name, text in predictions:
        answers[cols["questionId"][i]] = text
        cases.append(Case(name, "prediction", "ok", [cols["questionId"][i]], note="scored (ANLS)"))
        i += 1
    cols["questionId"][i] = None  # a missing id: the row index stands in
    cases.append(Case("question_id_none", "field", "record", [f"row-{i}"]))
    suites = [
        Suite("docvqa-rows", "docvqa", _write(cols, root / "docvqa_rows.parquet", docvqa_features()), cases,
              answers=answers)
    ]  # fmt: skip

    def variant(
        name: str,
        expect: str,
        mutate: Callable[[dict[str, list[Any]]], None],
        fmt: str = "parquet",
        case_id: str | None = None,
    ) -> None:
        small = _docvqa_rows(3, seed=5)
        small["questionId"] = [f"{name}-{k}" for k in range(3)]
        mutate(small)
        path = root / f"docvqa_{name}.{fmt}"
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in small["_jsonl"]))
        else:
            _write(small, path)
        ids = [case_id or f"{name}-2"] if expect != "refused" else []
        suites.append(Suite(f"docvqa-{name}", "docvqa", path, [Case(name, "schema", expect, ids)]))

    def drop(col: str) -> Callable[[dict[str, list[Any]]], None]:
        return lambda c: c.pop(col)

    def setcol(col: str, values: list[Any]) -> Callable[[dict[str, list[Any]]], None]:
        return lambda c: c.__setitem__(col, values)

    variant("missing_question_column", "input_or_refused", drop("question"))
    variant("missing_answers_column", "input_or_refused", drop("answers"))
    variant("missing_image_column", "input_or_refused", drop("image"))
    variant("answers_plain_string", "record", setcol("answers", ["a", "b", "c"]))
    variant("answers_float_nan", "input", setcol("answers", [1.0, 2.0, math.nan]))
    variant("question_id_int64", "record", lambda c: c.__setitem__("questionId", [1, 2, 3]), case_id="3")
    variant("question_int64", "input", lambda c: c.__setitem__("question", [1, 2, 3]))
    variant("image_plain_string", "input", lambda c: c.__setitem__("image", ["a", "b", "not/a/file.png"]))
    variant(
        "image_binary_column", "record", lambda c: c.__setitem__("image", [x["bytes"] for x in c["image"]])
    )
    variant("duplicate_ids", "refused", lambda c: c.__setitem__("questionId", ["d", "d", "e"]))
    variant("empty_dataset", "refused", lambda c: [c.__setitem__(k, []) for k in list(c)])

    def mixed_jsonl(c: dict[str, list[Any]]) -> None:
        c["_jsonl"] = [
            {"questionId": "mixed_jsonl-0", "question": "q?", "answers": ["a"], "image": None},
            {"questionId": "mixed_jsonl-1", "question": 5, "answers": "a", "image": None},
            {"questionId": "mixed_jsonl-2", "question": None, "answers": 3.5, "image": None},
        ]

    variant("mixed_jsonl", "input_or_refused", mixed_jsonl, fmt="jsonl")
    # a jsonl whose last line is cut off in the middle (a partial download)
    trunc = root / "docvqa_truncated.jsonl"
    trunc.write_text(
        '{"questionId": "t-0", "question": "q?", "answers": ["a"]}\n{"questionId": "t-1", "quest'
    )
    suites.append(
        Suite("docvqa-truncated_jsonl", "docvqa", trunc, [Case("truncated_jsonl", "schema", "refused")])
    )
    return suites


def mtvqa_suite(root: Path) -> Suite:
    """MTVQA: malformed and hostile ``qa_pairs`` strings (never evaluated as code)."""
    from evalkit.testing.image_qa import mtvqa_split

    sentinel = root / "PWNED"
    bad: list[tuple[str, Any, str]] = [
        ("qa_pairs_unparseable", "[{'question': 'q'", "input"),
        ("qa_pairs_empty_string", "", "input"),
        ("qa_pairs_none", None, "input"),
        ("qa_pairs_empty_list", "[]", "input"),
        ("qa_pairs_dict_not_list", "{'question': 'q?', 'answer': 'a'}", "input"),
        ("qa_pairs_number", "42", "input"),
        ("qa_pairs_list_of_strings", "['q?', 'a']", "input"),
        ("qa_pairs_missing_answer", "[{'question': 'q?'}]", "input"),
        ("qa_pairs_missing_question", "[{'answer': 'a'}]", "input"),
        ("qa_pairs_answer_none", "[{'question': 'q?', 'answer': None}]", "input"),
        ("qa_pairs_answer_int", "[{'question': 'q?', 'answer': 5}]", "record"),
        ("qa_pairs_answer_nan_json", '[{"question": "q?", "answer": NaN}]', "record"),
        ("qa_pairs_question_2mb", repr([{"question": "q" * 2_000_000, "answer": "a"}]), "record"),
        ("qa_pairs_code_injection", f"__import__('os').system('touch {sentinel}')", "input"),
        ("qa_pairs_lambda", "(lambda: __import__('os').system('touch " + str(sentinel) + "'))()", "input"),
        ("qa_pairs_expression", "[{'question': 'q', 'answer': 'a'}] * 3 + [1]", "input"),
        ("qa_pairs_trailing_garbage", '[{"question": "q?", "answer": "a"}] trailing', "input"),
        ("qa_pairs_half_good", "[{'question': 'q?', 'answer': 'a'}, 7]", "record"),
        ("lang_none", None, "record"),
    ]
    cols, features = mtvqa_split(len(bad) + 1, seed=3)
    cases = []
    for i, (name, value, expect) in enumerate(bad):
        if name == "lang_none":
            cols["lang"][i] = None
        else:
            cols["qa_pairs"][i] = value
        check = (lambda: not sentinel.exists()) if "injection" in name or "lambda" in name else None
        cases.append(Case(name, "qa_pairs", expect, [f"{cols['id'][i]}_*"], check))
    return Suite("mtvqa-qa_pairs", "mtvqa", _write(cols, root / "mtvqa.parquet", features), cases)


def mtvqa_nested_suite(root: Path) -> Suite:
    """MTVQA: ``qa_pairs`` nested 5000 deep (a parser recursion bomb), alone in its run."""
    from evalkit.testing.image_qa import mtvqa_split

    cols, features = mtvqa_split(3, seed=4)
    cols["qa_pairs"][0] = "[" * 5000 + "]" * 5000
    case = Case("qa_pairs_deeply_nested", "qa_pairs", "input", [f"{cols['id'][0]}_*"])
    return Suite("mtvqa-nested", "mtvqa", _write(cols, root / "mtvqa_nested.parquet", features), [case])


def grounding_suite(root: Path) -> Suite:
    """RefCOCO: malformed ground-truth boxes and expressions, and unparseable predicted boxes."""
    from evalkit.testing.grounding import make_refcoco_rows, refcoco_features

    gt: list[tuple[str, str, Any, str]] = [
        ("bbox_three_numbers", "bbox", [1.0, 2.0, 3.0], "input"),
        ("bbox_none", "bbox", None, "input"),
        ("bbox_empty", "bbox", [], "input"),
        ("bbox_nan", "bbox", [math.nan, 1.0, 5.0, 5.0], "input"),
        ("bbox_inf", "bbox", [1.0, 1.0, math.inf, 5.0], "input"),
        ("bbox_zero_width", "bbox", [1.0, 1.0, 0.0, 5.0], "input"),
        ("bbox_negative_height", "bbox", [1.0, 1.0, 5.0, -5.0], "input"),
        ("bbox_outside_image", "bbox", [5000.0, 5000.0, 10.0, 10.0], "record"),
        ("expressions_empty", "answer", [], "input"),
        ("expressions_none", "answer", None, "input"),
        ("expression_1mb", "answer", ["the box " * 125_000], "record"),
    ]
    preds: list[tuple[str, str]] = [
        ("pred_empty", ""),
        ("pred_no_box", "I cannot see any box here."),
        ("pred_truncated_tuple", "(12,34),(56"),
        ("pred_letters_in_box", "<|box_start|>(a,b),(c,d)<|box_end|>"),
        ("pred_overflow_number", "[1e999, 0, 10, 10]"),
        ("pred_json_nan", '{"bbox_2d": [NaN, 1, 2, 3]}'),
        ("pred_inverted_box", "(500,500),(100,100)"),
        ("pred_far_outside", "(-5000,-5000),(99999,99999)"),
        ("pred_1mb_digits", "(" + "9" * 1_000_000 + ",1),(2,3)"),
        ("pred_nested_brackets", "[" * 3000 + "]" * 3000),
        ("pred_unicode_digits", "(١٢,٣٤),(٥٦,٧٨)"),
    ]
    cols = make_refcoco_rows(len(gt) + len(preds) + 1, seed=9)
    cols["question_id"] = [f"g{i:02d}" for i in range(len(cols["question_id"]))]
    cols["answer"] = [a[:1] for a in cols["answer"]]
    cases, answers = [], {}
    for i, (name, column, value, expect) in enumerate(gt):
        cols[column][i] = value
        cases.append(Case(name, "box", expect, [f"g{i:02d}-*"]))
    for j, (name, text) in enumerate(preds):
        i = len(gt) + j
        answers[f"g{i:02d}-0"] = text
        cases.append(Case(name, "box", "ok", [f"g{i:02d}-0"], note="scored 0, counted as a parse failure"))
    path = _write(cols, root / "refcoco.parquet", refcoco_features())
    return Suite("refcoco-boxes", "refcoco", path, cases, answers=answers)


def realworldqa_suite(root: Path) -> Suite:
    """RealWorldQA: missing fields and choice predictions that cannot be parsed."""
    from evalkit.testing.image_qa import realworldqa_split

    cols, features = realworldqa_split(12, seed=4)
    cases, answers = [], {}
    mutations = [("rwqa_question_none", "question", None, "input"), ("rwqa_answer_none", "answer", None, "input"),
                 ("rwqa_answer_empty", "answer", "", "record"), ("rwqa_image_none", "image", None, "input")]  # fmt: skip
    for i, (name, column, value, expect) in enumerate(mutations):
        cols[column][i] = value
        cases.append(Case(name, "field", expect, [str(i)]))
    for j, (name, text) in enumerate([("rwqa_pred_empty", ""), ("rwqa_pred_letter_z", "Z"),
                                      ("rwqa_pred_1mb", "A B C D " * 125_000)]):  # fmt: skip
        i = len(mutations) + j
        answers[str(i)] = text
        cases.append(Case(name, "prediction", "ok", [str(i)], note="counted as unparsed / wrong"))
    path = _write(cols, root / "realworldqa.parquet", features)
    return Suite("realworldqa-fields", "realworldqa", path, cases, answers=answers)


def video_suite(root: Path) -> Suite:
    """Empty and corrupted video files: each must raise InputError from ``sample_video``."""
    vdir = root / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    good: bytes | None = None
    try:
        from evalkit.media.synthetic import write_index_video

        good = write_index_video(vdir / "good.mp4", 20, fps=10, gop=10).read_bytes()
    except Exception:  # pragma: no cover - no encoder available
        good = None
    files: dict[str, bytes | None] = {
        "video_zero_bytes": b"",
        "video_random_bytes": bytes(random.Random(2).randrange(256) for _ in range(4096)),
        "video_text_file": b"this is not a video\n" * 20,
        "video_mp4_header_only": (good or b"\x00\x00\x00\x18ftypmp42")[:64],
        "video_truncated_half": good[: len(good) // 2] if good else None,
        "video_png_renamed": _encode(_rgb(), "PNG"),
        "video_missing_file": None,
    }
    cases = [Case(name, "video", "input", note="InputError from sample_video") for name in files]
    cases[5].expect, cases[5].note = "record", "FFmpeg reads a lone image as a one-frame video"

    def direct() -> list[Outcome]:
        from evalkit.errors import InputError
        from evalkit.media.video import VideoSampling, sample_video

        outcomes = []
        for case in cases:
            data = files[case.name]
            path = vdir / f"{case.name}.mp4"
            if data is not None:
                path.write_bytes(data)
            elif case.name == "video_truncated_half":
                outcomes.append(Outcome("video", case, False, "no encoder to make the source video"))
                continue
            try:
                sample_video(path, VideoSampling.from_config({"nframes": 4}))
                outcomes.append(Outcome("video", case, case.expect == "record", "decoded without error"))
            except InputError as exc:
                outcomes.append(Outcome("video", case, True, f"InputError: {exc}"))
            except Exception as exc:
                outcomes.append(Outcome("video", case, False, f"{type(exc).__name__}: {exc}"[:300]))
        return outcomes

    return Suite("video-files", "video", None, cases, direct=direct)


def build_suites(root: str | Path) -> list[Suite]:
    """Write every suite's data under ``root``; returns the suites (≥ 100 cases in all)."""
    root = Path(root)
    return [
        *docvqa_suites(root),
        mtvqa_suite(root),
        mtvqa_nested_suite(root),
        grounding_suite(root),
        realworldqa_suite(root),
        video_suite(root),
    ]


# ----------------------------------------------------------------------------- running
def _records_for(rows: dict[str, dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for sid in ids:
        if sid.endswith("*"):
            out += [r for k, r in rows.items() if k.startswith(sid[:-1])]
        elif sid in rows:
            out.append(rows[sid])
    return out


def _judge(case: Case, rows: dict[str, dict[str, Any]], refused: str | None) -> tuple[bool, str]:
    if refused is not None:
        ok = case.expect in ("refused", "input_or_refused")
        return ok, f"run refused: {refused}"
    if case.expect == "refused":
        return False, "run was not refused"
    recs = _records_for(rows, case.ids)
    if not recs:
        return False, "no record for the case"
    kinds = sorted({str(r.get("error_type")) for r in recs})
    detail = "; ".join(sorted({str(r.get("error"))[:160] for r in recs if r.get("error")})) or "no error"
    if case.expect in ("input", "input_or_refused"):
        ok = all(r.get("error_type") == "input" and r.get("scores") == {} for r in recs)
    elif case.expect == "score":
        ok = all(r.get("error_type") == "score" for r in recs)
    elif case.expect == "ok":
        ok = all(r.get("error") is None for r in recs)
    else:  # record
        ok = all(r.get("error") is None or r.get("error_type") in ("input", "score") for r in recs)
    ok = ok and all(isinstance(r.get("error"), str | type(None)) and "\n" not in (r.get("error") or "")
                    for r in recs)  # fmt: skip
    if ok and case.check is not None:
        try:
            ok = bool(case.check())
        except Exception as exc:
            ok, detail = False, f"check failed: {type(exc).__name__}: {exc}"[:300]
    return ok, f"error_type={','.join(kinds)}: {detail}"


def run_suite(suite: Suite, out_root: Path) -> list[Outcome]:
    """Run one suite in-process with the fake backend; judge each of its cases."""
    if suite.direct is not None:
        return suite.direct()
    from evalkit.api import evaluate
    from evalkit.errors import EvalkitError

    out = out_root / suite.name
    answers_file = out_root / f"{suite.name}.answers.json"
    answers_file.parent.mkdir(parents=True, exist_ok=True)
    answers_file.write_text(json.dumps(suite.answers))
    overrides = [
        f"task.dataset.path={suite.data}",
        f"output_dir={out}",
        "model.backend=fake",
        "+model.mode=table",
        f"+model.answers={answers_file}",
        "runner.progress=false",
        "runner.cache=false",
        "runner.thumbnails=0",
        "batch_size=8",
        # the suites are mostly bad rows on purpose: judge the per-sample handling, not the run's health
        "runner.max_error_rate=1",
        *suite.overrides,
    ]
    from evalkit.api import IncompleteRunError

    refused: str | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = evaluate(suite.task, "tiny", overrides)
    except IncompleteRunError as exc:
        # a suite of only bad rows completes with every sample an error record and (rightly) does
        # not exit 0: its records are judged like any other suite's
        results = exc.results
    except EvalkitError as exc:
        msg = str(exc)
        if "\n" in msg.strip():
            return [Outcome(suite.name, c, False, f"multi-line error: {msg[:300]}") for c in suite.cases]
        refused = f"{type(exc).__name__}: {msg[:240]}"
    except Exception as exc:  # a crash: nothing in the suite is handled
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        where = [ln.strip().splitlines()[0] for ln in tb if ln.strip().startswith("File ")][-4:]
        detail = f"CRASH {type(exc).__name__}: {str(exc)[:200]} at {' <- '.join(reversed(where))}"
        return [Outcome(suite.name, c, False, detail) for c in suite.cases]
    rows: dict[str, dict[str, Any]] = {}
    if refused is None:
        task_name = next(iter(results["tasks"]))
        path = out / "samples" / f"{task_name}.jsonl"
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                rows[r["id"]] = r
    return [Outcome(suite.name, c, *_judge(c, rows, refused)) for c in suite.cases]


def run_suites(root: str | Path) -> list[Outcome]:
    """Generate every suite under ``root/data`` and run it into ``root/runs``; all outcomes."""
    root = Path(root)
    outcomes: list[Outcome] = []
    for suite in build_suites(root / "data"):
        outcomes += run_suite(suite, root / "runs")
    return outcomes


def summary(outcomes: list[Outcome]) -> str:
    """``handled/total`` plus one line per unhandled case."""
    bad = [o for o in outcomes if not o.handled]
    lines = [f"malformed inputs handled: {len(outcomes) - len(bad)}/{len(outcomes)}"]
    lines += [f"  NOT HANDLED {o.suite}/{o.case.name} (expected {o.case.expect}): {o.detail}" for o in bad]
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - manual use
    """Run everything in a temporary folder and print the summary."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(summary(run_suites(tmp)))
