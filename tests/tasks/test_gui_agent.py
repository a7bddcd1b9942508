"""GUI agents: ScreenSpot click accuracy and AITZ step TM/EM.

* action parsing and matching against hand-worked cases (boundaries of the x1.2 element
  enlargement, the 14% click distance, the 0.8 text ratio, empty text, wrong direction/button);
* an independent Levenshtein-ratio reference (plain edit-distance DP with substitution cost 2);
* both tasks end to end through the CLI on the tiny Qwen2-VL, bad inputs as error records;
* exact scores on a scripted backend, expected values computed by hand from the fixture.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from evalkit.plugins.gui_agent import aitz_gold, screenspot_platform

from evalkit.metrics.boxes import box_center, format_point
from evalkit.metrics.gui_actions import (
    GoldStep,
    UIAction,
    enlarge_box,
    levenshtein_ratio,
    match_action,
    parse_action,
)
from evalkit.testing.gui_agent import AITZ_ELEMENTS, AITZ_SCREEN, write_aitz_fixture, write_screenspot_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_runs import fake_run_per_task as run_fake  # outputs in tmp_path/out-<task>

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")

SCREEN = (1000, 2000)  # width, height


@pytest.fixture(scope="module")
def screenspot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_screenspot_fixture(tmp_path_factory.mktemp("screenspot"), bad_rows=True)


@pytest.fixture(scope="module")
def aitz(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_aitz_fixture(tmp_path_factory.mktemp("aitz"), bad=True)


def run_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, task: str, data: Path
) -> tuple[dict[str, Any], list[dict]]:
    """``evalkit run`` of ``task`` on ``data`` with the tiny Qwen2-VL on CPU (small images, 12 new
    tokens); the task's results and its sample records. The fixtures' bad rows are error records on
    purpose (``runner.max_error_rate=1``): the run must still exit 0."""
    out = tmp_path / "out"
    proc = run_cli(
        "run", f"task={task}", "model=hf", f"model.pretrained={tiny_model_dir}", "model.dtype=float32",
        "model.device=cpu", "model.min_pixels=3136", "model.max_pixels=12544", f"task.dataset.path={data}",
        f"output_dir={out}", "runner.progress=false", "runner.max_error_rate=1", "task.generation.max_new_tokens=12",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())["tasks"][task]
    return results, read_samples(out / "samples" / f"{task}.jsonl")


def rescore_edited(tmp_path: Path, task: str, data: Path, predictions: dict[str, str]) -> dict[str, Any]:
    """Edit the predictions of some samples (id -> new text) in the samples file of an earlier
    :func:`run_fake` of ``task``, re-score it with ``evalkit score`` and return the task's new
    results (written beside the samples)."""
    out = tmp_path / f"out-{task}"
    samples_file = out / "samples" / f"{task}.jsonl"
    lines = read_samples(samples_file)
    for s in lines:
        if s["id"] in predictions:
            s["prediction"] = predictions[s["id"]]
    samples_file.write_text("".join(json.dumps(s) + "\n" for s in lines))
    proc = run_cli(
        "score",
        f"task={task}",
        f"samples={samples_file}",
        f"task.dataset.path={data}",
        "runner.max_error_rate=1",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text())["tasks"][task]


# ------------------------------------------------------------------------------ action parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"action": "click", "point": [500, 250]}', UIAction("click", point=(500.0, 500.0))),
        ('```json\n{"action": "tap", "point": [100, 900]}\n```', UIAction("click", point=(100.0, 1800.0))),
        (
            '{"action": "click", "box": [100, 100, 300, 200]}',
            UIAction("click", box=(100.0, 200.0, 300.0, 400.0)),
        ),
        ("CLICK (500,250)", UIAction("click", point=(500.0, 500.0))),
        (
            "Action: click <|box_start|>(100,100),(300,200)<|box_end|>",
            UIAction("click", box=(100.0, 200.0, 300.0, 400.0)),
        ),
        ('{"action": "scroll", "direction": "Down"}', UIAction("scroll", direction="down")),
        ("swipe left", UIAction("scroll", direction="left")),
        ('{"action": "type", "text": "Weather in Paris"}', UIAction("type", text="Weather in Paris")),
        ('TYPE "milk"', UIAction("type", text="milk")),
        ('{"action": "press", "button": "HOME"}', UIAction("press", button="home")),
        ("navigate_back", UIAction("press", button="back")),
        ('{"action": "stop"}', UIAction("stop")),
        ("The task is complete.", UIAction("stop")),  # a stop word in the first words reads as stop
        ("no idea", None),
        ('{"action": "click"}', None),  # a click without coordinates
        ('{"action": "scroll", "direction": "sideways"}', None),
        ('{"action": "press", "button": "volume"}', None),
        ('{"action": "dance"}', None),
        ("", None),
    ],
)
def test_parse_action(text: str, expected: UIAction | None) -> None:
    assert parse_action(text, "qwen2_vl", SCREEN) == expected


def test_parse_action_conventions() -> None:
    assert parse_action('{"action": "click", "point": [250, 500]}', "pixel_json", SCREEN).point == (
        250.0,
        500.0,
    )
    assert parse_action('{"action": "click", "point": [0.25, 0.5]}', "point", SCREEN).point == (250.0, 1000.0)
    assert parse_action("CLICK (0.25,0.5)", "normalized", SCREEN).point == (250.0, 1000.0)
    assert parse_action('{"action": "click", "point": [999, 999]}', "qwen_vl", SCREEN).point == (
        1000.0,
        2000.0,
    )


# ------------------------------------------------------------------------------ matching


def _ratio_reference(a: str, b: str) -> float:
    """Independent reference: edit distance with insert/delete 1 and substitute 2, DP over a table."""
    n, m = len(a), len(b)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (0 if a[i - 1] == b[j - 1] else 2)
            )
    return 1.0 if n + m == 0 else 1 - d[n][m] / (n + m)


def test_levenshtein_ratio_against_reference() -> None:
    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 9)))
        assert levenshtein_ratio(a, b) == pytest.approx(_ratio_reference(a, b))
    assert levenshtein_ratio("kitten", "sitting") == pytest.approx(8 / 13)


#: gold point near the corner of a large element (enlarged x1.2: (50,50)-(650,650)) and a second
#: element elsewhere; GOLD_FREE has no element, so only the 14% distance rule can match
GOLD_CLICK = GoldStep(
    "click", point=(120.0, 120.0), elements=((100.0, 100.0, 600.0, 600.0), (800.0, 1500.0, 900.0, 1600.0))
)
GOLD_FREE = GoldStep("click", point=(500.0, 1000.0))


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        (UIAction("click", point=(599.0, 101.0)), GOLD_CLICK, (True, True)),  # inside the gold element
        (
            UIAction("click", point=(640.0, 640.0)),
            GOLD_CLICK,
            (True, True),
        ),  # only inside its x1.2 enlargement
        (UIAction("click", point=(660.0, 660.0)), GOLD_CLICK, (True, False)),  # outside it, 0.54 / 0.27 away
        (UIAction("click", point=(850.0, 1550.0)), GOLD_CLICK, (True, False)),  # another element
        (UIAction("click", point=(640.0, 1000.0)), GOLD_FREE, (True, True)),  # exactly 14% of the width
        (UIAction("click", point=(641.0, 1000.0)), GOLD_FREE, (True, False)),
        (UIAction("click", point=(500.0, 1280.0)), GOLD_FREE, (True, True)),  # exactly 14% of the height
        (UIAction("click", point=(500.0, 1281.0)), GOLD_FREE, (True, False)),
        # box enlarged x1.2 = (115,115)-(235,235) holds the gold point
        (UIAction("click", box=(125.0, 125.0, 225.0, 225.0)), GOLD_CLICK, (True, True)),
        # box enlarged = (155,155)-(695,695) misses the point; IoU with the enlarged element:
        # 495^2 / (540^2 + 600^2 - 495^2) = 245025 / 406575 = 0.603 > 0.5
        (UIAction("click", box=(200.0, 200.0, 650.0, 650.0)), GOLD_CLICK, (True, True)),
        # box enlarged = (370,370)-(730,730): IoU 280^2 / (360^2 + 600^2 - 280^2) = 0.19
        (UIAction("click", box=(400.0, 400.0, 700.0, 700.0)), GOLD_CLICK, (True, False)),
        (UIAction("click", box=(400.0, 900.0, 600.0, 1100.0)), GOLD_FREE, (True, True)),  # holds the point
        (UIAction("scroll", direction="up"), GOLD_CLICK, (False, False)),
        (None, GOLD_CLICK, (False, False)),
    ],
)
def test_match_click(pred: UIAction | None, gold: GoldStep, expected: tuple[bool, bool]) -> None:
    assert match_action(pred, gold, SCREEN) == expected


def test_enlarge_box() -> None:
    assert enlarge_box((200.0, 200.0, 650.0, 650.0), 1.2) == pytest.approx((155.0, 155.0, 695.0, 695.0))
    assert enlarge_box((10.0, 40.0, 0.0, 20.0), 2.0) == pytest.approx(
        (-5.0, 10.0, 15.0, 50.0)
    )  # corners any order


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        (
            UIAction("type", text="Weather in  PARIS "),
            GoldStep("type", text="weather in paris"),
            (True, True),
        ),
        (
            UIAction("type", text="weather"),
            GoldStep("type", text="weather in paris"),
            (True, True),
        ),  # substring
        (
            UIAction("type", text="weather in parys"),
            GoldStep("type", text="weather in paris"),
            (True, True),
        ),  # 30/32
        (UIAction("type", text="wether"), GoldStep("type", text="weathr"), (True, True)),  # ratio 10/12 > 0.8
        (UIAction("type", text="snow"), GoldStep("type", text="weathr"), (True, False)),
        (UIAction("type", text=""), GoldStep("type", text="milk"), (True, False)),  # empty text never matches
        (UIAction("scroll", direction="down"), GoldStep("scroll", direction="down"), (True, True)),
        (UIAction("scroll", direction="up"), GoldStep("scroll", direction="down"), (True, False)),
        (UIAction("press", button="home"), GoldStep("press", button="home"), (True, True)),
        (UIAction("press", button="back"), GoldStep("press", button="home"), (True, False)),
        (UIAction("stop"), GoldStep("stop"), (True, True)),
        (UIAction("stop"), GoldStep("press", button="back"), (False, False)),
    ],
)
def test_match_other_actions(pred: UIAction, gold: GoldStep, expected: tuple[bool, bool]) -> None:
    assert match_action(pred, gold, SCREEN) == expected


def test_aitz_gold_from_release_row() -> None:
    row = {
        "coat_action_desc": "click on the Clock app located at the upper middle right side of the screen.",
        "result_touch_yx": "[0.49836206436157227, 0.6069772839546204]",
        "ui_positions": "[[54, 17, 8, 12], [300, 150, 20, 30]]",
        "result_action_text": "",
    }
    gold = aitz_gold(row, (270, 600))
    assert gold.type == "click"
    assert gold.point == pytest.approx((0.6069772839546204 * 270, 0.49836206436157227 * 600))
    assert gold.elements == ((17.0, 54.0, 29.0, 62.0), (150.0, 300.0, 180.0, 320.0))
    assert aitz_gold({"coat_action_desc": "scroll up"}, (270, 600)).direction == "up"
    assert aitz_gold({"coat_action_desc": "press the home button"}, (270, 600)).button == "home"
    typed = aitz_gold({"coat_action_desc": 'input "milk"', "result_action_text": "milk"}, (270, 600))
    assert (typed.type, typed.text) == ("type", "milk")
    assert screenspot_platform("android") == "mobile" and screenspot_platform("windows") == "desktop"
    assert screenspot_platform("gitlab") == "web"


# ------------------------------------------------------------------------------ ScreenSpot


def test_screenspot_cli_tiny_model(tmp_path: Path, tiny_model_dir: Path, screenspot: dict[str, Any]) -> None:
    t, samples = run_tiny_model(tmp_path, tiny_model_dir, "screenspot", screenspot["root"])
    assert t["n_samples"] == 10 and t["n_errors"] == 2
    assert set(t["breakdowns"]["platform"]) <= {"mobile", "desktop", "web"}
    assert {s["error_type"] for s in samples if s["error"]} == {"input"}
    for s in samples:
        if s["error"] is None:
            assert s["scores"]["hit"] in (0.0, 1.0) and "target_box" in s


def test_screenspot_exact_accuracy(tmp_path: Path, screenspot: dict[str, Any]) -> None:
    rows = [r for r in screenspot["rows"] if not r["file_name"].startswith("bad_")]
    answers, hits = {}, {}
    for i, r in enumerate(rows):
        sid = f"{i:05d}-{r['file_name']}"
        x1, y1, x2, y2 = r["box_px"]
        style = [0, 1, 2, 3, 0, 2, 3, 2][i]
        if style == 0:  # the centre as a grid point
            answers[sid] = format_point(box_center(r["box_px"]), "qwen2_vl", r["size"])
        elif style == 1:  # a box (grid) whose centre is inside the target
            g = [
                round(v)
                for v in (
                    x1 / r["size"][0] * 1000,
                    y1 / r["size"][1] * 1000,
                    x2 / r["size"][0] * 1000,
                    y2 / r["size"][1] * 1000,
                )
            ]
            answers[sid] = f"<|box_start|>({g[0]},{g[1]}),({g[2]},{g[3]})<|box_end|>"
        elif style == 2:  # a point outside the target
            answers[sid] = "(995,995)"
        else:  # no coordinates
            answers[sid] = "I cannot find it."
        hits[sid] = style in (0, 1)
    res = run_fake(tmp_path, "screenspot", screenspot["root"], answers)
    t = res["tasks"]["screenspot"]
    assert t["metrics"]["accuracy"] == pytest.approx(sum(hits.values()) / len(hits)) == pytest.approx(3 / 8)
    assert t["metrics"]["parse_failure_rate"] == pytest.approx(0.25) and t["counts"]["parse_failures"] == 2
    groups: dict[str, list[bool]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(f"{screenspot_platform(r['data_source'])}_{r['data_type']}", []).append(
            hits[f"{i:05d}-{r['file_name']}"]
        )
    assert set(groups) == {
        "mobile_text",
        "mobile_icon",
        "desktop_text",
        "desktop_icon",
        "web_text",
        "web_icon",
    }
    macro = sum(sum(v) / len(v) for v in groups.values()) / len(groups)
    assert t["metrics"]["accuracy_groups_mean"] == pytest.approx(macro)
    assert t["metrics"]["accuracy_groups_mean"] == pytest.approx(2.5 / 6)  # != pooled: web has 4 rows
    assert t["breakdowns"]["platform_type"]["web_text"] == {"hit": pytest.approx(0.5), "n": 2}


def test_screenspot_point_convention(tmp_path: Path, screenspot: dict[str, Any]) -> None:
    rows = [r for r in screenspot["rows"] if not r["file_name"].startswith("bad_")]
    answers = {
        f"{i:05d}-{r['file_name']}": format_point(box_center(r["box_px"]), "point", r["size"])
        for i, r in enumerate(rows)
    }
    res = run_fake(tmp_path, "screenspot", screenspot["root"], answers, "task.box_convention=point")
    t = res["tasks"]["screenspot"]
    assert t["metrics"]["accuracy"] == 1.0 and t["protocol"]["box_convention"] == "point"
    prompt = read_samples(tmp_path / "out-screenspot" / "samples" / "screenspot.jsonl")[0]["prompt"]
    assert "(with point)?" in prompt


def test_pixel_clicks_are_read_in_the_screenshot_the_model_was_given(
    tmp_path: Path, screenspot: dict[str, Any], aitz: dict[str, Any]
) -> None:
    """``pixel_json`` clicks of a model given the screenshot at half its size (the size the
    backend reports) are scaled to the screenshot: the target centres all hit, for ScreenSpot and
    for AITZ's click steps; read as full-size pixels (nothing reported), they miss."""
    rows = [r for r in screenspot["rows"] if not r["file_name"].startswith("bad_")]
    half = {
        f"{i:05d}-{r['file_name']}": (round(r["size"][0] / 2), round(r["size"][1] / 2))
        for i, r in enumerate(rows)
    }
    answers = {
        f"{i:05d}-{r['file_name']}": format_point(
            box_center(r["box_px"]), "pixel_json", r["size"], input_size=half[f"{i:05d}-{r['file_name']}"]
        )
        for i, r in enumerate(rows)
    }
    res = run_fake(tmp_path, "screenspot", screenspot["root"], answers, "task.box_convention=pixel_json",
                   "+model.input_scale=0.5")  # fmt: skip
    assert res["tasks"]["screenspot"]["metrics"]["accuracy"] == 1.0
    recs = {s["id"]: s for s in read_samples(tmp_path / "out-screenspot" / "samples" / "screenspot.jsonl")}
    assert all(recs[sid]["input_image_size"] == list(size) for sid, size in half.items())
    plain = run_fake(
        tmp_path / "plain", "screenspot", screenspot["root"], answers, "task.box_convention=pixel_json"
    )
    assert plain["tasks"]["screenspot"]["metrics"]["accuracy"] < 0.5

    w, h = AITZ_SCREEN  # step 1001-1: the gold click at (0.285, 0.115) of the screen
    point = [round(0.285 * w / 2), round(0.115 * h / 2)]
    steps = {"1001-1": json.dumps({"action": "click", "point": point})}
    res = run_fake(
        tmp_path, "aitz", aitz["root"], steps, "task.box_convention=pixel_json", "+model.input_scale=0.5"
    )
    recs = {s["id"]: s for s in read_samples(tmp_path / "out-aitz" / "samples" / "aitz.jsonl")}
    assert recs["1001-1"]["scores"]["exact_match"] == 1.0
    assert recs["1001-1"]["action"]["point"] == pytest.approx([point[0] * 2, point[1] * 2], abs=1.0)
    assert recs["1001-1"]["input_image_size"] == [round(w / 2), round(h / 2)]


