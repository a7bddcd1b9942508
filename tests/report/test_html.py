"""The self-contained HTML report, checked as a file and in a real headless Chromium.

The browser test needs Debian's ``chromium`` (``apt-get install -y chromium``; or set
``EVALKIT_CHROMIUM`` to a Chrome/Chromium binary) and is skipped, saying so, without one. It
loads the page from a file:// URL, lets its script run, dumps the DOM (``--dump-dom``) and
checks the rendered leaderboard, the Question column, the status filters (correct/incorrect only
for 0/1 scores), paging through samples held in page files, the one-sample view, the compare
view and column sorting (selected through the URL hash, which drives the same <select> change
handlers and header click a user does), then saves a screenshot
(also copied to ``$EVALKIT_ARTIFACTS_DIR`` when set).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evalkit.report.cli import report_main
from evalkit.report.html import correctness_rule, is_graded_score, sample_status

SCORES = [1.0, 0.8, 0.3, 0.0, None, 0.5]  # ANLS: continuous, so no correct/incorrect; one error
DOC_STATUS = {"scored": {"0", "1", "2", "3", "5"}, "error": {"4"}}
N_GQA = 250  # more than --html-samples 100: pages 2 and 3 come from page files
CHAT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|vision_start|><|image_pad|><|vision_end|>{q}<|im_end|>\n<|im_start|>assistant\n"
)


def gqa_right(model: str, i: int) -> bool:
    """model-a is right on every third sample; model-b on every other one."""
    return i % 3 == 0 if model == "model-a" else i % 2 == 0


def gqa_samples(mk_sample, model: str) -> list[dict]:
    out = []
    for i in range(N_GQA):
        rec = mk_sample(i, float(gqa_right(model, i)), prediction=f"{model} says {i}")
        rec["prompt"] = CHAT.format(q=f"What colour is object {i}?")
        if i % 2:  # newer files carry the question; older ones only the rendered prompt
            rec["question"] = f"What colour is object {i}?"
        out.append(rec)
    return out


def _jpeg(path: Path, color: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 32), color).save(path, format="JPEG")


@pytest.fixture
def page(make_run, mk_sample, tmp_path) -> Path:
    """report.html for two models; model-a's docvqa samples have thumbnails; gqa has 250
    samples per model (100 embedded, the rest in page files)."""
    docs = []
    for i, s in enumerate(SCORES):
        extra = {"thumbnail": f"thumbs/docvqa/{i}.jpg"}
        if s is None:
            docs.append(mk_sample(i, None, name="anls", error="CUDA out of memory", **extra))
        else:
            docs.append(mk_sample(i, s, name="anls", prediction=f"answer {i}", **extra))
        docs[-1]["prompt"] = CHAT.format(q=f"What is the invoice total {i}?")
    docs[2]["prompt"] = "What is written? </script><b>bold</b>"
    mt = [mk_sample(i, float(i % 3 == 0), metadata={"language": ["AR", "DE"][i % 2]}) for i in range(12)]
    mt_agg = {"accuracy_macro": {"kind": "macro", "score": "accuracy", "group": "language"}}
    breakdown = {"language": {"AR": {"accuracy": 2 / 6, "n": 6}, "DE": {"accuracy": 2 / 6, "n": 6}}}
    run_a = make_run(
        "a",
        {
            "docvqa": {"samples": docs, "aggregation": {"anls": {"kind": "mean", "score": "anls"}}},
            "mtvqa": {"samples": mt, "aggregation": mt_agg, "breakdowns": breakdown},
            "gqa": {"samples": gqa_samples(mk_sample, "model-a")},
        },
        model="model-a",
    )
    for i in range(len(SCORES)):
        _jpeg(run_a / "thumbs" / "docvqa" / f"{i}.jpg", (40 * i, 100, 200))
    make_run(
        "b",
        {
            "docvqa": {
                "samples": [mk_sample(i, 0.25, name="anls") for i in range(6)],
                "aggregation": {"anls": {"kind": "mean", "score": "anls"}},
            },
            "gqa": {"samples": gqa_samples(mk_sample, "model-b")},
        },
        model="model-b",
    )
    out = tmp_path / "site" / "report.html"
    argv = [str(run_a), str(tmp_path / "b"), "-f", "html", "-o", str(out), "--n-resamples", "500"]
    assert report_main([*argv, "--html-samples", "100"]) == 0
    return out


def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert (
        "<script src" not in html and "<link" not in html and "http://" not in html and "https://" not in html
    )
    assert html.count("data:image/jpeg;base64,") == len(SCORES)  # one per distinct thumbnail
    assert "</script><b>" not in html  # a prompt cannot close the data <script>
    assert "__DATA__" not in html and "/*__JS__*/" not in html
    # gqa samples 100..249 of both models are in page files beside the page, not in it
    files = sorted(p.relative_to(page.parent).as_posix() for p in page.parent.rglob("*.js"))
    assert len(files) == 4 and all(f.startswith("report_samples/") for f in files)
    assert "model-a says 237" not in html and "model-a says 99" in html
    text = "".join(p.read_text(encoding="utf-8") for p in page.parent.rglob("*.js"))
    assert "model-a says 237" in text and text.count("evalkitSamplePage.apply(null, ") == 4


def test_page_files_are_replaced_and_all_can_be_embedded(page, tmp_path):
    stale = page.parent / "report_samples" / "t9m9" / "3.js"
    stale.parent.mkdir(parents=True)
    stale.write_text("stale")
    argv = [str(tmp_path / "a"), str(tmp_path / "b"), "-f", "html", "-o", str(page), "--n-resamples", "50"]
    assert report_main(argv) == 0  # default 1000 embeds every sample: no page files
    assert not list(page.parent.rglob("*.js"))  # the earlier report's page files are gone
    assert "model-a says 237" in page.read_text(encoding="utf-8")


def test_sample_status_rule():
    assert [sample_status(s, s is None, 1.0) for s in (1.0, 0.0, None)] == ["correct", "incorrect", "error"]
    assert [sample_status(s, s is None) for s in SCORES] == [
        "scored", "scored", "scored", "scored", "error", "scored"
    ]  # fmt: skip
    assert sample_status(None, False) == "unscored" and sample_status(None, False, 1.0) == "unscored"


def test_correct_only_where_the_task_defines_it(make_run, mk_sample):
    from evalkit.report.loading import read_samples

    run = make_run(
        "r",
        {
            "binary": {
                "samples": [mk_sample(i, float(i % 2)) for i in range(4)] + [mk_sample(9, None, error="x")]
            },
            "vqa": {"samples": [mk_sample(i, v, name="vqa_accuracy") for i, v in enumerate([0, 1 / 3, 1])]},
        },
    )
    rule = correctness_rule(read_samples(run / "samples" / "binary.jsonl"), "accuracy")
    assert rule == {"threshold": 1.0, "text": "correct = accuracy is 1 (the task scores each sample 0 or 1)"}
    assert correctness_rule(read_samples(run / "samples" / "vqa.jsonl"), "vqa_accuracy") is None
    # a graded score is never called right or wrong, even when this run's values are all 0 or 1
    anls = make_run(
        "anls", {"docvqa": {"samples": [mk_sample(i, float(i % 2), name="anls") for i in range(4)]}}
    )
    assert correctness_rule(read_samples(anls / "samples" / "docvqa.jsonl"), "anls") is None
    assert [is_graded_score(n) for n in ("anls", "vqa_accuracy", "iou", "cider", "score", "judge_score")] == [
        True
    ] * 6
    assert [is_graded_score(n) for n in ("accuracy", "exact_match", "relaxed_accuracy", "acc@0.5")] == [
        False
    ] * 4
    assert correctness_rule(read_samples(run / "samples" / "binary.jsonl"), None) is None


def test_question_column_text():
    from evalkit.report.loading import question_text

    prompt = CHAT.format(q="How many cats?\nAnswer with a number.")
    assert question_text(None, prompt) == "How many cats?\nAnswer with a number."
    assert question_text("How many cats?", prompt) == "How many cats?"
    assert question_text(None, "plain prompt") == "plain prompt"
    two_turns = CHAT.format(q="first") + "ok<|im_end|>\n<|im_start|>user\nsecond<|im_end|>\n"
    assert question_text(None, two_turns) == "second"
    assert question_text(None, None) is None


class _DomSummary(HTMLParser):
    """Collects leaderboard rows, sample rows (and their question text), the one-sample view,
    compare rows and section attributes from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.models: list[str] = []
        self.samples: list[dict[str, str]] = []
        self.questions: list[str] = []
        self.compare: list[dict[str, str]] = []
        self.images: list[str] = []
        self.body: dict[str, str] = {}
        self.sections: dict[str, dict[str, str]] = {}
        self.texts: dict[str, str] = {}  # element id -> its text (cells of the one-sample view)
        self.hints: dict[str, str] = {}
        self.breakdown_tables: list[str] = []
        self.cell_texts: list[str] = []
        self._in_lb = False
        self._td_depth = 0
        self._capture: list[tuple[str, str, int]] = []  # (kind, key, depth)
        self._row: str | None = None
        self._depth = 0

    _VOID = {"img", "input", "br", "meta", "hr", "link", "source", "col", "wbr"}

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag not in self._VOID:
            self._depth += 1
        if tag == "body":
            self.body = a
        if a.get("id", "").endswith("-section"):
            self.sections[a["id"]] = a
        if tag == "table":
            self._in_lb = a.get("id") == "leaderboard"
            if "breakdown" in a.get("class", ""):
                self.breakdown_tables.append(a.get("data-task", "") + "/" + a.get("data-key", ""))
        if tag == "tr" and "data-model" in a:
            self.models.append(a["data-model"])
        if tag == "tr" and "sample" in a.get("class", "").split():
            self.samples.append(a)
        if tag == "tr" and a.get("class") == "cmp":
            self.compare.append(a)
        if tag == "tr":
            self._row = "sample" if "sample" in a.get("class", "").split() else None
        if tag == "div" and a.get("class") == "q" and self._row == "sample":
            self.questions.append("")
            self._capture.append(("question", "", self._depth))
        if a.get("id", "").startswith("view-") or a.get("id") in ("sample-hint", "cmp-summary", "page-info"):
            self.texts[a["id"]] = ""
            self._capture.append(("id", a["id"], self._depth))
        if tag == "img" and a.get("src", "").startswith("data:image/jpeg;base64,"):
            self.images.append(a["alt"])
        if tag == "td" and self._in_lb:
            self.cell_texts.append("")
            self._td_depth += 1

    def handle_endtag(self, tag):
        if tag in self._VOID:
            return
        if self._capture and self._capture[-1][2] == self._depth:
            self._capture.pop()
        self._depth -= 1
        if tag == "td" and self._in_lb:
            self._td_depth -= 1
        if tag == "table":
            self._in_lb = False

    def handle_data(self, data):
        if self._in_lb and self._td_depth > 0:
            self.cell_texts[-1] += data
        for kind, key, _ in self._capture:
            if kind == "question":
                self.questions[-1] += data
            else:
                self.texts[key] += data


