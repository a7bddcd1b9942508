"""VCR (Visual Caption Restoration), easy mode, English and Chinese: restore the text covered in
an image; exact match and Jaccard index per covered span, as the VCR repository scores them.

Data: ``vcr-org/VCR-wiki-en-easy-test`` / ``vcr-org/VCR-wiki-zh-easy-test``, split ``test``.
Columns: ``question_id``, ``image`` (the original image), ``caption`` (the full caption),
``stacked_image`` (the image stacked over the caption with the spans masked — what the model
sees), ``only_it_image``, ``only_it_image_small``, ``crossed_text`` (the covered spans, a list).

Scoring (VCR ``evaluation_metrics.py``; lmms-eval ``vcr_wiki``), for each covered span:

1. a refusal ("I can't", "I cannot", "sorry", "无法", "抱歉") scores 0;
2. prediction and span are tokenised (spaCy ``en_core_web_sm`` / ``zh_core_web_sm`` in the
   official code; see :func:`tokenize`); every n-gram of the prediction with n = the span's token
   count that shares a token with the span is a candidate, and the candidate with the highest
   ``difflib.SequenceMatcher`` ratio against the span (joined with " " in English, "" in Chinese)
   is kept (the first one on ties);
3. exact match = the candidate's tokens equal the span's tokens; Jaccard = |set ∩| / |set ∪| of
   their tokens. No candidate → 0.

Each metric is the mean over all spans of all images (not per image).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.tasks.base import MetricSpec, TaskResult
from evalkit.types import Record, Sample

LANGUAGES = ("en", "zh")
REFUSALS_CASED = ("I can't", "I cannot", "无法", "抱歉")
#: a spaCy-like English tokenizer: numbers with separators, clitics ('s, n't, 're...) and infix
#: hyphens as their own tokens, single punctuation marks
_EN_TOKEN = re.compile(
    r"\d+(?:[.,]\d+)*|[nN]['’][tT]\b|['’](?:[sS]|re|ll|ve|d|m)\b|\w+(?=[nN]['’][tT]\b)|\w+|[^\w\s]",
    re.UNICODE,
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_refusal(text: str) -> bool:
    """The VCR ``fast_filter``: the answer refuses or apologises."""
    return any(r in text for r in REFUSALS_CASED) or "sorry" in text.lower()


@lru_cache(maxsize=2)
def _spacy_pipeline(language: str) -> Any:
    try:
        import spacy

        return spacy.load("en_core_web_sm" if language == "en" else "zh_core_web_sm")
    except Exception:  # spaCy or its model not installed
        return None


def tokenizer_name(language: str, preference: str = "auto") -> str:
    """The tokenizer :func:`tokenize` uses: ``spacy`` (the official one, when installed) or ``regex``."""
    if preference not in ("auto", "spacy", "regex"):
        raise UsageError(f"vcr tokenizer must be auto, spacy or regex, got {preference!r}")
    if preference == "regex":
        return "regex"
    if _spacy_pipeline(language) is not None:
        return "spacy"
    if preference == "spacy":
        model = "en_core_web_sm" if language == "en" else "zh_core_web_sm"
        raise UsageError(f"tokenizer=spacy needs spaCy and its {model} model installed")
    return "regex"


def tokenize(text: str, language: str, tokenizer: str = "regex") -> list[str]:
    """Tokens of ``text``: spaCy's (official) or the regex approximation — English: words, numbers
    (``1,889``, ``3.5``), clitics (``World`` ``'s``, ``do`` ``n't``) and single punctuation marks
    (hyphens included); Chinese: one token per CJK character, other runs as in English."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be en or zh, got {language!r}")
    if tokenizer == "spacy":
        nlp = _spacy_pipeline(language)
        return [t.text for t in nlp(text)]
    if language == "en":
        return _EN_TOKEN.findall(text)
    tokens: list[str] = []
    for piece in _EN_TOKEN.findall(text):
        if _CJK.search(piece):
            tokens.extend(ch for ch in piece if not ch.isspace())
        else:
            tokens.append(piece)
    return tokens


