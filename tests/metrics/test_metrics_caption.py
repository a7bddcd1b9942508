"""Caption metrics against pycocoevalcap's own scorers called the lmms-eval way.

One evalkit evaluation and one reference evaluation (module-scoped fixtures) are shared by all
the equality asserts: the Java tokenizer and METEOR take seconds to start.
"""

from __future__ import annotations

import random
import shutil
import time

import numpy as np
import pytest

from evalkit.errors import MissingDependencyError
from evalkit.metrics import (
    CAPTION_METRICS,
    caption_scores,
    evaluate_captions,
    ptb_tokenize,
    spice_status,
)

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="caption metrics need Java")

SUBJECTS = [
    "A man",
    "a woman",
    "Two dogs",
    "The cat",
    "A young boy",
    "Some people",
    "A red bus",
    "an old car",
]
VERBS = [
    "riding",
    "sitting on",
    "standing next to",
    "looking at",
    "playing with",
    "walking past",
    "parked near",
]
OBJECTS = ["a horse", "the beach", "a wooden bench", "a large building", "a frisbee", "the street", "a table"]
EXTRAS = [
    "",
    " in the rain",
    " at night",
    ", smiling",
    " with a hat",
    "'s shadow",
    " (outdoors)",
    " -- quickly",
]
UNICODE = ["Un café près de la tour", "ein Mädchen läuft", "日本の寺", "naïve façade, résumé"]


def _sentence(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(EXTRAS)}"
    return text + rng.choice([".", "", "!", " ."])


