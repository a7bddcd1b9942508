"""MMMU validation and MMMU-Pro (standard, vision) on hub-schema fixtures.

* the official parsing rules on hand-written cases (bracketed / bare letters, option text in long
  answers, several candidates -> the last, MMMU-Pro's ``Answer:``; open answers with numbers,
  thousands separators and units, one-letter answers, list answers);
* interleaved ``<image k>`` placement and bad rows as error records;
* exact accuracies and discipline/subject breakdowns on a scripted backend, ``evalkit score``
  re-scoring, and one real CLI sweep of the three tasks on the tiny Qwen2-VL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalkit.plugins.mmmu import (
    DISCIPLINES,
    SUBJECTS,
    discipline_of,
    eval_open,
    parse_multi_choice_response,
    parse_open_response,
    seeded_choice,
    subject_of,
)

from evalkit.api import compose
from evalkit.errors import InputError, UsageError
from evalkit.tasks.registry import build_task
from evalkit.testing.mmmu import (
    PRO_STANDARD,
    MMMURow,
    mmmu_pro_standard_split,
    mmmu_pro_vision_split,
    write_mmmu_fixture,
    write_mmmu_pro_fixture,
)
from evalkit.types import ImagePart, TextPart
from tests.tasks.test_image_qa import _rows, run_fake

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")
OPTS4 = ["circle", "square", "triangle", "star"]


# --------------------------------------------------------------------------- multiple choice rules
@pytest.mark.parametrize(
    "response, expected",
    [
        ("B", "B"),
        ("(C)", "C"),
        ("The answer is (D).", "D"),
        ("B.", "B"),  # stripped of the trailing period, then " B "
        ("I pick B because", "B"),
        ("(A) or maybe (C)", "C"),  # several bracketed letters: the last one
        ("A is wrong, the right one is C", "C"),  # several bare letters: the last one
        ("The shape in the picture is clearly a triangle with three sides", "C"),  # option text, > 5 words
        ("triangle", None),  # option text but only one word: the official code guesses
        ("Definitely the answer E", None),  # not an option letter
        ("", None),
    ],
)
def test_mmmu_multiple_choice_parser(response, expected):
    assert parse_multi_choice_response(response, OPTS4, "mmmu") == expected


def test_parser_variants_differ_where_the_official_scripts_do():
    # MMMU needs " B " with spaces on both sides; lmms-eval also accepts "B." inside the text
    assert parse_multi_choice_response("Option B.Then", OPTS4, "mmmu") is None
    assert parse_multi_choice_response("Option B.Then", OPTS4, "lmms_eval") == "B"
    # MMMU-Pro reads the text after the last "Answer:" first (exactly one letter there)
    long = "Let me think. (A) is tempting but wrong.\nAnswer: C"
    assert parse_multi_choice_response(long, OPTS4, "mmmu_pro") == "C"
    assert parse_multi_choice_response(long, OPTS4, "mmmu") == "A"
    ten = [f"option {i}" for i in range(10)]
    assert parse_multi_choice_response("Answer: J", ten, "mmmu_pro") == "J"
    with pytest.raises(ValueError, match="unknown MMMU parser"):
        parse_multi_choice_response("A", OPTS4, "nope")


def test_unparsed_random_choice_is_reproducible_and_per_sample():
    letters = ["A", "B", "C", "D"]
    picks = [seeded_choice(letters, 42, f"validation_Art_{i}") for i in range(40)]
    assert picks == [seeded_choice(letters, 42, f"validation_Art_{i}") for i in range(40)]
    assert set(picks) == set(letters)  # not a constant
    assert picks != [seeded_choice(letters, 7, f"validation_Art_{i}") for i in range(40)]


# --------------------------------------------------------------------------- open questions
@pytest.mark.parametrize(
    "response, gold, correct",
    [
        ("12.5", "12.5", True),
        ("The area is 12.50 m^2", "12.5", True),  # number after "is", unit ignored
        ("It is 12.504", "12.5", True),  # rounded to 2 decimals: 12.5
        ("It is 12.56", "12.5", False),
        ("The total is 5,000 dollars", "5000", True),  # thousands separator
        ("x = 7", "7", True),  # "=" in the last sentence
        ("The speed is 3 m/s", "3 m/s", True),  # a textual gold answer must be a substring
        ("The speed is 3 km/s", "3 m/s", False),
        ("Therefore the charge is negative", "Negative", True),  # lower-cased
        ("The answer is b", "b", True),  # one letter: only as a whole word
        ("The answer is abc", "b", False),
        ("1.2e3", "1200", True),  # scientific notation
    ],
)
def test_mmmu_open_answers(response, gold, correct):
    assert eval_open([gold], parse_open_response(response)) is correct


def test_open_answer_parts_by_hand():
    # lower-cased before the sentence split, so only the newline splits; shortest tail per part;
    # numeric tails become floats ("4." -> 4.0), so no string remains
    assert parse_open_response("So it is 4.\nThe result is 5") == [4.0, 5.0]
    assert parse_open_response("The answer is 5 apples") == [5.0, "5 apples"]
    # no indicator word: the whole response (and its numbers)
    assert parse_open_response("forty two") == ["forty two"]


def test_subjects_and_disciplines():
    assert len(SUBJECTS) == 30 and len(DISCIPLINES) == 6
    assert subject_of("validation_Art_Theory_12") == "Art_Theory"
    assert discipline_of("Art Theory") == discipline_of("art_theory") == "Art and Design"
    assert discipline_of("Clinical_Medicine") == "Health and Medicine"


# --------------------------------------------------------------------------- fixtures
ART = [
    MMMURow("Which shape is shown in <image 1>?", "B", OPTS4),
    MMMURow(
        "Compare <image 1> and <image 2>: which is larger?",
        "A",
        ["first", "second", "same", "unknown"],
        images=(1, 2),
    ),  # fmt: skip
    MMMURow("What is the area of <image 1> in m^2?", "12.5", question_type="open"),
]
MATH = [
    MMMURow("Solve <image 2> given <image 1>.", "['6', '6.0']", question_type="open", images=(1, 2)),
    MMMURow(
        "Pick the option shown in <image 3>.",
        "C",
        ["<image 1>", "<image 2>", "<image 3>", "none"],
        images=(1, 2, 3),
    ),  # fmt: skip
]
BAD = MMMURow("A question about <image 4>.", "A", OPTS4, images=(1,))  # <image 4> is empty: input error


@pytest.fixture(scope="module")
def mmmu_data(tmp_path_factory) -> Path:
    return write_mmmu_fixture(
        tmp_path_factory.mktemp("mmmu"), {"Art": ART, "Math": MATH, "Clinical_Medicine": None}
    )


@pytest.fixture(scope="module")
def pro_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mmmu-pro")
    ten = [f"value {i}" for i in range(10)]
    cols, features = mmmu_pro_standard_split(
        [("Art_Theory", MMMURow("Which period is <image 1> from?", "J", ten)),
         ("Physics", MMMURow("Which law applies to <image 1>?", "B", ten[:6])),
         ("Finance", MMMURow("What is the rate in <image 1>?", "D", ten))]
    )  # fmt: skip
    write_mmmu_pro_fixture(root, PRO_STANDARD, cols, features)
    cols, features = mmmu_pro_vision_split([("History", ten, "E"), ("Math", ten[:4], "A")])
    write_mmmu_pro_fixture(root, "vision", cols, features)
    return root


def _task(name: str, data: Path, *overrides: str):
    t = build_task(compose(name, "tiny", [f"task.dataset.path={data}", *overrides])["task"])
    t.load()
    return t, t.samples()


def test_samples_metadata_and_subject_selection(mmmu_data):
    t, samples = _task("mmmu_val", mmmu_data)
    assert [s.id for s in samples][:3] == ["validation_Art_1", "validation_Art_2", "validation_Art_3"]
    assert t.protocol()["subjects"] == ["Art", "Math", "Clinical_Medicine"]  # SUBJECTS order
    assert samples[0].metadata == {"question_type": "multiple-choice", "subject": "Art",
                                   "discipline": "Art and Design", "difficulty": "Easy"}  # fmt: skip
    t2, samples2 = _task("mmmu_val", mmmu_data, "task.dataset.subjects=[Math]")
    assert {s.metadata["subject"] for s in samples2} == {"Math"} and len(samples2) == 2
    with pytest.raises(UsageError, match="unknown MMMU subject"):
        _task("mmmu_val", mmmu_data, "task.dataset.subjects=[Alchemy]")


def test_combined_copy_with_every_subject_in_one_config(tmp_path):
    from evalkit.testing.image_qa import write_split
    from evalkit.testing.mmmu import mmmu_subject_split

    art, features = mmmu_subject_split("Art", ART)
    math_cols, _ = mmmu_subject_split("Math", MATH)
    cols = {k: art[k] + math_cols[k] for k in art}
    write_split(tmp_path / "data" / "validation-00000-of-00001.parquet", cols, features)
    t, samples = _task("mmmu_val", tmp_path, "task.dataset.subjects=combined")
    assert len(samples) == 5 and {s.metadata["subject"] for s in samples} == {"Art", "Math"}
    assert [type(p).__name__ for p in t.build_request(samples[1]).messages[0].content].count("ImagePart") == 2


def test_images_are_interleaved_where_the_tags_are(mmmu_data):
    t, samples = _task("mmmu_val", mmmu_data)
    by_id = {s.id: s for s in samples}
    parts = t.build_request(by_id["validation_Art_2"]).messages[0].content
    assert [type(p).__name__ for p in parts] == ["TextPart", "ImagePart", "TextPart", "ImagePart", "TextPart"]
    assert parts[0].text == "Compare " and parts[2].text == " and "
    assert parts[4].text.startswith(": which is larger?\nA. first\nB. second")
    assert parts[4].text.endswith("\n\nAnswer with the option's letter from the given choices directly.")
    # images referenced in the options are placed there too; the same image twice is placed twice
    req = t.build_request(by_id["validation_Math_2"])
    kinds = [type(p).__name__ for p in req.messages[0].content]
    assert kinds.count("ImagePart") == 4 and len(req.images) == 4
    assert req.images[0].tobytes() == req.images[3].tobytes()  # <image 3> in the question and option C
    # an image the text never names comes first
    first = t.build_request(by_id["validation_Math_1"]).messages[0].content
    assert isinstance(first[0], TextPart) and first[0].text == "Solve "
    # open questions use the open template
    open_req = t.build_request(by_id["validation_Art_3"])
    assert open_req.text.endswith("in m^2?\n\nAnswer the question using a single word or phrase.")


def test_unreferenced_image_goes_first_and_missing_image_is_an_input_error(tmp_path):
    data = write_mmmu_fixture(
        tmp_path, {"Art": [MMMURow("Which colour dominates?", "A", OPTS4, images=(1,)), BAD]}
    )
    t, samples = _task("mmmu_val", data)
    parts = t.build_request(samples[0]).messages[0].content
    assert isinstance(parts[0], ImagePart) and isinstance(parts[1], TextPart)
    with pytest.raises(InputError, match="<image 4> but 'image_4' is empty"):
        t.build_request(samples[1])


# --------------------------------------------------------------------------- scores by hand
def test_accuracy_breakdowns_and_unparsed_by_hand(tmp_path, mmmu_data):
    answers = {
        "validation_Art_1": "The answer is (B).",  # right
        "validation_Art_2": "B",  # wrong
        "validation_Art_3": "The area is 12.50 m^2.",  # right (open)
        "validation_Math_1": "x = 6",  # right: gold list ['6', '6.0']
        "validation_Math_2": "It must be the third one: C",  # right
        "validation_Clinical_Medicine_1": "Z",  # unparsed -> seeded random letter
        "validation_Clinical_Medicine_2": "A",  # right
        "validation_Clinical_Medicine_3": "It is 13",  # wrong
    }
    results = run_fake(tmp_path, "mmmu_val", mmmu_data, answers, "task.unparsed_choice=wrong")
    t = results["tasks"]["mmmu_val"]
    assert t["n_samples"] == 8 and t["n_errors"] == 0
    assert t["metrics"]["accuracy"] == pytest.approx(5 / 8)
    assert t["counts"]["unparsed"] == 1
    assert t["breakdowns"]["discipline"]["Art and Design"] == {"accuracy": pytest.approx(2 / 3), "n": 3}
    assert t["breakdowns"]["discipline"]["Science"] == {"accuracy": 1.0, "n": 2}
    assert t["breakdowns"]["subject"]["Clinical_Medicine"] == {"accuracy": pytest.approx(1 / 3), "n": 3}
    assert t["breakdowns"]["question_type"]["open"] == {"accuracy": pytest.approx(2 / 3), "n": 3}
    rows = {r["id"]: r for r in _rows(tmp_path / "out-mmmu_val" / "samples" / "mmmu_val.jsonl")}
    assert rows["validation_Clinical_Medicine_1"]["parse_source"] == "none"
    assert rows["validation_Art_1"]["parsed"] == "B"
    assert 12.5 in rows["validation_Art_3"]["parsed"]
    # the official random pick: reproducible, and right exactly when it hits the gold letter
    again = run_fake(tmp_path / "random", "mmmu_val", mmmu_data, answers)["tasks"]["mmmu_val"]
    guess = seeded_choice(["A", "B", "C", "D"], 42, "validation_Clinical_Medicine_1")
    assert again["metrics"]["accuracy"] == pytest.approx((5 + (guess == "B")) / 8)
    assert again["protocol"]["unparsed_choice"] == "random" and again["protocol"]["parser"] == "mmmu"


def test_mmmu_pro_standard_and_vision_by_hand(tmp_path, pro_data):
    std = run_fake(tmp_path / "s", "mmmu_pro_standard", pro_data,
                   {"test_Art_Theory_1": "Thinking (A) first...\nAnswer: J", "test_Physics_2": "Answer: B",
                    "test_Finance_3": "Answer: A or D"},  # two letters after "Answer:": falls back to the rules
                   "task.unparsed_choice=wrong")["tasks"]["mmmu_pro_standard"]  # fmt: skip
    # "A or D": rules see " A " and " D " (bare letters) -> the last: D -> right
    assert std["metrics"]["accuracy"] == 1.0 and std["protocol"]["parser"] == "mmmu_pro"
    assert set(std["breakdowns"]["discipline"]) == {"Art and Design", "Science", "Business"}
    vis = run_fake(tmp_path / "v", "mmmu_pro_vision", pro_data, {"test_History_1": "Answer: E", "test_Math_2": "B"},
                   "task.unparsed_choice=wrong")["tasks"]["mmmu_pro_vision"]  # fmt: skip
    assert vis["metrics"]["accuracy"] == 0.5
    t, samples = _task("mmmu_pro_vision", pro_data)
    req = t.build_request(samples[0])
    assert [type(p).__name__ for p in req.messages[0].content] == ["ImagePart", "TextPart"]
    assert req.text.startswith("Answer with the option letter from the given choices directly.")
    cot, _ = _task("mmmu_pro_vision", pro_data, "task.prompt=cot")
    assert cot.build_request(samples[0]).text.startswith(
        "Write out the multiple-choice question in the image"
    )
    assert cot.protocol()["generation"]["max_new_tokens"] == 2048


def test_vlmevalkit_preset_and_bad_config(mmmu_data):
    t, samples = _task("mmmu_val", mmmu_data, "task.prompt=vlmevalkit")
    text = t.build_request(samples[0]).text
    assert text.startswith("Which shape is shown in") is False and text.startswith("Question: Which shape")
    assert "Options:\nA. circle\nB. square" in text
    with pytest.raises(UsageError, match="parser must be one of"):
        _task("mmmu_val", mmmu_data, "task.parser=gpt")[0].protocol()


# --------------------------------------------------------------------------- re-scoring and CLI
def test_score_cli_rescores_an_edited_samples_file(tmp_path, mmmu_data, cli):
    answers = {f"validation_Art_{i}": "Z" for i in (1, 2, 3)}
    run_fake(
        tmp_path, "mmmu_val", mmmu_data, answers, "task.dataset.subjects=[Art]", "task.unparsed_choice=wrong"
    )
    samples_file = tmp_path / "out-mmmu_val" / "samples" / "mmmu_val.jsonl"
    rows = _rows(samples_file)
    rows[0]["prediction"] = "(B)"
    rows[2]["prediction"] = "The area is 12.5"
    samples_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = cli("score", "task=mmmu_val", f"samples={samples_file}", f"task.dataset.path={mmmu_data}",
               "task.dataset.subjects=[Art]", "task.unparsed_choice=wrong")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "out-mmmu_val" / "results.json").read_text())
    assert res["tasks"]["mmmu_val"]["metrics"]["accuracy"] == pytest.approx(2 / 3)


def _run_dir(root: Path) -> Path:
    """The folder holding results.json under a sweep's output_dir (the job folder itself or one below)."""
    return next(p.parent for p in sorted(root.rglob("results.json")))


