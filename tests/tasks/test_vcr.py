"""VCR easy (English and Chinese) on hub-schema fixtures: exact match and Jaccard per covered span
as the VCR repository computes them (best n-gram by SequenceMatcher ratio, refusals score 0,
means over all spans), ``evalkit score`` re-scoring and a CLI sweep on the tiny Qwen2-VL."""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from pathlib import Path

import pytest
from evalkit.plugins.vcr import is_refusal, span_scores, tokenize

from evalkit.testing.vcr import EN_ROWS, ZH_ROWS, write_vcr_fixture
from tests.helpers.tiny_sweeps import sweep_on_tiny_model
from tests.tasks.test_image_qa import _rows, run_fake


def reference_span(span: str, prediction: str, language: str) -> tuple[float, float]:
    """An independent brute-force reading of the VCR rule (exact match, Jaccard)."""
    if any(w in prediction for w in ("I can't", "I cannot", "无法", "抱歉")) or "sorry" in prediction.lower():
        return 0.0, 0.0
    pt, st = tokenize(prediction, language), tokenize(span, language)
    join = " " if language == "en" else ""
    grams = [pt[i : i + len(st)] for i in range(len(pt) - len(st) + 1)]
    grams = [g for g in grams if set(g) & set(st)]
    if not grams:
        return 0.0, 0.0
    ratios = [SequenceMatcher(None, join.join(g), span).ratio() for g in grams]
    best = grams[ratios.index(max(ratios))]
    if max(ratios) == 0:
        return 0.0, 0.0
    return float(best == st), len(set(best) & set(st)) / len(set(best) | set(st))


def test_tokenizers():
    assert tokenize("The World's Fair, 1889.", "en") == ["The", "World", "'s", "Fair", ",", "1889", "."]
    assert tokenize("I don't know 1,250.5 well-known", "en") == [
        "I", "do", "n't", "know", "1,250.5", "well", "-", "known"
    ]  # fmt: skip
    assert tokenize("北京是首都。Beijing", "zh") == ["北", "京", "是", "首", "都", "。", "Beijing"]


@pytest.mark.parametrize(
    "span, prediction, language, em, jaccard",
    [
        ("brown fox", "The quick brown fox jumps", "en", 1.0, 1.0),
        (
            "lazy dog",
            "over the lazy cat",
            "en",
            0.0,
            1 / 3,
        ),  # best 2-gram "lazy cat": {lazy} / {lazy, dog, cat}
        ("lazy dog", "a dog that is lazy", "en", 0.0, 1 / 3),  # "a dog" / "is lazy" tie on ratio: first wins
        ("brown fox", "Sorry, I see a brown fox", "en", 0.0, 0.0),  # refusal filter
        ("brown fox", "nothing here", "en", 0.0, 0.0),  # no n-gram shares a token
        ("首都", "北京是中国的首都", "zh", 1.0, 1.0),
        ("最长的河流", "长江是亚洲最长河流", "zh", 0.0, 4 / 6),  # best 5-gram "洲最长河流": 4 shared, union 6
        ("首都", "我无法回答", "zh", 0.0, 0.0),
    ],
)
def test_span_scores_by_hand(span, prediction, language, em, jaccard):
    got = span_scores(span, prediction, language)
    assert got["exact_match"] == em and got["jaccard"] == pytest.approx(jaccard)
    assert reference_span(span, prediction, language) == (em, pytest.approx(jaccard))


def test_refusal_filter():
    assert is_refusal("I cannot read it") and is_refusal("SORRY") and is_refusal("抱歉")
    assert not is_refusal("I can read it: brown fox")


@pytest.fixture(scope="module")
def en_data(tmp_path_factory) -> Path:
    return write_vcr_fixture(tmp_path_factory.mktemp("vcr-en"), "en")


@pytest.fixture(scope="module")
def zh_data(tmp_path_factory) -> Path:
    return write_vcr_fixture(tmp_path_factory.mktemp("vcr-zh"), "zh")


def test_means_are_over_all_spans_not_images(tmp_path, en_data):
    answers = {"0": "the quick brown fox and a lazy dog", "1": "I cannot tell", "2": "completed in 1889 for"}
    t = run_fake(tmp_path, "vcr_en_easy", en_data, answers)["tasks"]["vcr_en_easy"]
    spans = [(s, answers[str(i)]) for i, (_, ss) in enumerate(EN_ROWS) for s in ss]
    ref = [reference_span(s, p, "en") for s, p in spans]
    assert t["counts"]["spans"] == 5
    assert t["metrics"]["exact_match"] == pytest.approx(sum(r[0] for r in ref) / 5) == pytest.approx(3 / 5)
    assert t["metrics"]["jaccard"] == pytest.approx(sum(r[1] for r in ref) / 5)
    # a per-image mean would differ: (2/2 + 0/1 + 1/2) / 3
    assert t["metrics"]["exact_match"] != pytest.approx((1 + 0 + 0.5) / 3)
    assert t["protocol"]["language"] == "en" and t["protocol"]["tokenizer"] in ("regex", "spacy")


def test_chinese_by_hand(tmp_path, zh_data):
    answers = {"0": "北京是中华人民共和国的首都。", "1": "长江是亚洲最长河流"}
    t = run_fake(tmp_path, "vcr_zh_easy", zh_data, answers)["tasks"]["vcr_zh_easy"]
    spans = [(s, answers[str(i)]) for i, (_, ss) in enumerate(ZH_ROWS) for s in ss]
    ref = [reference_span(s, p, "zh") for s, p in spans]
    assert t["metrics"]["exact_match"] == pytest.approx(2 / 3)
    assert t["metrics"]["jaccard"] == pytest.approx(sum(r[1] for r in ref) / 3)


def test_score_cli_and_sweep_on_tiny_model(tmp_path, en_data, zh_data, tiny_model_dir, cli):
    run_dirs = sweep_on_tiny_model(
        cli,
        tmp_path,
        tiny_model_dir,
        {"vcr_en_easy": en_data, "vcr_zh_easy": zh_data},
        "batch_size=3",
        "task.generation.max_new_tokens=6",
    )
    for name, lang, n_spans in (("vcr_en_easy", "en", 5), ("vcr_zh_easy", "zh", 3)):
        run_dir = run_dirs[name]
        t = json.loads((run_dir / "results.json").read_text())["tasks"][name]
        rows = _rows(run_dir / "samples" / f"{name}.jsonl")
        assert t["n_errors"] == 0 and t["counts"]["spans"] == n_spans
        ref = [reference_span(s, r["prediction"], lang) for r in rows for s in r["target"]]
        assert t["metrics"]["jaccard"] == pytest.approx(sum(x[1] for x in ref) / n_spans)
        assert all(r["prompt"].count("<|image_pad|>") >= 1 for r in rows)
    # re-score an edited English file: the first image's spans restored exactly
    run_dir = run_dirs["vcr_en_easy"]
    samples_file = run_dir / "samples" / "vcr_en_easy.jsonl"
    rows = _rows(samples_file)
    for r, text in zip(rows, ["brown fox lazy dog", "nothing", "nothing"], strict=True):
        r["prediction"] = text
    samples_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    proc = cli("score", "task=vcr_en_easy", f"samples={samples_file}", f"task.dataset.path={en_data}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    t = json.loads((run_dir / "results.json").read_text())["tasks"]["vcr_en_easy"]
    assert t["metrics"]["exact_match"] == pytest.approx(2 / 5)
