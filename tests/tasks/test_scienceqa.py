"""ScienceQA-IMG: the likelihood task (kind=choice_logprobs) and the generative variant end to end
on a hub-schema fixture with the tiny model; resume and cache of likelihood records; the Qwen-VL
prompt and candidates; lmms-eval's letter rule; refusal by a backend without log-probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalkit.plugins.scienceqa import ScienceQATask, lmms_eval_sqa_letter

from evalkit.testing.scienceqa import write_scienceqa_fixture
from evalkit.types import Sample
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli


@pytest.fixture(scope="module")
def sqa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scienceqa_fixture(tmp_path_factory.mktemp("scienceqa"), n_rows=6, seed=1, bad=True)


def _table(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(root / "ScienceQA-IMG" / "test-00000-of-00001.parquet").to_pylist()


def _task(sqa_dir: Path, **overrides) -> ScienceQATask:
    import yaml

    cfg = yaml.safe_load(Path("configs/task/scienceqa_img.yaml").read_text())
    cfg["dataset"]["path"] = str(sqa_dir)
    cfg.update(overrides)
    task = ScienceQATask(cfg)
    task.load()
    return task


def test_likelihood_run_end_to_end_resume_and_cache(sqa_dir, tmp_path):
    args = ("task=scienceqa_img", "model=tiny", f"task.dataset.path={sqa_dir}", "runner.max_error_rate=1")
    out = tmp_path / "run"
    proc = run_cli("run", *args, f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _table(sqa_dir)
    records = {r["id"]: r for r in read_samples(out / "samples" / "scienceqa_img.jsonl")}
    assert len(records) == len(rows) == 9
    errors = {k: r["error"] for k, r in records.items() if r["error"]}
    assert set(errors) == {"6", "7", "8"}  # corrupt image, answer index 7, one choice
    assert all(records[k]["error_type"] == "input" for k in errors)
    correct = []
    for i, row in enumerate(rows[:6]):
        rec = records[str(i)]
        letters = [chr(65 + k) for k in range(len(row["choices"]))]
        assert [c["candidate"] for c in rec["logprobs"]] == letters
        best = max(rec["logprobs"], key=lambda c: c["mean"])["candidate"]
        assert rec["prediction"] == best == rec["extracted"]
        assert all(c["n_tokens"] >= 1 and c["sum"] < 0 for c in rec["logprobs"])
        correct.append(1.0 if best == letters[row["answer"]] else 0.0)
        assert rec["scores"]["accuracy"] == correct[-1]
    results = json.loads((out / "results.json").read_text())
    task = results["tasks"]["scienceqa_img"]
    assert task["metrics"]["accuracy"] == pytest.approx(sum(correct) / len(correct))
    assert task["protocol"]["request_kind"] == "choice_logprobs"
    assert set(task["breakdowns"]) >= {"subject", "grade", "category"}

    again = run_cli("run", *args, f"output_dir={out}")  # resume: nothing left to do
    assert again.returncode == 0, again.stderr[-2000:]
    timing = json.loads((out / "results.json").read_text())["timing"]
    assert timing["n_generated"] == 0 and timing["model_loaded"] is False

    fresh = tmp_path / "fresh"  # a new output folder: every likelihood response from the cache
    cached = run_cli("run", *args, f"output_dir={fresh}")
    assert cached.returncode == 0, cached.stderr[-2000:]
    timing = json.loads((fresh / "results.json").read_text())["timing"]
    assert timing["n_cached"] == 6 and timing["n_generated"] == 0 and timing["model_loaded"] is False
    for rec in read_samples(fresh / "samples" / "scienceqa_img.jsonl"):
        if rec["error"] is None:
            assert rec["cached"] is True
            assert rec["logprobs"] == records[rec["id"]]["logprobs"]
            assert rec["prediction"] == records[rec["id"]]["prediction"]

    other = tmp_path / "other"  # other candidates = another cache key: scored afresh
    proc = run_cli("run", *args, f"output_dir={other}", "task.candidate_template='({letter})'")
    assert proc.returncode == 0, proc.stderr[-2000:]
    timing = json.loads((other / "results.json").read_text())["timing"]
    assert timing["n_cached"] == 0 and timing["n_generated"] == 6


def test_generative_variant_end_to_end(sqa_dir, tmp_path):
    out = tmp_path / "gen"
    proc = run_cli("run", "task=scienceqa_img_gen", "model=tiny", f"task.dataset.path={sqa_dir}",
                   "runner.max_error_rate=1", f"output_dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _table(sqa_dir)
    for rec in read_samples(out / "samples" / "scienceqa_img_gen.jsonl"):
        if rec["error"]:
            continue
        assert "logprobs" not in rec
        row = rows[int(rec["id"])]
        gold = chr(65 + row["answer"])
        pred = rec["prediction"].strip()
        expected = pred == gold or (
            len(pred) >= 2 and pred[0].isupper() and pred[1] == "." and pred[0] == gold
        )
        assert rec["scores"]["accuracy"] == float(expected)
        assert "Answer with the option's letter from the given choices directly." in rec["prompt"]


def test_prompts_and_candidates(sqa_dir):
    rows = _table(sqa_dir)
    qwen = _task(sqa_dir, prompt="qwen_vl")
    sample = next(s for s in qwen.samples() if s.id == "0")  # row 0 has no hint
    req = qwen.build_request(sample)
    opts = "\n".join(f"{chr(65 + k)}. {c}" for k, c in enumerate(rows[0]["choices"]))
    assert req.text == f"Context: N/A\nQuestion: {rows[0]['question']}\nOptions: {opts}\nAnswer:"
    assert req.kind == "choice_logprobs"
    assert req.candidates == tuple(f" {chr(65 + k)}" for k in range(len(rows[0]["choices"])))
    assert len(req.images) == 1 and req.messages[0].content[0].type == "image"
    default = _task(sqa_dir)
    req1 = default.build_request(next(s for s in default.samples() if s.id == "1"))  # with a hint
    opts1 = "\n".join(f"{chr(65 + k)}. {c}" for k, c in enumerate(rows[1]["choices"]))
    assert req1.text == (
        f"Context: {rows[1]['hint']}\n{rows[1]['question']}\n{opts1}\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert req1.candidates == tuple(chr(65 + k) for k in range(len(rows[1]["choices"])))
    gen = _task(sqa_dir, mode="generate")
    assert gen.build_request(gen.samples()[0]).kind == "generate"
    # scoring reads a likelihood prediction back as its letter
    assert qwen.score(sample, f" {chr(65 + rows[0]['answer'])}") == {"accuracy": 1.0}
    assert qwen.score(sample, "nonsense") == {"accuracy": 0.0}


@pytest.mark.parametrize(
    ("prediction", "gold", "letter"),
    [
        ("A", "A", "A"),
        ("B. a cat", "B", "B"),
        ("The answer is A", "A", None),
        ("b.", "B", None),
        ("C", "A", "C"),
    ],
)
def test_lmms_eval_letter_rule(prediction, gold, letter):
    assert lmms_eval_sqa_letter(prediction, ("A", "B", "C", "D")) == letter


def test_unknown_mode_is_a_usage_error(sqa_dir):
    from evalkit.errors import UsageError

    with pytest.raises(UsageError, match="mode must be one of"):
        _task(sqa_dir, mode="ppl")


def test_api_backend_refuses_likelihood_before_any_request(sqa_dir, tmp_path):
    proc = run_cli("run", "task=scienceqa_img", "model=openai", "model.name=m", "model.base_url=http://127.0.0.1:9/v1",
                   "model.api_key_env=null", "model.health_check=false", f"task.dataset.path={sqa_dir}",
                   f"output_dir={tmp_path / 'api'}")  # fmt: skip
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(lines) == 1 and "does not support likelihood-ranked choices" in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "api" / "samples" / "scienceqa_img.jsonl").exists() or all(
        r["error_type"] == "input" for r in read_samples(tmp_path / "api" / "samples" / "scienceqa_img.jsonl")
    )


def test_samples_carry_metadata(sqa_dir):
    task = _task(sqa_dir)
    s: Sample = task.samples()[0]
    assert s.id == "0" and set(s.metadata) == {"subject", "grade", "category"}


def test_two_ranks_give_the_single_process_records(sqa_dir, tmp_path):
    common = ("task=scienceqa_img", "model=tiny", f"task.dataset.path={sqa_dir}", "runner.max_error_rate=1",
              "runner.cache=false")  # fmt: skip
    single, sharded = tmp_path / "one", tmp_path / "two"
    assert run_cli("run", *common, f"output_dir={single}").returncode == 0
    proc = run_cli("run", *common, "runner=multigpu", "runner.nproc=2", f"output_dir={sharded}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    one = {r["id"]: r for r in read_samples(single / "samples" / "scienceqa_img.jsonl")}
    two = {r["id"]: r for r in read_samples(sharded / "samples" / "scienceqa_img.jsonl")}
    assert set(one) == set(two)
    for key, rec in one.items():
        assert two[key]["prediction"] == rec["prediction"] and two[key]["error_type"] == rec["error_type"]
        for a, b in zip(rec.get("logprobs") or [], two[key].get("logprobs") or [], strict=True):
            assert a["candidate"] == b["candidate"] and a["sum"] == pytest.approx(b["sum"], abs=1e-4)