def _chromium() -> str | None:
    return os.environ.get("EVALKIT_CHROMIUM") or next(
        (p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))), None
    )


def _browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def _dom(binary: str, profile: Path, url: str) -> _DomSummary:
    # the virtual time budget lets the page load its sample page files before the DOM is dumped
    proc = _browser(binary, profile, "--virtual-time-budget=10000", "--dump-dom", url)
    summary = _DomSummary()
    summary.feed(proc.stdout)
    return summary


def test_page_in_headless_chromium(page, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip(
            "chromium is not installed (apt-get install -y chromium); the HTML page is untested in a browser"
        )
    profile = tmp_path / "chromium-profile"
    url = page.as_uri()

    dom = _dom(binary, profile, url)
    assert dom.body.get("data-ready") == "1", "the page script did not finish"
    assert dom.models == ["model-a", "model-b"]
    # model-a docvqa: mean of the 5 scored samples (1, .8, .3, 0, .5) = 52.0; model-b 25.0;
    # gqa: 84 of 250 right (33.6) and 125 of 250 (50.0); columns docvqa, mtvqa, gqa
    texts = [t.strip() for t in dom.cell_texts]
    assert texts[0] == "model-a" and texts[1].startswith("52.0 ± ") and texts[3].startswith("33.6 ± ")
    assert texts[4] == "model-b" and texts[5].startswith("25.0 ± ") and texts[7].startswith("50.0 ± ")
    assert dom.breakdown_tables == ["mtvqa/language"]
    # default view: first task, first model, every sample, thumbnails embedded; the Question
    # column shows the user turn, not the chat template's system head
    assert {s["data-id"] for s in dom.samples} == {str(i) for i in range(len(SCORES))}
    assert len(dom.images) == len(SCORES)
    assert dom.questions[0] == "What is the invoice total 0?" and "<|im_start|>" not in "".join(dom.questions)
    # ANLS is continuous: no sample is called correct, and the page says why
    assert {s["data-status"] for s in dom.samples} == {"scored", "error"}
    assert "no correct/incorrect: anls is not a 0/1 score" in dom.texts["sample-hint"]

    for status, ids in DOC_STATUS.items():
        dom = _dom(binary, profile, f"{url}#task=docvqa&model=model-a&filter={status}&sort=docvqa:asc")
        assert dom.models == ["model-b", "model-a"]  # sorted by the docvqa column, ascending
        assert {s["data-status"] for s in dom.samples} == {status}
        assert {s["data-id"] for s in dom.samples} == ids
        assert dom.body.get("data-samples-rendered") == str(len(ids))

    # gqa has 0/1 scores: correct = accuracy is 1. The filters cover all 250 samples, also the
    # 150 whose records come from the page files (loaded on demand).
    right = [str(i) for i in range(N_GQA) if gqa_right("model-a", i)]
    wrong = [str(i) for i in range(N_GQA) if not gqa_right("model-a", i)]
    dom = _dom(binary, profile, f"{url}#task=gqa&model=model-a&filter=correct")
    assert "correct = accuracy is 1" in dom.texts["sample-hint"]
    assert [s["data-id"] for s in dom.samples] == right  # 84 rows: one page
    assert {s["data-status"] for s in dom.samples} == {"correct"} and "missing" not in str(dom.samples)
    q = {int(s["data-id"]): t for s, t in zip(dom.samples, dom.questions, strict=True)}
    assert q[3] == "What colour is object 3?" and q[6] == "What colour is object 6?"  # field / prompt
    for number, ids in ((1, wrong[:100]), (2, wrong[100:])):
        dom = _dom(binary, profile, f"{url}#task=gqa&model=model-a&filter=incorrect&page={number}")
        assert [s["data-id"] for s in dom.samples] == ids
        assert dom.texts["page-info"] == f"page {number} of 2"
    dom = _dom(binary, profile, f"{url}#task=gqa&model=model-b&page=3")  # samples 200..249
    assert [s["data-id"] for s in dom.samples] == [str(i) for i in range(200, 250)]

    # one sample, opened by id, from a page file
    dom = _dom(binary, profile, f"{url}#task=gqa&model=model-a&sample=238")
    assert dom.sections["sample-view-section"].get("data-sample-id") == "238"
    assert "hidden" not in dom.sections["sample-view-section"]
    assert dom.texts["view-question"] == "What colour is object 238?"
    assert dom.texts["view-prediction"] == "model-a says 238"
    assert dom.texts["view-status"].startswith("incorrect (correct = accuracy is 1")
    assert "<|im_start|>system" in dom.texts["view-prompt"]  # the full prompt is kept

    # compare: the two models on the same samples, where they disagree
    a_better = {str(i) for i in range(N_GQA) if gqa_right("model-a", i) and not gqa_right("model-b", i)}
    b_better = {str(i) for i in range(N_GQA) if gqa_right("model-b", i) and not gqa_right("model-a", i)}
    dom = _dom(binary, profile, f"{url}#compare=gqa&a=model-a&b=model-b")
    assert "hidden" not in dom.sections["compare-section"]
    assert (
        f"250 samples in both; they disagree on {len(a_better) + len(b_better)}" in dom.texts["cmp-summary"]
    )
    shown = {r["data-id"]: r["data-better"] for r in dom.compare}
    assert len(shown) == 100 and all(shown[i] == ("a" if i in a_better else "b") for i in shown)
    assert set(shown) <= a_better | b_better
    dom = _dom(binary, profile, f"{url}#compare=gqa&a=model-a&b=model-b&cfilter=a")
    assert {r["data-id"] for r in dom.compare} == a_better  # 42 rows, many from page files

    # a missing page file is said, not silently skipped
    for f in (page.parent / "report_samples").rglob("2.js"):
        f.unlink()
    dom = _dom(binary, profile, f"{url}#task=gqa&model=model-a&page=3")
    assert [s["data-id"] for s in dom.samples] == [str(i) for i in range(200, 250)]
    assert all("missing" in s["class"] for s in dom.samples)

    shot = tmp_path / "report.png"
    _browser(binary, profile, f"--screenshot={shot}", "--window-size=1280,1400", f"{url}#filter=incorrect")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    artifacts = os.environ.get("EVALKIT_ARTIFACTS_DIR")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "report-html.png")
