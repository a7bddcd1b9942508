"""MathVista testmini and MATH-Vision on hub-schema fixtures.

* MathVista: the official direct-extraction steps, evalkit's deterministic extractor, the official
  normalisation by answer type / precision (letter -> option text, most similar option, int,
  rounded float, list); LLM extraction through the judge (only for answers the direct steps cannot
  read; cached; judge recorded); refusing ``extractor=judge`` without a judge; per task/skill
  breakdowns;
* MATH-Vision: the official extraction (trailing letters, "the answer is", the last ``\\boxed{}``,
  MATH normalisation) and matching (letter or option text, numeric equality);
* ``evalkit score`` re-scoring and one CLI sweep of both tasks on the tiny Qwen2-VL.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from evalkit.plugins.math_reasoning import (
    direct_extract,
    edit_distance,
    find_math_answer,
    math_value,
    mathvision_extract,
    mathvision_is_equal,
    mathvista_format_prompt,
    normalize_extracted_answer,
    rule_extract,
    safe_arithmetic,
)

from evalkit.errors import UsageError
from evalkit.testing.math_reasoning import (
    DEFAULT_MATHVISION,
    DEFAULT_MATHVISTA,
    write_mathvision_fixture,
    write_mathvista_fixture,
)
from tests.helpers.fake_chat_server import FakeChatServer
from tests.helpers.tiny_sweeps import sweep_on_tiny_model
from tests.tasks.test_image_qa import _rows, run_fake

CHOICES = ["circle", "square", "triangle"]


# --------------------------------------------------------------------------- MathVista rules
def test_direct_extraction_is_the_official_first_step():
    assert direct_extract("square", CHOICES, "multi_choice", "text") == "square"
    assert direct_extract("B", CHOICES, "multi_choice", "text") is None  # a letter is not a choice text
    assert direct_extract("7", None, "free_form", "integer") == "7"
    assert direct_extract("7.0", None, "free_form", "integer") is None  # int("7.0") fails
    assert direct_extract("2.50", None, "free_form", "float") == "2.5"
    assert direct_extract("", None, "free_form", "float") == ""


@pytest.mark.parametrize(
    "response, choices, qtype, atype, extracted",
    [
        ("The answer is B.", CHOICES, "multi_choice", "text", "B"),
        ("(C) triangle", CHOICES, "multi_choice", "text", "C"),
        ("It looks like a squre", CHOICES, "multi_choice", "text", "It looks like a squre"),
        ('The answer is "square".', CHOICES, "multi_choice", "text", "square"),
        ("There are 3 red and 4 blue, so the answer is 7 balls.", None, "free_form", "integer", "7"),
        ("Answer: 1,250", None, "free_form", "integer", "1250"),
        ("The side is about 2.46 cm long", None, "free_form", "float", "2.46"),
        ("So the values are [1, 2] and then [3]", None, "free_form", "list", "[3]"),
        ("The final answer is [0.5, 1.5]", None, "free_form", "list", "[0.5, 1.5]"),
    ],
)
def test_rule_extraction(response, choices, qtype, atype, extracted):
    assert rule_extract(response, choices, qtype, atype) == extracted


@pytest.mark.parametrize(
    "extraction, choices, qtype, atype, precision, normalised",
    [
        ("B", CHOICES, "multi_choice", "text", None, "square"),
        ("(C) something", CHOICES, "multi_choice", "text", None, "triangle"),  # "(C)" found first
        ("squre", CHOICES, "multi_choice", "text", None, "square"),  # most similar option (Levenshtein)
        ("D", CHOICES, "multi_choice", "text", None, "circle"),  # not a letter of 3 options: most similar
        ("7.0", None, "free_form", "integer", None, "7"),
        ("seven", None, "free_form", "integer", None, None),
        ("2.46", None, "free_form", "float", 1, "2.5"),
        ("2.44", None, "free_form", "float", 1, "2.4"),
        ("3.14159", None, "free_form", "float", 2, "3.14"),
        ("[1, 2]", None, "free_form", "list", None, "[1, 2]"),
    ],
)
def test_official_normalisation(extraction, choices, qtype, atype, precision, normalised):
    assert normalize_extracted_answer(extraction, choices, qtype, atype, precision) == normalised


def test_levenshtein_by_hand():
    assert (
        edit_distance("kitten", "sitting") == 3
        and edit_distance("", "abc") == 3
        and edit_distance("a", "a") == 0
    )


def test_format_prompt_is_lmms_evals():
    assert mathvista_format_prompt("Which shape?", CHOICES, None, "multi_choice", "text", None) == (
        "Which shape?\nA. circle\nB. square\nC. triangle\nAnswer with the option's letter from the given choices directly."
    )
    assert mathvista_format_prompt("How long?", None, "cm", "free_form", "float", 2) == (
        "How long? (Unit: cm)\nAnswer the question using a single floating-point number with two decimal places."
    )


# --------------------------------------------------------------------------- MathVista runs
# the fixture's default problems, with a second "arithmetic reasoning" question (for the skill breakdown)
ROWS = [
    *DEFAULT_MATHVISTA[:2],
    replace(DEFAULT_MATHVISTA[2], skills=["geometry reasoning", "arithmetic reasoning"]),
    *DEFAULT_MATHVISTA[3:],
]
ANSWERS = {
    "1": "3",
    "2": "I would say the red one is the second shape",
    "3": "It is roughly 2.46 cm",
    "4": "1 and 2",
}


@pytest.fixture(scope="module")
def vista(tmp_path_factory) -> Path:
    return write_mathvista_fixture(tmp_path_factory.mktemp("mathvista"), ROWS)


def test_rule_extractor_is_the_default_and_recorded(tmp_path, vista):
    t = run_fake(tmp_path, "mathvista_testmini", vista, ANSWERS)["tasks"]["mathvista_testmini"]
    # 1: direct "3" right; 2: no letter, most similar option to the sentence -> wrong or right by
    # Levenshtein; 3: 2.46 -> round(., 1) = 2.5 right; 4: no list -> "1 and 2" != "[1, 2]" wrong
    sentence = ANSWERS["2"]
    nearest = min(CHOICES, key=lambda c: edit_distance(sentence, c))
    expected = (1 + (nearest == "square") + 1 + 0) / 4
    assert t["metrics"]["accuracy"] == pytest.approx(expected)
    assert t["protocol"]["extractor"] == "rule" and "deterministic" in t["protocol"]["extractor_note"]
    assert t["counts"] == {"extracted_direct": 1, "extracted_rule": 3, "extracted_llm": 0}
    assert t["breakdowns"]["skills"]["arithmetic reasoning"]["n"] == 2  # a question counts for each skill
    assert set(t["breakdowns"]["task"]) == {r.task for r in ROWS}
    rows = _rows(tmp_path / "out-mathvista_testmini" / "samples" / "mathvista_testmini.jsonl")
    assert [r["extraction_source"] for r in rows] == ["direct", "rule", "rule", "rule"]
    assert rows[2]["normalized"] == "2.5"


def _judge_reply(body: dict) -> str:
    text = body["messages"][-1]["content"]
    if "Model answer: I would say the red one is the second shape" in text:
        return "B"
    if "Model answer: 1 and 2" in text:
        return "[1, 2]"
    if "Model answer: It is roughly 2.46 cm" in text:
        return "2.46"
    return "ok"  # the health check


def test_llm_extraction_through_the_judge_is_cached(tmp_path, vista):
    with FakeChatServer(models=None, reply_fn=_judge_reply) as server:
        opts = ("judge=local", f"judge.base_url={server.url}")
        t = run_fake(tmp_path / "a", "mathvista_testmini", vista, ANSWERS, *opts)["tasks"][
            "mathvista_testmini"
        ]
        assert t["metrics"]["accuracy"] == 1.0
        assert t["protocol"]["extractor"] == "judge" and t["protocol"]["judge"]["model"] == "judge"
        assert t["counts"] == {"extracted_direct": 1, "extracted_rule": 0, "extracted_llm": 3}
        sent = [r for r in server.chat_requests() if "Model answer:" in str(r.body)]
        assert len(sent) == 3  # the direct answer "3" never goes to the judge
        again = run_fake(tmp_path / "b", "mathvista_testmini", vista, ANSWERS, *opts)["tasks"][
            "mathvista_testmini"
        ]
        assert again["metrics"] == t["metrics"]
        assert len([r for r in server.chat_requests() if "Model answer:" in str(r.body)]) == 3  # cache hits
        # forcing the rules keeps the judge out even when one is configured
        rules = run_fake(tmp_path / "c", "mathvista_testmini", vista, ANSWERS, *opts, "task.extractor=rule")
        assert rules["tasks"]["mathvista_testmini"]["protocol"]["extractor"] == "rule"


def test_judge_extractor_refuses_to_run_without_a_judge(tmp_path, vista):
    with pytest.raises(UsageError, match="extractor=judge needs an LLM judge"):
        run_fake(tmp_path, "mathvista_testmini", vista, ANSWERS, "task.extractor=judge")


# --------------------------------------------------------------------------- MATH-Vision rules
@pytest.mark.parametrize(
    "response, extracted",
    [
        ("The answer is C.", "c"),  # " C." at the end: the letter, lower-cased by the cleanup
        ("(B)\nbecause ...", "b"),
        ("So the final result is \\boxed{\\frac{3}{4}}.", "\\frac{3}{4}"),
        ("First \\boxed{2}, no wait, \\boxed{5}", "5"),  # the last box
        ("The area is 12.", "12"),
        ("x = 4 units", "4"),
        ("The answer is 0.5", "\\frac{1}{2}"),  # MATH normaliser: 0.5 -> \frac{1}{2}
        ("The answer is 3/4", "\\frac{3}{4}"),
        ("The answer is 30^\\circ", "30"),
    ],
)
def test_mathvision_extraction(response, extracted):
    assert mathvision_extract(response) == extracted


@pytest.mark.parametrize(
    "answer, gold, equal",
    [
        ("c", "C", True),
        ("\\frac{1}{2}", "0.5", True),
        ("\\frac{3}{4}", "\\frac{6}{8}", True),
        ("2\\sqrt{2}", "\\sqrt{8}", False),  # implicit products are outside the safe subset
        ("\\sqrt{8}", "2.8284271247", True),
        ("7", "7.0000001", True),
        ("7", "7.004", True),  # equal at 2 decimals (official round(., 2))
        ("7", "7.01", False),
        ("(1,\\frac{1}{2})", "(1,0.5)", True),  # tuples element by element
        ("(1,2)", "(1,3)", False),
        ("", "", False),
        ("__import__('os')", "0", False),  # never executed
    ],
)
def test_mathvision_is_equal(answer, gold, equal):
    assert mathvision_is_equal(answer, gold) is equal


def test_safe_arithmetic_only_evaluates_arithmetic():
    assert safe_arithmetic("2**3 + (1/4)") == pytest.approx(8.25)
    assert safe_arithmetic("pi") == pytest.approx(3.14159265)
    assert safe_arithmetic("open('x')") is None and safe_arithmetic("9**99999") is None
    assert math_value("\\frac{\\sqrt{4}}{2}") == pytest.approx(1.0)
    # as the official cleanup: "\text" is dropped but its braces stay
    assert find_math_answer("\\boxed{\\text{12 km}}") == "{12}"
    assert find_math_answer("so \\boxed{12} km") == "12"


MV_ROWS = DEFAULT_MATHVISION


@pytest.fixture(scope="module")
def vision(tmp_path_factory) -> Path:
    return write_mathvision_fixture(tmp_path_factory.mktemp("mathvision"), MV_ROWS)


def test_mathvision_scores_by_hand(tmp_path, vision):
    answers = {"1": "The answer is C.", "2": "There are \\boxed{6} dots", "3": "The ratio is 0.5", "4": "8"}
    t = run_fake(tmp_path, "mathvision", vision, answers)["tasks"]["mathvision"]
    # 1 right (letter); 2 wrong; 3 right (0.5 == 1/2); 4 right (the option text "8" of gold C)
    assert t["metrics"]["accuracy"] == pytest.approx(3 / 4)
    assert t["breakdowns"]["level"]["1"] == {"accuracy": 0.5, "n": 2}
    assert t["breakdowns"]["question_type"]["multiple_choice"] == {"accuracy": 1.0, "n": 2}
    rows = _rows(tmp_path / "out-mathvision" / "samples" / "mathvision.jsonl")
    assert [r["extracted"] for r in rows] == ["c", "6", "\\frac{1}{2}", "8"]


def test_mathvision_official_preset(tmp_path, vision):
    from evalkit.api import compose
    from evalkit.tasks.registry import build_task

    task = build_task(
        compose("mathvision", "tiny", [f"task.dataset.path={vision}", "task.prompt=official"])["task"]
    )
    task.load()
    samples = task.samples()
    instruction = task.config["instructions"]["multiple_choice"]
    assert instruction.startswith(
        'Please solve the problem step by step and put your answer in one "\\boxed{}".'
    )
    # options that are just the letters A-E are left out, as MATH-V's scripts do
    assert task.build_request(samples[0]).text == f"{instruction}\n{MV_ROWS[0][0]}\n"
    assert task.build_request(samples[3]).text == (
        f"{instruction}\n{MV_ROWS[3][0]}\n(A) 3\n(B) 5\n(C) 8\n(D) 2\n(E) 1\n"
    )
    assert task.protocol()["generation"]["max_new_tokens"] == 2048


# --------------------------------------------------------------------------- re-scoring and CLI
def test_score_cli_and_sweep_on_tiny_model(tmp_path, vista, vision, tiny_model_dir, cli):
    run_dirs = sweep_on_tiny_model(
        cli,
        tmp_path,
        tiny_model_dir,
        {"mathvista_testmini": vista, "mathvision": vision},
        "batch_size=4",
        "task.generation.max_new_tokens=4",
    )
    for name in ("mathvista_testmini", "mathvision"):
        run_dir = run_dirs[name]
        t = json.loads((run_dir / "results.json").read_text())["tasks"][name]
        rows = _rows(run_dir / "samples" / f"{name}.jsonl")
        assert t["n_samples"] == 4 and t["n_errors"] == 0
        assert t["metrics"]["accuracy"] == pytest.approx(sum(r["scores"]["accuracy"] for r in rows) / 4)
    run_dir = run_dirs["mathvista_testmini"]
    samples_file = run_dir / "samples" / "mathvista_testmini.jsonl"
    rows = _rows(samples_file)
    for r in rows:
        r["prediction"] = {"1": "3", "2": "B", "3": "2.5", "4": "[1, 2]"}[r["id"]]
    samples_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    proc = cli("score", "task=mathvista_testmini", f"samples={samples_file}", f"task.dataset.path={vista}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    t = json.loads((run_dir / "results.json").read_text())["tasks"]["mathvista_testmini"]
    assert t["metrics"]["accuracy"] == 1.0 and t["protocol"]["extractor"] == "rule"


def test_judge_cost_cap_stops_extraction_cleanly(tmp_path, vista):
    from evalkit.judge.client import JudgeCostLimitError

    with FakeChatServer(models=None, reply_fn=_judge_reply) as server:
        opts = ("judge=local", f"judge.base_url={server.url}", "judge.price_per_1k_input=1",
                "judge.price_per_1k_output=1", "judge.max_cost=0.0001")  # fmt: skip
        with pytest.raises(JudgeCostLimitError, match="max_cost"):
            run_fake(tmp_path, "mathvista_testmini", vista, ANSWERS, *opts)
        assert not [r for r in server.chat_requests() if "Model answer:" in str(r.body)]


def test_cli_refuses_judge_extraction_without_a_judge(tmp_path, vista, cli):
    proc = cli("run", "task=mathvista_testmini", "model=tiny", f"task.dataset.path={vista}",
               f"output_dir={tmp_path / 'out'}", "task.extractor=judge", "runner.progress=false")  # fmt: skip
    assert proc.returncode != 0
    assert (
        proc.stderr.strip().splitlines()[-1].startswith("evalkit: error:") and "Traceback" not in proc.stderr
    )
    assert "extractor=judge needs an LLM judge" in proc.stderr
    # refused before the model answered anything (not after a whole run, at scoring time)
    assert not list((tmp_path / "out").rglob("*.jsonl"))
