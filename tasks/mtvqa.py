"""MTVQA: multilingual text-centric VQA (9 languages), official substring-match accuracy.

Data: ``ByteDance/MTVQA``, split ``test`` (2,116 images, 6,778 QA pairs). Columns: ``image``,
``qa_pairs`` (a *string* holding a list of ``{"question": ..., "answer": ...}`` dicts, JSON or
Python literal), ``lang`` (AR, DE, FR, IT, JA, KO, RU, TH, VI), ``id`` (int). Rows are images; the
task flattens them to one sample per QA pair with id ``<id>_<k>`` (``k`` = position of the pair in
the list, the same ids lmms-eval logs as ``question_id``) and ``metadata.language``.

Metric (official ``scripts/acc.py``): correct iff the lower-cased, stripped answer is a substring of
the lower-cased, stripped prediction with its periods removed
(:func:`evalkit.metrics.mtvqa_match`). Reported:

* ``accuracy_macro`` — the official average: mean of the per-language accuracies (main metric);
* ``accuracy_micro`` — pooled over all QA pairs (what lmms-eval reports);
* ``accuracy_<lang>`` for each of the 9 languages, and ``breakdowns.language``.

Bad rows never stop a run: an unparsable ``qa_pairs`` becomes one error sample ``<id>_qa_pairs``,
a pair without a question/answer (or a row without ``lang``) becomes an error record.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from typing import Any

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError
from evalkit.metrics import mtvqa_match
from evalkit.tasks.base import MetricSpec
from evalkit.types import Request, Sample

LANGUAGES = ("AR", "DE", "FR", "IT", "JA", "KO", "RU", "TH", "VI")


def parse_qa_pairs(value: Any) -> list[Any]:
    """The list inside a ``qa_pairs`` cell (a JSON or Python-literal string, or already a list).

    Raises:
        InputError: the cell is missing, unparsable or not a non-empty list.
    """
    if isinstance(value, list):
        pairs = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise InputError("malformed qa_pairs: empty string")
        try:
            pairs = json.loads(text)
        except RecursionError:
            raise InputError("malformed qa_pairs: nested too deeply") from None
        except json.JSONDecodeError:
            try:
                pairs = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
                raise InputError(
                    f"malformed qa_pairs: not a JSON/Python list ({type(exc).__name__})"
                ) from None
    else:
        raise InputError(f"malformed qa_pairs: expected a string, got {type(value).__name__}")
    if not isinstance(pairs, list):
        raise InputError(f"malformed qa_pairs: expected a list, got {type(pairs).__name__}")
    if not pairs:
        raise InputError("malformed qa_pairs: no QA pairs")
    return pairs


class MTVQATask(PromptedImageQATask):
    """MTVQA test: one sample per QA pair, per-language / macro (official) / micro accuracy."""

    version = "1"
    id_column = "id"
    cluster_key = "image"  # several questions per image: intervals resample whole images
    answer_column = "answer"
    breakdown_keys = ("language",)
    scorer = "mtvqa_match"
    metrics = {
        "accuracy_macro": MetricSpec(score="accuracy", kind="macro", group="language"),
        "accuracy_micro": MetricSpec(score="accuracy"),
        **{
            f"accuracy_{lang.lower()}": MetricSpec(score="accuracy", where={"language": lang})
            for lang in LANGUAGES
        },
    }
    main_metric = "accuracy_macro"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self._pairs: dict[str, Any] = {}

    def samples(self) -> list[Sample]:
        """Flatten the rows' ``qa_pairs`` (see the module docstring for ids and bad rows)."""
        cols = self._columns(["id", "lang", "qa_pairs"])
        out: list[Sample] = []
        self._pairs = {}
        for i in range(len(self.dataset)):
            key = str(cols["id"][i]) if cols["id"][i] is not None else f"row-{i}"
            lang = cols["lang"][i]
            meta = {"language": lang.strip().upper()} if isinstance(lang, str) and lang.strip() else {}
            meta["image"] = key  # the questions of one image form a cluster (cluster_key)
            try:
                pairs = parse_qa_pairs(cols["qa_pairs"][i])
            except InputError as exc:
                sid = f"{key}_qa_pairs"
                self._pairs[sid] = exc
                out.append(Sample(id=sid, index=i, target=None, metadata=meta))
                continue
            for k, pair in enumerate(pairs):
                sid = f"{key}_{k}"
                self._pairs[sid] = pair
                answer = pair.get("answer") if isinstance(pair, Mapping) else None
                out.append(
                    Sample(id=sid, index=i, target=answer if self.has_targets else None, metadata=meta)
                )
        return out

    def _pair(self, sample: Sample) -> Any:
        if not self._pairs:
            self.samples()
        return self._pairs.get(sample.id)

    def _valid_pair(self, sample: Sample) -> Mapping[str, Any]:
        """The pair as a dict; an :class:`InputError` for a malformed row or pair."""
        pair = self._pair(sample)
        if isinstance(pair, InputError):
            raise pair
        if not isinstance(pair, Mapping):
            raise InputError(f"malformed qa_pairs entry: expected a dict, got {type(pair).__name__}")
        return pair

    def sample_question(self, sample: Sample) -> str | None:
        """The question of this QA pair."""
        pair = self._pair(sample)
        q = pair.get("question") if isinstance(pair, Mapping) else None
        return q if isinstance(q, str) else None

    def external_sample_id(self, doc: Mapping[str, Any]) -> str | None:
        """lmms-eval logs flattened docs with ``question_id = "<id>_<k>"``."""
        value = doc.get("question_id")
        return None if value is None else str(value)

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """The pair's question."""
        pair = self._valid_pair(sample)
        q = pair.get("question")
        if not isinstance(q, str) or not q.strip():
            raise InputError("malformed qa_pairs entry: missing or empty 'question'")
        return {"question": q.strip(), "question_capitalized": q.strip().capitalize()}

    def build_request(self, sample: Sample) -> Request:
        """Malformed rows/pairs and rows without a language are input errors."""
        pair = self._valid_pair(sample)
        if "language" not in sample.metadata:
            raise InputError("missing or empty 'lang' field")
        if self.has_targets:
            answer = pair.get("answer")
            if not isinstance(answer, str) or not answer.strip():
                raise InputError("malformed qa_pairs entry: missing or empty 'answer'")
        return super().build_request(sample)

    def check_target(self, sample: Sample) -> list[str]:
        """The pair's answer (a single string)."""
        if not isinstance(sample.target, str) or not sample.target.strip():
            raise InputError("missing or empty 'answer' in qa_pairs")
        return [sample.target]

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Official MTVQA substring match."""
        return {"accuracy": mtvqa_match(prediction, self.scored_answers(sample))}

    def protocol(self) -> dict[str, Any]:
        """Records the metric definition and the macro/micro naming."""
        out = super().protocol()
        out["metric"] = (
            "MTVQA acc.py: answer.strip().lower() in prediction.strip().lower().replace('.', ''); "
            "accuracy_macro = mean of per-language accuracies (official), accuracy_micro = pooled"
        )
        return out