def span_scores(span: str, prediction: str, language: str, tokenizer: str = "regex") -> dict[str, Any]:
    """Exact match and Jaccard of one covered span against a prediction (see the module docstring)."""
    zero = {"exact_match": 0.0, "jaccard": 0.0, "best_ngram": ""}
    if is_refusal(prediction):
        return zero
    pred_tokens = tokenize(prediction, language, tokenizer)
    span_tokens = tokenize(span, language, tokenizer)
    n = len(span_tokens)
    if n == 0 or len(pred_tokens) < n:
        return zero
    splitter = " " if language == "en" else ""
    span_set = set(span_tokens)
    best_val, best_ngram = 0.0, None
    for i in range(len(pred_tokens) - n + 1):
        gram = pred_tokens[i : i + n]
        if span_set.isdisjoint(gram):
            continue
        value = SequenceMatcher(None, splitter.join(gram), span).ratio()
        if value > best_val:
            best_val, best_ngram = value, gram
    if best_ngram is None:
        return zero
    pred_set = set(best_ngram)
    union = pred_set | span_set
    return {
        "exact_match": 1.0 if list(best_ngram) == list(span_tokens) else 0.0,
        "jaccard": len(pred_set & span_set) / len(union) if union else 0.0,
        "best_ngram": splitter.join(best_ngram),
    }


class VCRTask(PromptedImageQATask):
    """VCR-wiki easy test (``language: en | zh``): exact match and Jaccard over covered spans."""

    version = "1"
    id_column = "question_id"
    answer_column = "crossed_text"
    image_column = "stacked_image"
    question_column = "caption"
    metrics = {
        "exact_match": MetricSpec(kind="corpus"),
        "jaccard": MetricSpec(kind="corpus"),
    }
    main_metric = "exact_match"
    scorer = "exact_match"
    base_fields = frozenset()

    @property
    def language(self) -> str:
        """``en`` or ``zh`` (config ``language``)."""
        lang = str(self.config.get("language") or "en")
        if lang not in LANGUAGES:
            raise UsageError(f"task {self.name}: language must be en or zh, got {lang!r}")
        return lang

    @property
    def tokenizer(self) -> str:
        """The tokenizer actually used (``spacy`` or ``regex``; config ``tokenizer: auto``)."""
        return tokenizer_name(self.language, str(self.config.get("tokenizer") or "auto"))

    def sample_id(self, values: Any, index: int) -> str:
        """The dataset's ``question_id``, or the row index when the column is absent."""
        sid = values.get(self.id_column)
        return str(index) if sid is None else str(sid)

    def sample_question(self, sample: Sample) -> str | None:
        """VCR has no per-sample question (the prompt is fixed), so files align by id only."""
        return None

    def prompt_fields(self, sample: Sample, row: Any) -> dict[str, str]:
        """The prompt is fixed (no per-sample fields): the instruction of the preset."""
        return {}

    def check_target(self, sample: Sample) -> list[str]:
        """The covered spans: a non-empty list of non-empty strings."""
        spans = sample.target
        if not isinstance(spans, list | tuple) or not spans:
            raise InputError("missing or empty 'crossed_text' (need a list of covered spans)")
        if not all(isinstance(s, str) and s.strip() for s in spans):
            raise InputError("'crossed_text' must hold non-empty strings")
        return list(spans)

    def span_results(self, sample: Sample, prediction: str) -> list[dict[str, Any]]:
        """One :func:`span_scores` result per covered span."""
        tok = self.tokenizer
        return [span_scores(s, prediction, self.language, tok) for s in self.check_target(sample)]

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Per image: the sums over its spans (``*_sum``), the span count, and the image means."""
        try:
            results = self.span_results(sample, prediction)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        n = len(results)
        em = sum(r["exact_match"] for r in results)
        jac = sum(r["jaccard"] for r in results)
        return {"exact_match_sum": em, "jaccard_sum": jac, "n_spans": float(n),
                "exact_match": em / n, "jaccard": jac / n}  # fmt: skip

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """The best-matching n-gram per span."""
        try:
            return {"best_ngrams": [r["best_ngram"] for r in self.span_results(sample, prediction)]}
        except InputError:
            return {}

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Means over all spans of all scored images (the VCR aggregation)."""
        result = super().aggregate(records)
        scored = [r for r in records if r.error is None and "n_spans" in r.scores]
        spans = sum(r.scores["n_spans"] for r in scored)
        for name in ("exact_match", "jaccard"):
            result.metrics[name] = sum(r.scores[f"{name}_sum"] for r in scored) / spans if spans else None
        result.counts["spans"] = int(spans)
        return result

    def protocol(self) -> dict[str, Any]:
        """Language, tokenizer and the rule."""
        out = super().protocol()
        out["language"] = self.language
        out["tokenizer"] = self.tokenizer
        out["metric"] = (
            "VCR: per covered span, best n-gram of the prediction (SequenceMatcher ratio, n = span tokens) -> "
            "exact match of tokens and Jaccard of token sets; refusals score 0; mean over all spans"
        )
        return out
