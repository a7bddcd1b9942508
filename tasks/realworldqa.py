"""RealWorldQA: real-world spatial questions, most multiple choice, scored deterministically.

Data: ``lmms-lab-encoder/RealWorldQA`` (formerly ``lmms-lab/RealWorldQA``; or ``xai-org/RealworldQA``),
split ``test``, 765 rows; columns ``image``, ``question``, ``answer``. The multiple-choice questions carry their options (``A. ...``)
and the answer-format instruction inside the question text, so the prompt is the question as stored.

Scoring (protocols.md):

* gold answer a letter A-D -> the letter extracted from the prediction by
  :func:`evalkit.metrics.extract_choice` (versioned rules, never random; the option texts parsed
  from the question are passed for its last rule) must equal it. An answer no letter can be
  extracted from scores 0 and is counted as ``unparsed``;
* otherwise -> case-insensitive exact match after stripping a trailing period
  (:func:`evalkit.metrics.exact_match`).

Each record stores the extracted choice (``extracted``) and the extractor version is recorded in
``protocol.extractor_version``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.judge.choice import ChoiceFallback
from evalkit.metrics import exact_match, extract_choice
from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.metrics.match import normalize_exact_match
from evalkit.tasks.base import MetricSpec
from evalkit.types import Record, Sample

CHOICES = ("A", "B", "C", "D")
_OPTION_LINE = re.compile(r"^\s*([A-D])[.)]\s+(.+?)\s*$", re.MULTILINE)


def answer_format(target: Any) -> str:
    """``choice`` when the gold answer is one of the letters A-D, else ``free``."""
    return "choice" if isinstance(target, str) and target.strip().upper() in CHOICES else "free"


def parse_options(question: str) -> dict[str, str]:
    """The ``A. text`` option lines of a question (first occurrence of each letter)."""
    options: dict[str, str] = {}
    for letter, text in _OPTION_LINE.findall(question):
        options.setdefault(letter, text)
    return options


class RealWorldQATask(ChoiceFallback, PromptedImageQATask):
    """RealWorldQA test: accuracy with deterministic, versioned choice extraction."""

    version = "2"
    id_column = None
    answer_column = "answer"
    breakdown_keys = ("answer_format",)
    metrics = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"
    scorer = "exact_match"  # free-form answers; letters go through extract_choice (see score)

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``answer_format``: choice (gold is a letter A-D) or free."""
        return {"answer_format": answer_format(values.get(self.answer_column))}

    def _gold(self, sample: Sample) -> str:
        answers = self.check_target(sample)
        if len(answers) != 1:
            raise ValueError(f"expected one gold answer, got {len(answers)}")
        return answers[0]

    def _options(self, sample: Sample) -> dict[str, str]:
        question = self.sample_question(sample)
        return parse_options(question) if question else {}

    def mcq_item(self, sample: Sample) -> tuple[dict[str, str], str | None, str] | None:
        """Options, question and gold letter of a multiple-choice sample (for the LLM fallback)."""
        try:
            gold = self._gold(sample)
        except Exception:
            return None
        if answer_format(gold) != "choice":
            return None
        return (
            self._options(sample) or {c: c for c in CHOICES},
            self.sample_question(sample),
            gold.strip().upper(),
        )

    def extract(self, sample: Sample, prediction: str) -> str | None:
        """The letter chosen by the prediction (None when none can be extracted unambiguously)."""
        return extract_choice(prediction, CHOICES, options=self._options(sample) or None)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """1.0 / 0.0: extracted letter vs gold letter, or normalised exact match for free-form gold."""
        try:
            gold = self._gold(sample)
        except Exception as exc:  # InputError from check_target, or a malformed target
            raise ValueError(str(exc)) from None
        if answer_format(gold) == "choice":
            return {"accuracy": 1.0 if self.extract(sample, prediction) == gold.strip().upper() else 0.0}
        return {"accuracy": exact_match(prediction, [gold])}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extracted``: the letter found (None = unparsed) or the normalised free-form answer."""
        if sample.metadata.get("answer_format") == "choice":
            return {"extracted": self.extract(sample, prediction)}
        return {"extracted": normalize_exact_match(prediction)}

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """``unparsed``: scored multiple-choice samples from which no letter could be extracted."""
        unparsed = sum(
            1
            for r in records
            if r.error is None
            and r.metadata.get("answer_format") == "choice"
            and "accuracy" in r.scores
            and r.extra.get("extracted") is None
        )
        return {**super().counts(records), "unparsed": unparsed}

    def protocol(self) -> dict[str, Any]:
        """Records the extractor version and the scoring rule."""
        out = super().protocol()
        out["metric"] = (
            "accuracy: gold letter A-D vs extract_choice(prediction) (unextractable = wrong, counted as "
            "unparsed); otherwise case-insensitive exact match after stripping a trailing period"
        )
        out["extractor_version"] = EXTRACTOR_VERSION
        return out
