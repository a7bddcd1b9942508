"""MMBench (``mmbench_en_dev``, ``mmbench_cn_dev``, ``mmbench_v11_dev`` and their ``_test`` variants)
and the shared plumbing of multiple-choice tasks whose options sit in columns ``A``, ``B``, ...
(MMT-Bench reuses it, see :mod:`evalkit.plugins.mmstar`).

Data: ``lmms-lab/MMBench`` (configs ``en`` / ``cn``; splits ``dev`` with answers, ``test`` without),
columns ``index``, ``question``, ``hint``, ``A``-``D``, ``answer``, ``category``, ``image``,
``source``, ``L2-category``, ``comment``, ``split``. Missing options are null or the string ``"nan"``
(the TSV heritage); a missing hint likewise.

**CircularEval** (the MMBench paper; VLMEvalKit/lmms-eval group rows by ``index % 1_000_000``): a
question with *n* options is asked *n* times with its options rotated (shift *k*: the new option
``A`` is the old option at position *k*, and so on; the gold letter moves with its text); it counts
as right only if **every** shift is answered right. ``circular: expand`` (default) generates the
shifts from the stored questions (sample ids ``index + k * 1_000_000``, as VLMEvalKit numbers them);
``circular: stored`` uses the rows as stored and groups them by ``index % 1_000_000`` (for TSVs
that already contain the shifted copies). ``accuracy_vanilla`` is the plain accuracy of the
unshifted questions (shift 0), ``accuracy_all_shifts`` the accuracy over every asked row.

Letters are extracted deterministically (:func:`evalkit.metrics.extract_choice`, versioned); the
official protocol's LLM matcher is available as the opt-in ``task.choice_fallback=judge``
(:class:`~evalkit.judge.choice.ChoiceFallback`). On ``test`` splits the task writes the submission
table (TSV, one row per asked question, VLMEvalKit's columns plus ``prediction``) instead of scores.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.judge.choice import ChoiceFallback
from evalkit.metrics import extract_choice
from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.tasks.base import MetricSpec, TaskResult, _mean
from evalkit.types import Record, Sample

#: VLMEvalKit's numbering of circular copies: shift k of question i has index i + k * CIRCULAR_STRIDE
CIRCULAR_STRIDE = 1_000_000


# --------------------------------------------------------------------------- pure helpers
def present_text(value: Any) -> str | None:
    """A cell's text, or None when it is null, empty or the TSV placeholder ``"nan"``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return None if not text or text.lower() == "nan" else text


def option_columns(values: Mapping[str, Any], letters: str) -> dict[str, str]:
    """The options of a row, in letter order, stopping at the first missing letter (``A``, ``B``...)."""
    out: dict[str, str] = {}
    for letter in letters:
        text = present_text(values.get(letter))
        if text is None:
            break
        out[letter] = text
    return out


def rotate_options(
    options: Mapping[str, str], gold: str | None, shift: int
) -> tuple[dict[str, str], str | None]:
    """Options rotated by ``shift`` (new ``A`` = old option at position ``shift``) and the moved gold letter."""
    letters = list(options)
    texts = [options[k] for k in letters]
    n = len(texts)
    rotated = {letters[j]: texts[(j + shift) % n] for j in range(n)}
    if gold is None or gold not in options:
        return rotated, None
    return rotated, letters[(letters.index(gold) - shift) % n]


def circular_group(index: int) -> int:
    """The question a (possibly shifted) row belongs to: ``index % 1_000_000``."""
    return index % CIRCULAR_STRIDE


def circular_accuracy(rows: Iterable[tuple[int, float]]) -> tuple[float | None, int]:
    """CircularEval over ``(index, correct)`` pairs: the fraction of question groups
    (``index % 1_000_000``) whose rows are all correct, and the number of groups."""
    groups: dict[int, list[float]] = defaultdict(list)
    for index, correct in rows:
        groups[circular_group(index)].append(correct)
    if not groups:
        return None, 0
    hits = sum(1 for v in groups.values() if all(c >= 1.0 for c in v))
    return hits / len(groups), len(groups)


