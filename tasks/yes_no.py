"""Yes/no benchmarks scored in groups: MME (``mme``) and HallusionBench (``hallusionbench``).

**MME** (``lmms-lab/MME``, split ``test``, 2,374 questions): ``question_id`` (the image's path, shared
by the image's two questions), ``image``, ``question`` (ending in "Please answer yes or no."),
``answer`` (``Yes``/``No``), ``category`` (14 subtasks). Scoring follows the benchmark's
``calculation.py``: the prediction is lower-cased; ``yes``/``no`` exactly, else ``yes`` (then
``no``) within its first four characters, else ``other`` (always wrong) — :func:`mme_parse`
(``parser: official``; ``parser: lmms_eval`` is lmms-eval's variant, which also strips, removes
periods and reads a lone ``y``/``n``). Per subtask, ``acc`` = accuracy over its questions and
``acc+`` = the fraction of its images whose questions are all right; the subtask score is
``(acc + acc+) x 100``. ``perception`` = sum over the 10 perception subtasks, ``cognition`` = sum
over the 4 cognition subtasks (0-2000 and 0-800), ``total`` = their sum (the papers' "MME sum").

**HallusionBench** (``lmms-lab/HallusionBench``, split ``image``, 951 questions; ``non_image`` holds
the 178 text-only ones): ``category`` (VD/VS), ``subcategory``, ``visual_input``, ``set_id``,
``figure_id``, ``question_id``, ``question``, ``gt_answer`` (``"1"`` yes / ``"0"`` no), ``image``...
Answers are read with VLMEvalKit's rule (:func:`yes_no_words`: lower-case, punctuation to spaces;
``yes`` among the words and no ``no`` -> yes, the reverse -> no, else unknown = wrong); the official
repository's rule that an unclear answer counts as right for a visual-supplement question without
its figure (VS, ``figure_id`` 0) is kept. ``aAcc`` = accuracy over questions; ``fAcc`` = fraction of
figures (``category, subcategory, set_id, figure_id``; VS questions without figure excluded) whose
questions are all right; ``qAcc`` = fraction of questions (``category, subcategory, set_id,
question_id``, i.e. the same question over its figures) answered right on every figure;
``average`` = their mean (the Qwen2-VL report's "HallBench avg").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.tasks.base import MetricSpec, TaskResult
from evalkit.types import Record, Request, Sample, user_message

MME_PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
                  "artwork", "OCR")  # fmt: skip
MME_COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
#: the instruction every MME question ends with (lmms-eval's presets replace it)
MME_YES_NO_SUFFIX = " Please answer yes or no."


# --------------------------------------------------------------------------- parsing
def mme_parse(prediction: str, parser: str = "official") -> str:
    """``yes``, ``no`` or ``other`` by MME's rules (see the module docstring)."""
    if parser == "lmms_eval":
        text = (prediction or "").lower().strip().replace(".", "")
        if text in ("yes", "no"):
            return text
        if len(text) == 1:
            return {"y": "yes", "n": "no"}.get(text, "other")
    elif parser == "official":
        text = (prediction or "").lower()
        if text in ("yes", "no"):
            return text
    else:
        raise ValueError(f"unknown MME parser {parser!r}")
    head = text[:4]
    if "yes" in head:
        return "yes"
    return "no" if "no" in head else "other"


def yes_no_words(prediction: str) -> str:
    """``yes``, ``no`` or ``unknown`` (VLMEvalKit's rule: exactly one of the words present)."""
    words = re.sub(r"[^\w\s']", " ", (prediction or "").lower()).split()
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes and not has_no:
        return "yes"
    if has_no and not has_yes:
        return "no"
    return "unknown"


# --------------------------------------------------------------------------- grouped scores
def all_right_rate(items: Iterable[tuple[Hashable, float]]) -> tuple[float | None, int]:
    """The fraction of groups whose items are all right (1.0), and the number of groups."""
    groups: dict[Hashable, list[float]] = defaultdict(list)
    for key, correct in items:
        groups[key].append(correct)
    if not groups:
        return None, 0
    return sum(1 for v in groups.values() if all(c >= 1.0 for c in v)) / len(groups), len(groups)