def make_captions(n_images: int, seed: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Deterministic synthetic predictions and references, with the awkward cases mixed in."""
    rng = random.Random(seed)
    predictions: dict[str, str] = {}
    references: dict[str, list[str]] = {}
    for i in range(n_images):
        image_id = f"{100000 + i * 7}"
        refs = [_sentence(rng) for _ in range(rng.choice([5, 5, 5, 4, 6, 1]))]
        roll = rng.random()
        if roll < 0.35:
            pred = rng.choice(refs).upper() if rng.random() < 0.3 else rng.choice(refs)
        elif roll < 0.8:
            pred = _sentence(rng)
        elif roll < 0.88:
            pred = " ".join(_sentence(rng) for _ in range(rng.randint(8, 30)))  # very long
        elif roll < 0.94:
            pred = rng.choice(UNICODE)
        else:
            pred = ""  # empty prediction
        predictions[image_id] = pred
        references[image_id] = refs
    last = list(predictions)[-1]
    predictions[last] = ""  # an empty caption on the last line (PTB tokenizer edge)
    return predictions, references


def lmms_eval_style(predictions: dict[str, str], references: dict[str, list[str]]) -> dict[str, float]:
    """pycocoevalcap scorers called as lmms-eval does: a fresh PTB tokenisation for each metric."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out: dict[str, float] = {}
    for name, scorer in [("bleu", Bleu(4)), ("meteor", Meteor()), ("rouge_l", Rouge()), ("cider", Cider())]:
        gts = {i: [{"caption": c} for c in references[i]] for i in predictions}
        res = {i: [{"caption": predictions[i]}] for i in predictions}
        gts = PTBTokenizer().tokenize(gts)
        res = PTBTokenizer().tokenize(res)
        if name == "bleu":
            score, _ = scorer.compute_score(gts, res, verbose=0)
            out.update({f"bleu{n + 1}": float(score[n]) for n in range(4)})
        else:
            score, per_image = scorer.compute_score(gts, res)
            out[name] = float(score)
            if name == "cider":
                out["cider_per_image"] = [float(v) for v in per_image]
        del scorer
    return out


@pytest.fixture(scope="module")
def captions() -> tuple[dict[str, str], dict[str, list[str]]]:
    return make_captions(240, seed=2024)


@pytest.fixture(scope="module")
def evalkit_result(captions):
    return evaluate_captions(*captions)


@pytest.fixture(scope="module")
def reference_result(captions):
    return lmms_eval_style(*captions)


@pytest.mark.parametrize("metric", ["bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider"])
def test_equal_to_pycocoevalcap_called_directly(metric: str, evalkit_result, reference_result) -> None:
    assert evalkit_result.scores[metric] == reference_result[metric]


def test_scores_are_in_a_sensible_range(evalkit_result) -> None:
    scores = evalkit_result.scores
    assert list(scores) == list(CAPTION_METRICS)
    assert 0.2 < scores["bleu1"] < 1.0 and scores["bleu4"] < scores["bleu1"]
    assert 0.0 < scores["meteor"] < 1.0 and 0.0 < scores["rouge_l"] < 1.0 and scores["cider"] > 0.1


def test_per_image_cider_mean_equals_corpus_cider(captions, evalkit_result, reference_result) -> None:
    predictions, _ = captions
    per_image = [evalkit_result.per_image[i]["cider"] for i in predictions]
    assert per_image == reference_result["cider_per_image"]
    assert float(np.mean(np.array(per_image))) == evalkit_result.scores["cider"]
    rouge = [evalkit_result.per_image[i]["rouge_l"] for i in predictions]
    assert float(np.mean(np.array(rouge))) == pytest.approx(evalkit_result.scores["rouge_l"], rel=1e-12)


def test_empty_predictions_score_zero(captions, evalkit_result) -> None:
    predictions, _ = captions
    empty = [i for i, p in predictions.items() if p == ""]
    assert len(empty) >= 2
    for image_id in empty:
        assert evalkit_result.per_image[image_id]["cider"] == 0.0
        assert evalkit_result.per_image[image_id]["meteor"] == 0.0


def test_spice_is_none_with_a_reason_and_nothing_is_downloaded(evalkit_result, monkeypatch) -> None:
    available, reason = spice_status()
    if available:
        pytest.skip("Stanford CoreNLP is installed for SPICE here")
    assert evalkit_result.scores["spice"] is None
    assert "CoreNLP" in evalkit_result.notes["spice"] and "\n" not in evalkit_result.notes["spice"]
    assert evalkit_result.notes["spice"] == reason

    import urllib.request

    def no_download(*args, **kwargs):
        raise AssertionError("SPICE detection must not download anything")

    monkeypatch.setattr(urllib.request, "urlretrieve", no_download)
    assert spice_status()[0] is False


def test_metric_selection() -> None:
    result = evaluate_captions(
        {"1": "a dog", "2": ""}, {"1": ["a dog runs"], "2": ["a cat"]}, metrics=["cider", "bleu4"]
    )
    assert result.scores["cider"] is not None and result.scores["bleu4"] is not None
    for metric in ("bleu1", "meteor", "rouge_l", "spice"):
        assert result.scores[metric] is None
        assert "not requested" in result.notes[metric]
    assert set(result.per_image["1"]) == {"cider", "bleu4"}
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_captions({"1": "a dog"}, {"1": ["a dog"]}, metrics=["bleu"])


def test_tokenizer_matches_pycocoevalcap_and_keeps_lines_aligned() -> None:
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    plain = ["A man's hat, (red)!", "", "Café über 日本語", "It costs $3.50 -- really?", "  ", "last one."]
    ours = ptb_tokenize(plain)
    theirs = PTBTokenizer().tokenize({k: [{"caption": c}] for k, c in enumerate(plain)})
    assert ours == [theirs[k][0] for k in range(len(plain))]

    tricky = ["first\rline", "second\u2028line", "third\x0cline", "fourth"]
    assert ptb_tokenize(tricky) == ["first line", "second line", "third line", "fourth"]
    broken = PTBTokenizer().tokenize({k: [{"caption": c}] for k, c in enumerate(tricky)})
    assert broken[3] != ["fourth"]  # pycocoevalcap's wrapper shifts captions after a "\r"


def test_java_missing_raises_missing_dependency(monkeypatch) -> None:
    import evalkit.metrics.caption as caption_module

    monkeypatch.setattr(caption_module.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match="Java"):
        caption_scores({"1": "a dog"}, {"1": ["a dog"]})


def test_input_validation() -> None:
    with pytest.raises(ValueError):
        caption_scores({}, {})
    with pytest.raises(ValueError):
        caption_scores({"1": "a dog"}, {"2": ["a dog"]})
    with pytest.raises(ValueError):
        caption_scores({"1": "a dog"}, {"1": []})
    with pytest.raises(TypeError):
        caption_scores({"1": None}, {"1": ["a dog"]})  # type: ignore[dict-item]


# ------------------------------------------------------------------ one METEOR JVM per process
def _tokenised(predictions: dict[str, str], references: dict[str, list[str]]):
    ids = list(predictions)
    texts = [predictions[i] for i in ids] + [c for i in ids for c in references[i]]
    tokens = ptb_tokenize(texts)
    res = {i: [tokens[k]] for k, i in enumerate(ids)}
    gts, pos = {}, len(ids)
    for i in ids:
        gts[i] = tokens[pos : pos + len(references[i])]
        pos += len(references[i])
    return gts, res


def _wait_exited(proc, seconds: float = 20.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc.poll() is not None


def test_meteor_jvm_is_reused_restarted_when_dead_and_closed_on_failure(evalkit_result) -> None:
    from evalkit.metrics.caption import METEOR, MeteorServer

    other = make_captions(30, seed=7)
    gts, res = _tokenised(*other)

    # a private server whose JVM dies before its first call starts a fresh one: the reference
    server = MeteorServer()
    server.start()
    first_proc = server._scorer.meteor_p
    first_proc.kill()
    assert _wait_exited(first_proc)
    fresh = server.compute_score(gts, res)
    assert server.starts == 2

    # the process's shared JVM already scored the 240-image set (evalkit_result): the next
    # evaluation reuses it, and a reused JVM scores exactly as a fresh one
    starts = METEOR.starts
    assert METEOR._scorer is not None
    again = evaluate_captions(*other)
    assert METEOR.starts == starts
    assert again.scores["meteor"] == fresh[0]
    assert [again.per_image[i]["meteor"] for i in other[0]] == fresh[1]

    # a call that fails half-way (pycocoevalcap asserts one hypothesis per image, after writing
    # the first image's line) leaves unread output behind: that JVM is stopped, not reused
    bad = dict(res)
    bad[list(bad)[1]] = ["one hypothesis", "two hypotheses"]
    proc = server._scorer.meteor_p
    with pytest.raises(AssertionError):
        server.compute_score(gts, bad)
    assert server._scorer is None and _wait_exited(proc)


def test_unused_meteor_jvm_is_closed_after_its_idle_time() -> None:
    from evalkit.metrics.caption import MeteorServer

    server = MeteorServer(idle_s=0.3)
    server.start()
    proc = server._scorer.meteor_p
    assert _wait_exited(proc, 20.0), "the idle JVM was not stopped"
    assert server._scorer is None


_FORK_CHECK = """
import gc, os, sys
from evalkit.metrics.caption import METEOR, evaluate_captions

METEOR.start()
proc, starts = METEOR._scorer.meteor_p, METEOR.starts
pid = os.fork()
if pid == 0:
    if METEOR._scorer is not None:  # the child would write into its parent's JVM's pipe
        os._exit(3)
    METEOR.close()
    gc.collect()  # the inherited wrapper is collected here: it must not stop the parent's JVM
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, f"child exit {os.waitstatus_to_exitcode(status)}"
assert proc.poll() is None, "the child stopped the parent's JVM"
assert METEOR._scorer is not None and METEOR._scorer.meteor_p is proc
evaluate_captions({"a": "a dog runs", "b": "a red car"}, {"a": ["a dog is running"], "b": ["a car"]})
assert METEOR.starts == starts, "the parent had to start a new JVM"
print("fork-ok")
"""


def test_a_forked_child_leaves_the_parents_meteor_jvm_alone() -> None:
    # in a fresh interpreter: a fork of a test worker that has loaded torch and tokenizers can hang
    # in the child's gc for reasons that have nothing to do with METEOR
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FORK_CHECK], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and "fork-ok" in done.stdout, done.stderr[-2000:]