def _int_index(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- shared MCQ plumbing
class ChoiceColumnsTask(ChoiceFallback, PromptedImageQATask):
    """Single-image multiple choice with the options in letter columns and a gold letter.

    Subclasses set :attr:`option_letters`, the metadata column names and the metrics. Every sample
    keeps its (possibly rotated) options in :attr:`items` so scoring, the LLM fallback and the
    submission file see exactly what the model was shown.
    """

    id_column = "index"
    answer_column = "answer"
    option_letters: ClassVar[str] = "ABCD"
    #: dataset column -> metadata key
    meta_columns: ClassVar[Mapping[str, str]] = {}
    hidden_answer_splits = frozenset({"test"})
    extra_fields = frozenset({"options", "options_colon", "hint", "hint_lead", "hint_line"})
    scorer = "exact_match"  # informational; score() compares extracted letters

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        #: sample id -> (options shown, gold letter or None, question, hint)
        self.items: dict[str, tuple[dict[str, str], str | None, str | None, str | None]] = {}

    # ----------------------------------------------------------------- samples
    def read_columns(self) -> dict[str, list[Any]]:
        names = [self.id_column, self.answer_column, self.question_column, "hint",
                 *self.option_letters, *self.meta_columns]  # fmt: skip
        return self._columns(list(dict.fromkeys(n for n in names if n)))

    def shifts(self, n_options: int, index: int | None) -> list[int]:
        """The option rotations asked for one row (default: only the row as stored)."""
        return [0]

    def samples(self) -> list[Sample]:
        """One sample per asked (row, shift); options and gold letters kept in :attr:`items`."""
        cols = self.read_columns()
        out: list[Sample] = []
        self.items = {}
        for i in range(len(self.dataset)):
            values = {c: v[i] for c, v in cols.items()}
            options = option_columns(values, self.option_letters)
            gold = present_text(values.get(self.answer_column)) if self.has_targets else None
            gold = gold.strip().upper() if gold else None
            meta = {key: values[col] for col, key in self.meta_columns.items() if values.get(col) is not None}
            index = _int_index(values.get(self.id_column))
            question = values.get(self.question_column)
            hint = present_text(values.get("hint"))
            base_id = self.sample_id(values, i)
            for shift in self.shifts(len(options), index) if options else [0]:
                shown, moved = rotate_options(options, gold, shift) if options else ({}, gold)
                sid = str(index + shift * CIRCULAR_STRIDE) if index is not None and shift else base_id
                sample_meta = dict(meta)
                if index is not None:
                    sample_meta.update(self.index_metadata(index + shift * CIRCULAR_STRIDE))
                self.items[sid] = (shown, moved, question if isinstance(question, str) else None, hint)
                out.append(Sample(id=sid, index=i, target=moved, metadata=sample_meta))
        return out

    def index_metadata(self, index: int) -> dict[str, Any]:
        """Metadata derived from a row's (shifted) index (default: none)."""
        return {}

    def _item(self, sample: Sample) -> tuple[dict[str, str], str | None, str | None, str | None]:
        if not self.items:
            self.samples()
        return self.items.get(sample.id, ({}, None, None, None))

    def sample_question(self, sample: Sample) -> str | None:
        """The question text (``evalkit score`` alignment checks)."""
        return self._item(sample)[2]

    # ----------------------------------------------------------------- requests
    def check_target(self, sample: Sample) -> list[str]:
        """The gold letter, which must name one of the sample's options."""
        options, gold, _, _ = self._item(sample)
        if len(options) < 2:
            raise InputError(f"need at least two options in columns {', '.join(self.option_letters[:2])}")
        if not gold:
            raise InputError(f"missing gold letter in '{self.answer_column}'")
        if gold not in options:
            raise InputError(f"gold letter {gold!r} is not one of the options {''.join(options)}")
        return [gold]

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """``{question}``, ``{options}`` (``A. text`` lines), ``{options_colon}`` (``A: text``),
        ``{hint}``, ``{hint_lead}`` (``"<hint> "`` or empty), ``{hint_line}`` (``"Hint: <hint>\\n"`` or empty)."""
        options, _, _, hint = self._item(sample)
        if len(options) < 2:
            raise InputError(f"need at least two options in columns {', '.join(self.option_letters[:2])}")
        fields = super().prompt_fields(sample, row)
        fields["options"] = "\n".join(f"{k}. {v}" for k, v in options.items())
        fields["options_colon"] = "\n".join(f"{k}: {v}" for k, v in options.items())
        fields["hint"] = hint or ""
        fields["hint_lead"] = f"{hint} " if hint else ""
        fields["hint_line"] = f"Hint: {hint}\n" if hint else ""
        return fields

    # ----------------------------------------------------------------- scoring
    def extract(self, sample: Sample, prediction: str) -> str | None:
        """The letter the prediction chose (None when no letter can be read unambiguously)."""
        options = self._item(sample)[0]
        letters = tuple(options) or tuple(self.option_letters)
        return extract_choice(prediction, letters, options=options or None)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """``accuracy``: 1.0 when the extracted letter is the gold letter."""
        try:
            gold = self.check_target(sample)[0]
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return {"accuracy": 1.0 if self.extract(sample, prediction) == gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extracted``: the letter read from the prediction (None = unparsed)."""
        return {"extracted": self.extract(sample, prediction)}

    def mcq_item(self, sample: Sample) -> tuple[dict[str, str], str | None, str] | None:
        """Options, question and gold letter for the opt-in LLM fallback."""
        options, gold, question, _ = self._item(sample)
        return (options, question, gold) if options and gold else None

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """``unparsed``: scored samples from which no letter could be extracted."""
        unparsed = sum(1 for r in records if r.error is None and "accuracy" in r.scores
                       and r.extra.get("extracted") is None)  # fmt: skip
        return {**super().counts(records), "unparsed": unparsed}

    # ----------------------------------------------------------------- submission
    def submission_row(self, record: Record, sample: Sample | None) -> dict[str, Any]:
        """One row of the submission table."""
        options, _, question, hint = self._item(sample) if sample is not None else ({}, None, None, None)
        prediction = record.prediction if record.error is None and isinstance(record.prediction, str) else ""
        row: dict[str, Any] = {"index": record.id, "question": question or "", "hint": hint or ""}
        for letter in self.option_letters:
            row[letter] = options.get(letter, "")
        row["prediction"] = " ".join(prediction.split())
        extracted = self.extract(sample, prediction) if sample is not None and prediction else None
        row["extracted"] = extracted or ""
        for key in self.meta_columns.values():
            row[key] = record.metadata.get(key, "")
        return row

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """The submission table as TSV (``submission/<task>.tsv``), one row per asked question."""
        by_id = {s.id: s for s in self.samples()}
        rows = [self.submission_row(r, by_id.get(r.id)) for r in records]
        path = path.with_suffix(".tsv")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as f:
            header = list(rows[0]) if rows else ["index", "prediction"]
            writer = csv.DictWriter(f, fieldnames=header, delimiter="\t")
            writer.writeheader()
            writer.writerows(rows)
        return path

    def protocol(self) -> dict[str, Any]:
        """Adds the extraction rules and their version."""
        out = super().protocol()
        out["metric"] = "accuracy: gold letter vs extract_choice(prediction, shown options); unparsed = wrong"
        out["extractor_version"] = EXTRACTOR_VERSION
        return out


def breakdown_by(records: Sequence[Record], key: str, fn: Any) -> dict[str, dict[str, Any]]:
    """``{group: fn(records of the group)}`` over the scored records that carry ``metadata[key]``."""
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.error is None and r.metadata.get(key) is not None:
            groups[str(r.metadata[key])].append(r)
    return {g: fn(groups[g]) for g in sorted(groups)}


# --------------------------------------------------------------------------- MMBench
class MMBenchTask(ChoiceColumnsTask):
    """MMBench dev (CircularEval + vanilla accuracy) and test (submission table)."""

    version = "1"
    option_letters = "ABCD"
    meta_columns = {"category": "category", "L2-category": "l2_category", "l2-category": "l2_category"}
    metrics = {
        "accuracy_circular": MetricSpec(kind="corpus"),
        "accuracy_vanilla": MetricSpec(score="accuracy", where={"shift": 0}),
        "accuracy_all_shifts": MetricSpec(score="accuracy"),
    }
    main_metric = "accuracy_circular"

    @property
    def circular_mode(self) -> str:
        """``expand`` (generate the shifts) or ``stored`` (rows as stored, grouped by index)."""
        mode = str(self.config.get("circular", "expand"))
        if mode not in ("expand", "stored"):
            raise UsageError(f"task {self.name}: circular must be 'expand' or 'stored', got {mode!r}")
        return mode

    def shifts(self, n_options: int, index: int | None) -> list[int]:
        """Every rotation of a stored question in ``expand`` mode; the row itself otherwise."""
        if self.circular_mode == "expand" and index is not None and index < CIRCULAR_STRIDE:
            return list(range(max(n_options, 1)))
        return [0]

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.dropped_copies = 0
        self._stored_copy_rows: set[int] = set()

    def samples(self) -> list[Sample]:
        """In ``expand`` mode, rows stored as shifted copies (index >= 1e6) are dropped: their
        shifts are regenerated from the original question (counted as ``stored_copies_dropped``)."""
        out = super().samples()
        kept = [s for s in out if s.index not in self._stored_copy_rows]
        self.dropped_copies = len(out) - len(kept)
        return kept

    def index_metadata(self, index: int) -> dict[str, Any]:
        """``question`` (the circular group) and ``shift`` (0 = as published)."""
        meta: dict[str, Any] = {"question": circular_group(index), "shift": index // CIRCULAR_STRIDE}
        return meta

    def read_columns(self) -> dict[str, list[Any]]:
        cols = super().read_columns()
        if self.circular_mode == "expand":
            # rows stored as shifted copies (index >= 1e6) are regenerated, so they are dropped
            idx = [_int_index(v) for v in cols[self.id_column]]
            self._stored_copy_rows = {i for i, v in enumerate(idx) if v is not None and v >= CIRCULAR_STRIDE}
        else:
            self._stored_copy_rows = set()
        return cols

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Circular accuracy over question groups (a group with an errored row is left out and
        counted), vanilla and all-shift accuracy; breakdowns by category and L2 category."""
        result = super().aggregate(records)
        if not self.has_targets:
            return result
        errored_groups = {r.metadata.get("question") for r in records if r.error is not None} - {None}
        usable = [r for r in records if r.error is None and "accuracy" in r.scores
                  and r.metadata.get("question") not in errored_groups]  # fmt: skip

        def circ(rs: Sequence[Record]) -> dict[str, Any]:
            acc, n = circular_accuracy((int(r.metadata["question"]) + int(r.metadata["shift"]) * CIRCULAR_STRIDE,
                                        r.scores["accuracy"]) for r in rs if "question" in r.metadata)  # fmt: skip
            vanilla = _mean([r.scores["accuracy"] for r in rs if r.metadata.get("shift") == 0])
            return {"accuracy_circular": acc, "accuracy_vanilla": vanilla, "n": n}

        overall = circ(usable)
        result.metrics["accuracy_circular"] = overall["accuracy_circular"]
        if overall["accuracy_circular"] is not None:
            result.notes.pop("accuracy_circular", None)  # the generic "no scored samples" note
        for key in ("category", "l2_category"):
            table = breakdown_by(usable, key, circ)
            if table:
                result.breakdowns[key] = table
        result.counts["questions"] = overall["n"]
        result.counts["stored_copies_dropped"] = self.dropped_copies
        result.counts["questions_with_errors"] = len(errored_groups)
        if errored_groups:
            result.notes["accuracy_circular"] = (
                f"{len(errored_groups)} question(s) had an errored shift and are left out of "
                "accuracy_circular"
            )
        return result

    def protocol(self) -> dict[str, Any]:
        """Adds the CircularEval mode."""
        out = super().protocol()
        out["circular"] = self.circular_mode
        out["metric"] = (
            "CircularEval: a question counts only if every rotation of its options is answered right "
            "(groups = index % 1000000); vanilla = shift 0 only; letters by extract_choice (unparsed = wrong)"
        )
        return out


__all__ = [
    "CIRCULAR_STRIDE",
    "ChoiceColumnsTask",
    "MMBenchTask",
    "circular_accuracy",
    "circular_group",
    "option_columns",
    "present_text",
    "rotate_options",
]