def test_cli_sweep_on_tiny_model(tmp_path, mmmu_data, pro_data, tiny_model_dir, cli):
    roots = {"mmmu_val": mmmu_data, "mmmu_pro_standard": pro_data, "mmmu_pro_vision": pro_data}
    for name, root in roots.items():
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / name).symlink_to(root)
    proc = cli(
        "run", "-m", "task=mmmu_val,mmmu_pro_standard,mmmu_pro_vision", "model=hf",
        f"model.pretrained={tiny_model_dir}", "model.max_pixels=50176",
        f"task.dataset.path={tmp_path}/data/${{task.name}}", f"output_dir={tmp_path}/${{task.name}}",
        "batch_size=4", "task.generation.max_new_tokens=4", "runner.progress=false",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name, n, errors in (("mmmu_val", 8, 0), ("mmmu_pro_standard", 3, 0), ("mmmu_pro_vision", 2, 0)):
        run_dir = _run_dir(tmp_path / name)
        res = json.loads((run_dir / "results.json").read_text())["tasks"][name]
        assert res["n_samples"] == n and res["n_errors"] == errors, name
        rows = _rows(run_dir / "samples" / f"{name}.jsonl")
        scored = [r for r in rows if r["error"] is None]
        assert all(r["prompt"].count("<|image_pad|>") >= 1 for r in scored)
        assert res["metrics"]["accuracy"] == pytest.approx(
            sum(r["scores"]["accuracy"] for r in scored) / len(scored)
        )
        assert res["protocol"]["task_version"] == f"{name}-1"
    rows = _rows(_run_dir(tmp_path / "mmmu_val") / "samples" / "mmmu_val.jsonl")
    two = next(r for r in rows if r["id"] == "validation_Art_2")
    assert two["prompt"].count("<|vision_start|>") == 2  # both images of the interleaved question


def test_bad_open_template_is_a_usage_error(mmmu_data):
    with pytest.raises(UsageError, match="open-question template uses unknown field"):
        _task("mmmu_val", mmmu_data, "task.open_prompts.default='{question} {answer}'")