def mme_subtask_scores(rows: Iterable[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """Per subtask ``{acc, acc_plus, score, n_questions, n_images}`` (acc and acc+ in percent) from
    ``(category, image key, correct)`` triples."""
    by_cat: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for category, image, correct in rows:
        by_cat[category].append((image, correct))
    out = {}
    for category, items in by_cat.items():
        acc = 100.0 * sum(c for _, c in items) / len(items)
        plus, n_images = all_right_rate(items)
        acc_plus = 100.0 * (plus or 0.0)
        out[category] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus,
                         "n_questions": len(items), "n_images": n_images}  # fmt: skip
    return out


def mme_totals(subtasks: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``perception``, ``cognition`` and ``total`` (sums of the subtask scores present)."""
    perception = sum(v["score"] for k, v in subtasks.items() if k in MME_PERCEPTION)
    cognition = sum(v["score"] for k, v in subtasks.items() if k in MME_COGNITION)
    return {"perception": perception, "cognition": cognition, "total": perception + cognition}


def hallusion_keys(meta: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
    """The (figure key or None when the question has no figure, question key) of one question."""
    base = tuple(str(meta.get(k, "")) for k in ("category", "subcategory", "set_id"))
    no_figure = str(meta.get("category")) == "VS" and str(meta.get("figure_id")) == "0"
    figure = None if no_figure else (*base, str(meta.get("figure_id", "")))
    return figure, (*base, str(meta.get("question_id", "")))


def hallusion_scores(rows: Sequence[tuple[Mapping[str, Any], float]]) -> dict[str, float | None]:
    """``aAcc``, ``fAcc``, ``qAcc`` and ``average`` (fractions) from ``(metadata, correct)`` pairs."""
    if not rows:
        return {"aAcc": None, "fAcc": None, "qAcc": None, "average": None}
    a_acc = sum(c for _, c in rows) / len(rows)
    figures, questions = [], []
    for meta, correct in rows:
        fkey, qkey = hallusion_keys(meta)
        if fkey is not None:
            figures.append((fkey, correct))
        questions.append((qkey, correct))
    f_acc, _ = all_right_rate(figures)
    q_acc, _ = all_right_rate(questions)
    parts = [v for v in (a_acc, f_acc, q_acc) if v is not None]
    return {"aAcc": a_acc, "fAcc": f_acc, "qAcc": q_acc, "average": sum(parts) / len(parts)}


# --------------------------------------------------------------------------- tasks
class MMETask(PromptedImageQATask):
    """MME: perception / cognition / total scores, (acc + acc+) x 100 per subtask."""

    version = "1"
    id_column = None
    answer_column = "answer"
    metadata_columns = ("category", "question_id")
    metrics = {
        "total": MetricSpec(kind="corpus"),
        "perception": MetricSpec(kind="corpus"),
        "cognition": MetricSpec(kind="corpus"),
        "accuracy": MetricSpec(score="correct"),
    }
    main_metric = "total"
    paper_scale = 1.0
    extra_fields = frozenset({"question_core"})
    parsers: ClassVar[tuple[str, ...]] = ("official", "lmms_eval")

    @property
    def parser(self) -> str:
        """``official`` (calculation.py) or ``lmms_eval``."""
        name = str(self.config.get("parser", "official"))
        if name not in self.parsers:
            raise UsageError(
                f"task {self.name}: parser must be one of {', '.join(self.parsers)}, got {name!r}"
            )
        return name

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``category``, ``image`` (the question_id shared by an image's questions) and ``eval_type``."""
        category, image = values.get("category"), values.get("question_id")
        meta: dict[str, Any] = {}
        if category is not None:
            meta["category"] = str(category)
            meta["eval_type"] = ("perception" if category in MME_PERCEPTION
                                 else "cognition" if category in MME_COGNITION else "unknown")  # fmt: skip
        if image is not None:
            meta["image"] = str(image)
        return meta

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """Adds ``{question_core}``: the question without its " Please answer yes or no."."""
        fields = super().prompt_fields(sample, row)
        fields["question_core"] = fields["question"].strip().replace(MME_YES_NO_SUFFIX, "")
        return fields

    def _gold(self, sample: Sample) -> str:
        gold = str(sample.target or "").lower().strip().replace(".", "")
        if gold not in ("yes", "no"):
            raise InputError(f"gold answer must be Yes or No, got {sample.target!r}")
        return gold

    def check_target(self, sample: Sample) -> list[str]:
        """The gold answer, ``yes`` or ``no``."""
        return [self._gold(sample)]

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """``correct``: the parsed answer equals the gold one (``other`` is wrong)."""
        try:
            gold = self._gold(sample)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return {"correct": 1.0 if mme_parse(prediction, self.parser) == gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``parsed``: yes / no / other."""
        return {"parsed": mme_parse(prediction, self.parser)}

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Subtask scores (breakdown ``category``), perception / cognition / total; counts of
        ``other`` answers and of images that do not have exactly two scored questions."""
        result = super().aggregate(records)
        scored = [
            r for r in records if r.error is None and "correct" in r.scores and "category" in r.metadata
        ]
        subtasks = mme_subtask_scores((r.metadata["category"], r.metadata.get("image", r.id), r.scores["correct"])
                                      for r in scored)  # fmt: skip
        result.metrics.update(
            mme_totals(subtasks) if subtasks else dict.fromkeys(("total", "perception", "cognition"))
        )
        for name in ("total", "perception", "cognition"):
            if result.metrics.get(name) is not None:
                result.notes.pop(name, None)  # the generic "no scored samples" note
        result.breakdowns["category"] = {k: subtasks[k] for k in sorted(subtasks)}  # type: ignore[dict-item]
        per_image: dict[tuple[str, str], int] = defaultdict(int)
        for r in scored:
            per_image[(r.metadata["category"], r.metadata.get("image", r.id))] += 1
        result.counts["other"] = sum(1 for r in scored if r.extra.get("parsed") == "other")
        result.counts["images_not_paired"] = sum(1 for n in per_image.values() if n != 2)
        unknown = sorted({r.metadata["category"] for r in scored if r.metadata.get("eval_type") == "unknown"})
        if unknown:
            result.notes["category"] = f"not an MME subtask (left out of the totals): {', '.join(unknown)}"
        if result.counts["images_not_paired"]:
            result.notes["acc_plus"] = (f"{result.counts['images_not_paired']} image(s) do not have exactly two "
                                        "scored questions; acc+ counts each such image by its scored questions")  # fmt: skip
        return result

    def protocol(self) -> dict[str, Any]:
        """Records the parser."""
        out = super().protocol()
        out["parser"] = self.parser
        out["metric"] = (
            "MME: per subtask (acc + acc+) x 100 (acc over questions, acc+ over images with all questions right); "
            "perception / cognition = sums over their subtasks; total = perception + cognition"
        )
        return out


class HallusionBenchTask(PromptedImageQATask):
    """HallusionBench: aAcc, fAcc, qAcc and their mean, deterministic yes/no reading."""

    version = "1"
    id_column = None
    answer_column = "gt_answer"
    metadata_columns = ("category", "subcategory", "visual_input", "set_id", "figure_id", "question_id")
    metrics = {
        "average": MetricSpec(kind="corpus"),
        "aAcc": MetricSpec(score="correct"),
        "fAcc": MetricSpec(kind="corpus"),
        "qAcc": MetricSpec(kind="corpus"),
    }
    main_metric = "average"

    def _gold(self, sample: Sample) -> str:
        gold = str(sample.target if sample.target is not None else "").strip()
        if gold not in ("0", "1"):
            raise InputError(f"gt_answer must be '1' (yes) or '0' (no), got {sample.target!r}")
        return "yes" if gold == "1" else "no"

    def check_target(self, sample: Sample) -> list[str]:
        """The gold answer, ``yes`` or ``no``."""
        return [self._gold(sample)]

    def build_request(self, sample: Sample) -> Request:
        """Image + question; a text-only question (``visual_input`` 0, no image) is sent without one."""
        if str(sample.metadata.get("visual_input")) != "0" or self.row(sample).get(self.image_column):
            return super().build_request(sample)
        self.check_target(sample)
        row = self.row(sample)
        prompt = self.prompt_template().format(**self.prompt_fields(sample, row))
        return Request(sample.id, (user_message(prompt),), self.generation(), task=self.name)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """``correct``; an unknown answer is wrong except on a VS question without its figure."""
        try:
            gold = self._gold(sample)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        parsed = yes_no_words(prediction)
        if parsed == "unknown" and hallusion_keys(sample.metadata)[0] is None:
            return {"correct": 1.0}
        return {"correct": 1.0 if parsed == gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``parsed``: yes / no / unknown."""
        return {"parsed": yes_no_words(prediction)}

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """aAcc, fAcc, qAcc, average; breakdowns by category (VD/VS) and subcategory."""
        result = super().aggregate(records)
        scored = [r for r in records if r.error is None and "correct" in r.scores]
        result.metrics.update(hallusion_scores([(r.metadata, r.scores["correct"]) for r in scored]))
        for name in ("average", "fAcc", "qAcc"):
            if result.metrics.get(name) is not None:
                result.notes.pop(name, None)  # the generic "no scored samples" note
        for key in ("category", "subcategory"):
            groups: dict[str, list[Record]] = defaultdict(list)
            for r in scored:
                if r.metadata.get(key) is not None:
                    groups[str(r.metadata[key])].append(r)
            if groups:
                result.breakdowns[key] = {
                    g: {**hallusion_scores([(r.metadata, r.scores["correct"]) for r in rs]), "n": len(rs)}
                    for g, rs in sorted(groups.items())
                }  # type: ignore[dict-item]
        result.counts["unknown"] = sum(1 for r in scored if r.extra.get("parsed") == "unknown")
        return result

    def protocol(self) -> dict[str, Any]:
        """Records the parsing and grouping rules."""
        out = super().protocol()
        out["parser"] = (
            "yes_no_words (VLMEvalKit): exactly one of yes/no among the words; else unknown = wrong"
        )
        out["metric"] = (
            "aAcc over questions; fAcc over figures (category, subcategory, set_id, figure_id; VS figure 0 "
            "excluded); qAcc over questions across figures (category, subcategory, set_id, question_id); "
            "average = mean of the three"
        )
        return out


__all__ = [
    "HallusionBenchTask",
    "MMETask",
    "MME_COGNITION",
    "MME_PERCEPTION",
    "all_right_rate",
    "hallusion_keys",
    "hallusion_scores",
    "mme_parse",
    "mme_subtask_scores",
    "mme_totals",
    "yes_no_words",
]