# ------------------------------------------------------------------------------ AITZ


def test_aitz_cli_tiny_model(tmp_path: Path, tiny_model_dir: Path, aitz: dict[str, Any]) -> None:
    t, sample_list = run_tiny_model(tmp_path, tiny_model_dir, "aitz", aitz["root"])
    assert t["n_samples"] == 10 and t["n_errors"] == 2  # missing screenshot, unknown gold action
    assert t["main_metric"] == "exact_match" and {"type_match", "exact_match"} <= set(t["metrics"])
    samples = {s["id"]: s for s in sample_list}
    assert "Previous actions:\n1. scroll down\n2. click on the add to cart" in samples["2002-2"]["prompt"]
    assert "Previous actions:\nNone" in samples["1001-0"]["prompt"]


def test_aitz_exact_tm_em(tmp_path: Path, aitz: dict[str, Any]) -> None:
    w, h = AITZ_SCREEN
    y, x, eh, ew = AITZ_ELEMENTS[1]
    answers = {
        "1001-0": '{"action": "press", "button": "home"}',  # TM EM
        "1001-1": '{"action": "click", "point": [285, 115]}',  # on the gold point -> TM EM
        "1001-2": '{"action": "type", "text": "weather in paris"}',  # TM EM (normalised)
        "1001-3": '{"action": "press", "button": "back"}',  # TM, wrong button
        "1001-4": "no idea",  # no action word -> unparsed
        "2002-0": '{"action": "scroll", "direction": "up"}',  # TM, wrong direction
        # just above the gold element, inside its x1.2 enlargement
        "2002-1": json.dumps(
            {"action": "click", "point": [round((x + ew / 2) / w * 1000), round((y - 2) / h * 1000)]}
        ),
        "2002-2": '{"action": "click", "point": [500, 500]}',  # wrong type
        "3003-0": '{"action": "stop"}',
        "3003-1": '{"action": "stop"}',
    }
    res = run_fake(tmp_path, "aitz", aitz["root"], answers)
    t = res["tasks"]["aitz"]
    # 8 scored steps: TM on 0,1,2,3,5,6 (6/8); EM on 0,1,2,6 (4/8)
    assert t["n_scored"] == 8 and t["n_errors"] == 2
    assert t["metrics"]["type_match"] == pytest.approx(6 / 8)
    assert t["metrics"]["exact_match"] == pytest.approx(4 / 8)
    assert t["metrics"]["parse_failure_rate"] == pytest.approx(1 / 8)
    by_type = t["breakdowns"]["action_type"]
    assert by_type["press"] == {
        "exact_match": pytest.approx(1 / 3),
        "type_match": pytest.approx(2 / 3),
        "n": 3,
    }
    assert by_type["click"]["exact_match"] == 1.0 and by_type["scroll"]["exact_match"] == 0.0
    assert set(t["breakdowns"]["subset"]) == {"general", "web_shopping"}
    samples = {s["id"]: s for s in read_samples(tmp_path / "out-aitz" / "samples" / "aitz.jsonl")}
    assert samples["1001-1"]["gold_action"]["point"] == pytest.approx([0.285 * w, 0.115 * h])
    assert samples["1001-4"]["action"] is None


def test_rescore_recomputes_clicks_and_actions(
    tmp_path: Path, screenspot: dict[str, Any], aitz: dict[str, Any]
) -> None:
    """`evalkit score` on edited samples files: the image sizes are re-read from the data."""
    rows = [r for r in screenspot["rows"] if not r["file_name"].startswith("bad_")]
    ids = [f"{i:05d}-{r['file_name']}" for i, r in enumerate(rows)]
    run_fake(tmp_path, "screenspot", screenspot["root"], dict.fromkeys(ids, "no click"))
    centre = format_point(box_center(rows[0]["box_px"]), "qwen2_vl", rows[0]["size"])
    t = rescore_edited(tmp_path, "screenspot", screenspot["root"], {ids[0]: centre})
    assert t["metrics"]["accuracy"] == pytest.approx(1 / 8)

    run_fake(tmp_path, "aitz", aitz["root"], {s["id"]: "no idea" for s in aitz["steps"]})
    t = rescore_edited(tmp_path, "aitz", aitz["root"], {"1001-0": "PRESS HOME"})
    assert t["metrics"]["exact_match"] == pytest.approx(1 / 8) and t["metrics"][
        "type_match"
    ] == pytest.approx(1 / 8)
