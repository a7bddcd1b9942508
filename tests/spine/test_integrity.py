"""Results integrity (issue 12): a run folder holds one evaluation, exit codes tell the truth,
bad values and misspelt keys are one line, hostile data stays per sample.

The CLI cases run the real ``evalkit`` command in a subprocess; the scripted ``fake`` backend
stands in for the model where only the harness is under test (the identity logic is the same for
every backend: it compares ``Model.identity_hash()``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.errors import UsageError
from evalkit.runner.store import read_jsonl_records
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli

FAKE = ("model=tiny", "model.backend=fake", "+model.mode=echo", "runner.progress=false")


def _docvqa(dataset: Path) -> tuple[str, ...]:
    return ("task=docvqa", f"task.dataset.path={dataset}")


def _one_line_error(proc) -> str:  # noqa: ANN001
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("evalkit: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


# ----------------------------------------------------------------------- resume = same evaluation
def test_prompt_change_in_same_folder_is_refused_and_resume_false_redoes(tmp_path, docvqa_dir):
    out = tmp_path / "run"
    first = run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=4", f"output_dir={out}")
    assert first.returncode == 0, first.stderr[-2000:]
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["identity"]["task"]["config"]["prompt"] == "default"
    for rec in read_jsonl_records(out / "parts" / "docvqa" / "rank-0.jsonl"):
        assert rec.fingerprint and rec.model_identity  # every record carries its identity

    second = run_cli(
        "run", *_docvqa(docvqa_dir), *FAKE, "limit=4", "task.prompt=qwen_vl", f"output_dir={out}"
    )
    line = _one_line_error(second)
    assert "task.prompt: default -> qwen_vl" in line and "runner.resume=false" in line
    # nothing was touched: results still describe the first run
    rows = read_samples(out / "samples" / "docvqa.jsonl")
    assert all("Answer the question using a single word" in r["prediction"] for r in rows)

    third = run_cli(
        "run", *_docvqa(docvqa_dir), *FAKE, "limit=4", "task.prompt=qwen_vl", "runner.resume=false",
        f"output_dir={out}",
    )  # fmt: skip
    assert third.returncode == 0, third.stderr[-2000:]
    rows = read_samples(out / "samples" / "docvqa.jsonl")
    assert all(r["prediction"].endswith("Answer:") for r in rows)
    results = json.loads((out / "results.json").read_text())
    assert results["timing"]["n_resumed"] == 0


@pytest.mark.parametrize(
    ("first", "second", "named"),
    [
        ((), ("task.generation.max_new_tokens=7",), "task.generation.max_new_tokens: 32 -> 7"),
        (("+model.answer=A",), ("+model.answer=B",), "model answer: A -> B"),
        (("limit=4",), ("limit=3",), "limit: 4 -> 3"),
    ],
)
def test_any_protocol_change_is_named(tmp_path, docvqa_dir, first, second, named):
    out = tmp_path / "run"
    base = (*_docvqa(docvqa_dir), "model=tiny", "model.backend=fake", "+model.mode=constant",
            "runner.progress=false", f"output_dir={out}")  # fmt: skip
    limit = () if any(a.startswith("limit=") for a in first) else ("limit=4",)
    proc = run_cli("run", *base, *limit, *first)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert named in _one_line_error(run_cli("run", *base, *limit, *second))


def test_pixel_budget_change_of_a_real_model_is_named(tmp_path, docvqa_dir):
    out = tmp_path / "run"
    base = (*_docvqa(docvqa_dir), "model=tiny", "limit=2", "runner.progress=false", f"output_dir={out}")
    assert run_cli("run", *base).returncode == 0
    line = _one_line_error(run_cli("run", *base, "model.max_pixels=40000"))
    assert "model max_pixels: 50176 -> 40000" in line


def test_changed_dataset_version_is_detected(tmp_path):
    from evalkit.testing.docvqa import write_docvqa_hub_layout

    data = tmp_path / "data"
    write_docvqa_hub_layout(data, n_rows=8, seed=3)
    out = tmp_path / "run"
    assert run_cli("run", *_docvqa(data), *FAKE, "limit=4", f"output_dir={out}").returncode == 0
    shutil.rmtree(data)
    write_docvqa_hub_layout(data, n_rows=8, seed=4)  # a new version: other questions
    proc = run_cli("run", *_docvqa(data), *FAKE, "limit=4", f"output_dir={out}")
    assert "dataset.fingerprint" in _one_line_error(proc)


def test_default_output_dirs_differ_per_checkpoint_and_sweeps_split(tmp_path, docvqa_dir):
    base = ("model=hf", "model.backend=fake", "+model.mode=echo", "runner.progress=false", "limit=2")
    for ckpt in ("/ckpts/A", "/ckpts/B"):
        proc = run_cli("run", *_docvqa(docvqa_dir), *base, f"model.pretrained={ckpt}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    folders = sorted(p.name for p in (tmp_path / "outputs" / "docvqa").iterdir())
    assert len(folders) == 2 and folders[0].startswith("hf-A-") and folders[1].startswith("hf-B-")

    sweep = run_cli(
        "run", "-m", *_docvqa(docvqa_dir), *FAKE, "task.prompt=default,qwen_vl", "limit=3", cwd=tmp_path
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    tiny = sorted((tmp_path / "outputs" / "docvqa").glob("tiny-*"))
    assert len(tiny) == 2
    prompts = {json.loads((d / "run.json").read_text())["identity"]["task"]["config"]["prompt"] for d in tiny}
    assert prompts == {"default", "qwen_vl"}
    for d in tiny:
        results = json.loads((d / "results.json").read_text())
        assert results["tasks"]["docvqa"]["n_samples"] == 3 and results["timing"]["n_resumed"] == 0

    # an explicit output_dir in a sweep: one sub-folder per job
    sweep2 = run_cli(
        "run", "-m", *_docvqa(docvqa_dir), *FAKE, "task.prompt=default,qwen_vl", "limit=2",
        f"output_dir={tmp_path / 'sweep'}", cwd=tmp_path,
    )  # fmt: skip
    assert sweep2.returncode == 0, sweep2.stderr[-3000:]
    assert len(list((tmp_path / "sweep").glob("*/results.json"))) == 2


def test_stale_records_are_never_reused(tmp_path, docvqa_dir):
    """A record whose fingerprint or model identity differs from what this run would produce is
    redone, even when run.json was removed by hand."""
    out = tmp_path / "run"
    assert run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=4", f"output_dir={out}").returncode == 0
    part = out / "parts" / "docvqa" / "rank-0.jsonl"
    lines = part.read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    rows[0]["fingerprint"] = "0" * 64
    rows[0]["prediction"] = "STALE-FP"
    rows[1]["model_identity"] = "f" * 64
    rows[1]["prediction"] = "STALE-MODEL"
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "run.json").unlink()
    proc = run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=4", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    preds = [r["prediction"] for r in read_samples(out / "samples" / "docvqa.jsonl")]
    assert "STALE-FP" not in preds and "STALE-MODEL" not in preds
    results = json.loads((out / "results.json").read_text())
    assert results["timing"]["n_resumed"] == 2 and results["timing"]["n_stale_redone"] == 2


# ----------------------------------------------------------------------- exit codes
def test_all_error_run_exits_nonzero_with_results_marked(tmp_path, docvqa_dir):
    from evalkit.testing.docvqa import make_docvqa_rows

    ids = make_docvqa_rows(30, seed=3)["questionId"][:4]
    out = tmp_path / "run"
    proc = run_cli(
        "run", *_docvqa(docvqa_dir), "model=tiny", "model.backend=fake", "+model.mode=echo",
        f"+model.fail_ids=[{','.join(ids)}]", "limit=4", "runner.progress=false", "runner.cache=false",
        f"output_dir={out}",
    )  # fmt: skip
    line = _one_line_error(proc)
    assert proc.returncode == 1 and "every sample failed" in line
    assert "ERRORS: docvqa: 4 of 4" in proc.stderr
    task = json.loads((out / "results.json").read_text())["tasks"]["docvqa"]
    assert task["status"] == "incomplete" and task["n_errors"] == 4 and task["errors_by_type"] == {"model": 4}


def test_error_rate_over_threshold_exits_nonzero(tmp_path, docvqa_dir):
    from evalkit.testing.docvqa import make_docvqa_rows

    ids = make_docvqa_rows(30, seed=3)["questionId"][:10]
    args = (*_docvqa(docvqa_dir), "model=tiny", "model.backend=fake", "+model.mode=echo",
            f"+model.fail_ids=[{ids[2]},{ids[5]}]", "limit=10", "runner.progress=false",
            "runner.cache=false")  # fmt: skip
    proc = run_cli("run", *args, f"output_dir={tmp_path / 'a'}")
    line = _one_line_error(proc)
    assert "2 of 10 samples (20.0%)" in line and "runner.max_error_rate=0.05" in line
    task = json.loads((tmp_path / "a" / "results.json").read_text())["tasks"]["docvqa"]
    assert task["status"] == "incomplete" and task["metrics"]["anls"] is not None
    ok = run_cli("run", *args, "runner.max_error_rate=0.25", f"output_dir={tmp_path / 'b'}")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "ERRORS: docvqa: 2 of 10" in ok.stderr
    assert (
        json.loads((tmp_path / "b" / "results.json").read_text())["tasks"]["docvqa"]["status"] == "complete"
    )


# ----------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("batch_size=0", "batch_size=0 is not valid"),
        ("batch_size=-3", "batch_size=-3 is not valid"),
        ("limit=-1", "limit=-1 is not valid"),
        ("limit=0", "limit=0 is not valid"),
        ("limit=ten", "limit='ten' is not valid"),
        ("limt=5", "did you mean 'limit'"),
        ("+limt=5", "did you mean 'limit'"),
        ("task.promt=qwen_vl", "did you mean 'task.prompt'"),
        ("runner.max_error_rate=2", "runner.max_error_rate=2 is not valid"),
        ("runner.resum=false", "did you mean 'runner.resume'"),
        ("runner.generate_threads=0", "runner.generate_threads=0 is not valid"),
        ("task.generation.max_new_tokens=0", "task.generation.max_new_tokens=0 is not valid"),
    ],
)
def test_bad_values_and_keys_are_one_line_exit_2(tmp_path, arg, expected):
    proc = run_cli("run", "task=docvqa_mini", "model=tiny", arg, f"output_dir={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert expected in _one_line_error(proc)
    assert not (tmp_path / "o").exists()  # nothing loaded, nothing written


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("model.dtype=float8", "model.dtype='float8' is not valid: expected one of auto, bfloat16, float16"),
        # a key evalkit knows that this task's config leaves unset: the `+` that adds it, not a
        # "did you mean max_new_tokens"
        ("task.generation.temperature=0.7",
         "task.generation.temperature is not set by this task's config; add it with "
         "+task.generation.temperature=<value>"),
        ("+task.generation.temperature=-1", "task.generation.temperature=-1 is not valid"),
    ],
)  # fmt: skip
def test_dtype_and_unset_known_keys_are_one_line_exit_2(tmp_path, arg, expected):
    from tests.conftest import run_cli_here

    proc = run_cli_here("run", "task=docvqa_mini", "model=tiny", arg, f"output_dir={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert expected in _one_line_error(proc)
    assert not (tmp_path / "o").exists()


def test_python_api_raises_usage_error():
    from evalkit.api import evaluate

    for overrides in (["limt=5"], ["task.promt=x"], ["batch_size=0"], ["limit=ten"]):
        with pytest.raises(UsageError):
            evaluate("docvqa_mini", "tiny", overrides)


# ----------------------------------------------------------------------- one line for failures
def test_unwritable_output_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("run", "task=docvqa_mini", *FAKE, "limit=2", f"output_dir={blocker / 'sub'}")
    assert "not writable" in _one_line_error(proc)


def test_broken_cache_never_kills_a_run(tmp_path, docvqa_dir):
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "responses.sqlite").write_bytes(b"this is not a database" * 100)
    proc = run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=2", f"output_dir={tmp_path / 'a'}",
                   f"cache_dir={garbage}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "response cache" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert "cache_disabled" in results["timing"]

    # an unusable cache folder (a file stands where the folder should be)
    proc = run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=2", f"output_dir={tmp_path / 'b'}",
                   f"cache_dir={garbage / 'responses.sqlite' / 'x'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]

    # one corrupt row among good ones: skipped and counted, the sample regenerated
    good = tmp_path / "good"
    assert run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=2", f"output_dir={tmp_path / 'c'}",
                   f"cache_dir={good}").returncode == 0  # fmt: skip
    import sqlite3

    db = sqlite3.connect(good / "responses.sqlite")
    db.execute("UPDATE responses SET value = 'not json' WHERE rowid = (SELECT MIN(rowid) FROM responses)")
    db.commit()
    db.close()
    proc = run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=2", f"output_dir={tmp_path / 'd'}",
                   f"cache_dir={good}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    timing = json.loads((tmp_path / "d" / "results.json").read_text())["timing"]
    assert timing["cache_corrupt_rows"] == 1 and timing["n_cached"] == 1 and timing["n_generated"] == 1


def test_checkpoint_needing_custom_code_is_one_line(tmp_path, docvqa_dir):
    ckpt = tmp_path / "custom"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(
        json.dumps({"model_type": "my_custom_vlm", "auto_map": {"AutoConfig": "configuration_x.XConfig"}})
    )
    proc = run_cli("run", *_docvqa(docvqa_dir), "model=hf", f"model.pretrained={ckpt}", "model.device=cpu",
                   "limit=1", "runner.progress=false", "runner.cache=false",
                   f"output_dir={tmp_path / 'o'}")  # fmt: skip
    line = _one_line_error(proc)
    assert "custom" in line or "trust_remote_code" in line or "could not load" in line


def test_score_refuses_binary_and_deeply_nested_files(tmp_path):
    binary = tmp_path / "samples.jsonl"
    binary.write_bytes(bytes(range(256)) * 40)
    nested = tmp_path / "nested.jsonl"
    nested.write_text('{"id": "1", "prediction": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    for path in (binary, nested):
        proc = run_cli("score", "task=docvqa_mini", f"samples={path}", "format=evalkit",
                       f"output_dir={tmp_path / 'o'}")  # fmt: skip
        assert proc.returncode != 0
        _one_line_error(proc)


# ----------------------------------------------------------------------- hostile data
def test_undecodable_ids_and_answers_stay_per_sample(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from evalkit.testing.docvqa import make_docvqa_rows

    cols = make_docvqa_rows(6, seed=5)
    ids = [c.encode() for c in cols["questionId"]]
    ids[1] = b"\xff\xfe-bad"
    ids[2] = b"\xff\xfe-bad"  # two undecodable ids that would collide once escaped
    answers = [[a.encode() for a in ans] for ans in cols["answers"]]
    answers[3] = [b"\xff answer"]
    table = {k: v for k, v in cols.items() if k not in ("questionId", "answers", "image")}
    table["questionId"] = pa.array(ids, pa.binary()).view(pa.string())  # text column, invalid UTF-8
    flat = pa.array([a for ans in answers for a in ans], pa.binary()).view(pa.string())
    offsets = [0]
    for ans in answers:
        offsets.append(offsets[-1] + len(ans))
    table["answers"] = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat)
    table["image"] = pa.array(cols["image"], pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    path = tmp_path / "DocVQA" / "validation-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table(table), path)

    out = tmp_path / "run"
    proc = run_cli("run", "task=docvqa", f"task.dataset.path={tmp_path}", *FAKE, "runner.max_error_rate=1",
                   f"output_dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_samples(out / "samples" / "docvqa.jsonl")
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    bad = [r for r in rows if r["error"]]
    assert len(bad) == 3 and all(r["error_type"] == "input" for r in bad)
    assert sum("#row-" in r["id"] for r in bad) == 2
    assert any("not valid UTF-8" in r["error"] and "answers" in r["error"] for r in bad)


# ----------------------------------------------------------------------- score keeps, names, secrets
def test_score_keeps_fields_and_records_rescoring(tmp_path, docvqa_dir):
    out = tmp_path / "run"
    assert run_cli("run", *_docvqa(docvqa_dir), *FAKE, "limit=4", f"output_dir={out}").returncode == 0
    before = {r["id"]: r for r in read_samples(out / "samples" / "docvqa.jsonl")}
    proc = run_cli("score", str(out), "task.metric.threshold=0.9")
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = {r["id"]: r for r in read_samples(out / "samples" / "docvqa.jsonl")}
    assert set(after) == set(before)
    for sid, old in before.items():
        new = after[sid]
        for key in ("fingerprint", "model_identity", "usage", "thumbnail", "question", "prompt"):
            assert new.get(key) == old.get(key), key
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["task"]["dataset"]["path"] == str(docvqa_dir)  # the run's own dataset
    assert "task.metric.threshold=0.9" in results["config"]["rescored_by"]["overrides"]
    assert results["tasks"]["docvqa"]["n_samples"] == 4  # the run's limit, not the whole dataset


def test_thumbnail_names_never_collide():
    from evalkit.runner.store import thumbnail_relpath

    assert thumbnail_relpath("t", "a/b") != thumbnail_relpath("t", "a_b")
    assert len(thumbnail_relpath("t", "q" * 100_000).name) < 100


def test_csv_cells_are_formula_safe():
    from evalkit.report.formats import csv_safe

    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_safe("@SUM(A1)") == "'@SUM(A1)" and csv_safe("+x") == "'+x"
    assert csv_safe("-1.5") == "-1.5" and csv_safe("qwen2-vl") == "qwen2-vl"


def test_url_and_header_secrets_are_redacted_or_refused(tmp_path):
    from evalkit.redact import redact, redact_text, register_config_secrets

    cfg = {"model": {"base_url": "http://user:pw123456@127.0.0.1:9/v1?key=SEKRET-123&api-version=1",
                     "headers": {"Authorization": "Bearer tok-abcdefgh"}, "name": "x"}}  # fmt: skip
    clean = json.dumps(redact(cfg))
    assert "SEKRET-123" not in clean and "pw123456" not in clean and "tok-abcdefgh" not in clean
    assert "api-version=1" in clean
    register_config_secrets(cfg)
    assert "SEKRET-123" not in redact_text("POST failed: SEKRET-123")
    for arg in (
        "model.base_url=http://127.0.0.1:9/v1?key=SEKRET-123",
        "+model.headers={Authorization: Bearer x}",
    ):
        proc = run_cli("run", "task=docvqa_mini", "model=openai", arg, f"output_dir={tmp_path / 'o'}")
        line = _one_line_error(proc)
        assert "SEKRET-123" not in proc.stderr + proc.stdout and "command line" in line


# ----------------------------------------------------------------------- first contact (issue 17)
def test_help_version_and_grouped_list():
    top = run_cli("--help")
    assert top.returncode == 0 and "version" in top.stdout and "--debug" in top.stdout
    run_help = run_cli("run", "--help")
    assert run_help.returncode == 0 and "limit=<n>" in run_help.stdout and "Examples" in run_help.stdout
    assert "defaults" not in run_help.stdout and "_self_" not in run_help.stdout  # not Hydra's dump
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("evalkit ")
    listing = run_cli("list")
    assert listing.returncode == 0
    text = listing.stdout
    for header in ("[college-level problems]", "[mathematical reasoning]", "[documents, OCR and multilingual text]",
                   "[general visual question answering]", "[video understanding]", "[referring-expression grounding]",
                   "[zero-shot captioning]"):  # fmt: skip
        assert header in text, header
    docs = text.index("[documents"), text.index("[general visual")
    assert docs[0] < text.index(" docvqa ") < docs[1]
    assert text.index("[referring-expression grounding]") < text.index(" refcoco_val ")


def test_secrets_in_a_config_never_reach_the_files(tmp_path):
    """A base_url with a key in its query string and credential headers, set in a config file (not
    on the command line), are masked in config.yaml, run.json and results.json."""
    from evalkit.api import compose, run_from_config

    out = tmp_path / "run"
    cfg = compose("docvqa_mini", "tiny", ["model.backend=fake", "+model.mode=echo", "limit=2", f"output_dir={out}",
                                          "runner.progress=false"])  # fmt: skip
    cfg["model"]["base_url"] = "http://user:pa55word-x@127.0.0.1:9/v1?key=SEKRET-QUERY-1&api-version=2024"
    cfg["model"]["headers"] = {"X-Api-Key": "SEKRET-HEADER-2", "Authorization": "Bearer SEKRET-TOKEN-3"}
    run_from_config(cfg)
    for name in ("config.yaml", "run.json", "results.json"):
        text = (out / name).read_text()
        for secret in ("SEKRET-QUERY-1", "SEKRET-HEADER-2", "SEKRET-TOKEN-3", "pa55word-x"):
            assert secret not in text, (name, secret)
