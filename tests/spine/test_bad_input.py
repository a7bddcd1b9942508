"""Bad input becomes per-sample error records; the run completes and reports how many."""

from __future__ import annotations

import io
import json

import pytest
from datasets import Dataset

from evalkit.api import evaluate
from evalkit.errors import InputError
from evalkit.media.image import load_image
from evalkit.testing.docvqa import docvqa_features, make_docvqa_rows
from tests.conftest import read_samples


@pytest.fixture(scope="module")
def corrupt_docvqa(tmp_path_factory):
    cols = make_docvqa_rows(12, seed=11)
    good_png = cols["image"][0]["bytes"]
    cols["image"][1] = {"bytes": good_png[: len(good_png) // 3], "path": None}  # truncated PNG
    cols["image"][2] = {"bytes": b"", "path": None}  # zero bytes -> no image
    cols["image"][3] = {"bytes": b"this is not an image", "path": None}
    cols["question"][4] = None  # missing field
    cols["answers"][5] = []  # empty answer list
    root = tmp_path_factory.mktemp("corrupt")
    gone = root / "gone.png"
    gone.write_bytes(good_png)
    cols["image"][6] = {"bytes": None, "path": str(gone)}  # the file disappears before the run
    path = root / "docvqa.parquet"
    Dataset.from_dict(cols, features=docvqa_features()).to_parquet(str(path))
    gone.unlink()
    return path, cols


@pytest.mark.parametrize("model", ["fake", "hf"])
def test_corrupt_rows_become_error_records(tmp_path, corrupt_docvqa, tiny_model_dir, model):
    path, cols = corrupt_docvqa
    overrides = [
        f"task.dataset.path={path}",
        f"output_dir={tmp_path}",
        "runner.progress=false",
        "batch_size=4",
        "runner.max_error_rate=1",  # half the rows are corrupt on purpose
    ]
    if model == "fake":
        overrides += ["model.backend=fake", "+model.mode=constant", "+model.answer=42"]
    else:
        overrides += [f"model.pretrained={tiny_model_dir}"]
    with pytest.warns(UserWarning, match="6 of 12 samples had errors"):
        results = evaluate("docvqa", "tiny", overrides)
    task = results["tasks"]["docvqa"]
    assert task["n_samples"] == 12 and task["n_errors"] == 6 and task["n_scored"] == 6
    rows = {r["id"]: r for r in read_samples(tmp_path / "samples" / "docvqa.jsonl")}
    ids = cols["questionId"]
    expect = {
        1: "cannot decode image",
        2: "image",
        3: "cannot decode image",
        4: "question",
        5: "empty answer list",
        6: "does not exist",
    }
    for i, fragment in expect.items():
        r = rows[ids[i]]
        assert r["error_type"] == "input" and fragment in r["error"], (i, r["error"])
        assert r["scores"] == {} and r["prediction"] is None
    good = [rows[ids[i]] for i in range(12) if i not in expect]
    assert all(r["error"] is None for r in good)
    assert task["metrics"]["anls"] == pytest.approx(sum(r["scores"]["anls"] for r in good) / len(good))
    # a rerun keeps the input errors (deterministic) and redoes nothing
    again = evaluate("docvqa", "tiny", overrides)
    assert again["timing"]["n_resumed"] == 12 and again["timing"]["n_generated"] == 0


def test_model_errors_are_recorded_and_retried_on_resume(tmp_path, docvqa_dir):
    import datasets

    ids = datasets.load_dataset(
        "parquet", data_files=str(docvqa_dir / "DocVQA" / "validation-00000-of-00001.parquet"), split="train"
    )["questionId"]
    base = [f"task.dataset.path={docvqa_dir}", f"output_dir={tmp_path}", "runner.progress=false", "limit=6",
            "model.backend=fake", "+model.mode=constant", "+model.answer=x", "runner.cache=false"]  # fmt: skip
    with pytest.warns(UserWarning):
        # 2 of 6 failing is over the default max_error_rate: allow it, this test is about the records
        first = evaluate(
            "docvqa", "tiny", [*base, f"+model.fail_ids=[{ids[1]},{ids[3]}]", "runner.max_error_rate=0.5"]
        )
    assert first["tasks"]["docvqa"]["n_errors"] == 2
    rows = {r["id"]: r for r in read_samples(tmp_path / "samples" / "docvqa.jsonl")}
    assert rows[ids[1]]["error_type"] == "model" and rows[ids[1]]["error"] == "scripted failure"
    second = evaluate("docvqa", "tiny", base)  # the backend works again: only the 2 failures are redone
    assert second["timing"]["n_generated"] == 2 and second["tasks"]["docvqa"]["n_errors"] == 0


def test_non_string_prediction_is_a_score_error(tmp_path, docvqa_dir):
    from evalkit.runner.runner import score_record
    from evalkit.tasks.registry import build_task
    from evalkit.types import Record, Sample

    task = build_task(
        {"name": "docvqa", "plugin": "evalkit.plugins.docvqa:DocVQATask", "dataset": {"split": "validation"}}
    )
    rec = score_record(task, Sample("1", 0, ["a"]), Record("1", None, 12345, ["a"]))  # type: ignore[arg-type]
    assert rec.error_type == "score" and "not a string" in rec.error


def test_load_image_variants():
    from PIL import Image

    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent -> white, as qwen-vl-utils
    pal = Image.new("P", (3, 3))
    assert load_image(pal).mode == "RGB"
    cmyk = Image.new("CMYK", (3, 3), (0, 0, 0, 0))
    assert load_image(cmyk).mode == "RGB"
    i16 = Image.new("I;16", (2, 2), 65535)
    assert load_image(i16).getpixel((0, 0)) == (255, 255, 255)
    buf = io.BytesIO()
    Image.new("RGB", (2, 3)).save(buf, format="PNG")
    assert load_image(buf.getvalue()).size == (2, 3)
    assert load_image({"bytes": buf.getvalue(), "path": None}).size == (2, 3)
    with pytest.raises(InputError, match="missing"):
        load_image(None)
    with pytest.raises(InputError, match="decompression bomb"):
        load_image(Image.new("L", (200, 200)), max_pixels=100)


def test_exif_orientation_is_applied():
    from PIL import Image

    img = Image.new("RGB", (4, 2), (0, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).size == (2, 4)


def test_results_json_is_valid_json(tmp_path, docvqa_dir):
    evaluate("docvqa", "tiny", [f"task.dataset.path={docvqa_dir}", f"output_dir={tmp_path}", "limit=2",
                                "model.backend=fake", "runner.progress=false"])  # fmt: skip
    json.loads((tmp_path / "results.json").read_text())


def test_bad_rows_and_model_errors_give_the_same_records_pipelined_as_sequential(tmp_path, corrupt_docvqa):
    """The build pool (the default on an accelerator) meets corrupt rows and a failing batch exactly
    as the sequential runner does: the same records, error texts included, in the same order."""
    path, cols = corrupt_docvqa
    base = [f"task.dataset.path={path}", "runner.progress=false", "batch_size=2", "runner.max_error_rate=1",
            "runner.cache=false", "model.backend=fake", "+model.mode=constant", "+model.answer=42",
            f"+model.fail_ids=[{cols['questionId'][8]}]"]  # fmt: skip
    modes = {
        "sequential": ["runner.workers=0", "runner.prefetch_batches=0"],
        "pipelined": ["runner.workers=3", "runner.prefetch_batches=2", "runner.window_batches=1"],
    }
    seen = {}
    for name, extra in modes.items():
        out = tmp_path / name
        with pytest.warns(UserWarning, match="7 of 12 samples had errors"):
            results = evaluate("docvqa", "tiny", [*base, *extra, f"output_dir={out}"])
        assert results["timing"]["pipeline"]["workers"] == (3 if name == "pipelined" else 0)
        seen[name] = [
            (r["id"], r["prediction"], r["error_type"], r["error"], r["scores"])
            for r in read_samples(out / "samples" / "docvqa.jsonl")
        ]
    assert seen["pipelined"] == seen["sequential"]
    errors = {e for _, _, kind, e, _ in seen["sequential"] if kind == "input"}
    assert not any(" at 0x" in e for e in errors), errors  # no memory address: the same text every run


def test_stable_message_drops_memory_addresses() -> None:
    from evalkit.errors import stable_message

    assert (
        stable_message("cannot identify image file <_io.BytesIO object at 0x7f3f50f7b100>")
        == "cannot identify image file <_io.BytesIO object>"
    )
    assert (
        stable_message("0x10 is a number, <not an object repr>") == "0x10 is a number, <not an object repr>"
    )


def test_an_image_the_processor_refuses_is_an_input_error_and_not_retried(tmp_path, tiny_model_dir):
    """A 1 x 3000 strip: the hf processor refuses its aspect ratio in every batch; the sample is an
    input error (not a model error a rerun would try again), its batch's other samples answer."""
    from PIL import Image

    cols = make_docvqa_rows(4, seed=3)
    buf = io.BytesIO()
    Image.new("RGB", (1, 3000), (200, 10, 10)).save(buf, format="PNG")
    cols["image"][1] = {"bytes": buf.getvalue(), "path": None}
    path = tmp_path / "strip.parquet"
    Dataset.from_dict(cols, features=docvqa_features()).to_parquet(str(path))
    overrides = [f"task.dataset.path={path}", f"output_dir={tmp_path / 'out'}", "runner.progress=false",
                 "batch_size=4", "runner.max_error_rate=1", "runner.cache=false",
                 f"model.pretrained={tiny_model_dir}"]  # fmt: skip
    with pytest.warns(UserWarning, match="1 of 4 samples had errors"):
        results = evaluate("docvqa", "tiny", overrides)
    rows = {r["id"]: r for r in read_samples(tmp_path / "out" / "samples" / "docvqa.jsonl")}
    strip = rows[cols["questionId"][1]]
    assert strip["error_type"] == "input" and "aspect ratio" in strip["error"], strip["error"]
    assert all(r["error"] is None and r["prediction"] is not None for i, r in rows.items() if r is not strip)
    assert results["timing"]["n_generated"] == 3
    again = evaluate("docvqa", "tiny", overrides)
    assert again["timing"]["n_resumed"] == 4 and again["timing"]["n_generated"] == 0
