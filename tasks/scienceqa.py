"""ScienceQA-IMG (``scienceqa_img`` likelihood, ``scienceqa_img_gen`` generative) and the shared
option-ranking task base used by SEED-Bench.

**Data**: ``lmms-lab/ScienceQA`` config ``ScienceQA-IMG`` split ``test`` (2,017 questions with an
image; ``derek-thomas/ScienceQA`` has the same columns, filtered to rows with an image). Columns:
``image``, ``question``, ``choices`` (list of 2-5 strings), ``answer`` (int64, index of the right
choice), ``hint`` (the context, often empty), ``task``, ``grade``, ``subject``, ``topic``,
``category``, ``skill``, ``lecture``, ``solution``. There is no id column: the sample id is the row
index (lmms-eval's ``doc_id``).

**Protocols** (``task.mode``):

* ``likelihood`` (``scienceqa_img``; Qwen-VL's ``eval_mm/evaluate_multiple_choice.py``): the context
  is the image + ``Context: {hint or N/A}\\nQuestion: ...\\nOptions: A. ...\\nAnswer:`` and each
  option letter is a candidate continuation (``candidate_template``: ``" {letter}"`` with the
  ``qwen_vl`` preset, as the script tokenises ``' ' + letter``); the option with the highest mean
  log-probability per token (lowest mean loss) is the answer (request kind ``choice_logprobs``).
* ``generate`` (``scienceqa_img_gen``; lmms-eval ``scienceqa_img``, the Qwen2-VL-era harnesses):
  ``{Context: hint\\n}{question}\\nA. ...\\nAnswer with the option's letter from the given choices
  directly.``, 16 new tokens; scorer ``lmms_eval`` (default): right when the answer equals the gold
  letter or starts with ``<letter>.``; scorer ``extract_choice``: evalkit's versioned extractor.

Reported: ``accuracy`` with a breakdown by ``subject``, ``grade`` and ``category``. Records carry
``extracted`` (the letter chosen) and, for the likelihood mode, ``logprobs`` (every candidate's
summed and mean log-probability and token count).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.media.image import load_image
from evalkit.metrics import extract_choice
from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.tasks.base import MetricSpec
from evalkit.types import ContentPart, ImagePart, Record, Request, Sample, TextPart, user_message

LETTERS = "ABCDEFGHIJ"
MODES = ("likelihood", "generate")
CHOICE_KIND = "choice_logprobs"


def lmms_eval_sqa_letter(prediction: str, letters: Sequence[str]) -> str | None:
    """lmms-eval's ScienceQA reading (after LLaVA): the answer itself when it is one of the
    letters, else the first character of an answer shaped ``<upper-case letter>.…``; else None."""
    pred = (prediction or "").strip()
    if pred in letters:
        return pred
    if len(pred) >= 2 and pred[0].isupper() and pred[1] == ".":
        return pred[0]
    return None


def option_lines(options: Sequence[str]) -> str:
    """``A. first\\nB. second...`` (the option block of every ScienceQA / SEED-Bench prompt)."""
    return "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(options))


class OptionRankingTask(PromptedImageQATask):
    """A multiple-choice task answered either by likelihood ranking of the option letters
    (``mode: likelihood``, request kind ``choice_logprobs``) or by generation (``mode: generate``).

    Subclasses implement :meth:`options`, :meth:`gold_index`, :meth:`images` and
    :meth:`prompt_fields`."""

    version = "1"
    metrics = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"
    scorer = "exact_match"  # informational: score() applies the configured rule
    extra_fields: ClassVar[frozenset[str]] = frozenset({"options", "context", "hint"})
    #: generative scorers (``task.scorer``), name -> description
    gen_scorers: ClassVar[Mapping[str, str]] = {
        "lmms_eval": "lmms-eval's reading of the letter (ScienceQA: the answer is a letter or starts "
        "with '<letter>.'; SEED-Bench: the first character of the stripped answer) vs the gold letter",
        "extract_choice": "gold letter vs evalkit's versioned extract_choice(prediction, options)",
    }

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        mode = str(self.config.get("mode", "generate"))
        if mode not in MODES:
            raise UsageError(f"task {self.name}: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        scorer = str(self.config.get("scorer") or "lmms_eval")
        if scorer not in self.gen_scorers:
            raise UsageError(
                f"task {self.name}: scorer must be one of {', '.join(self.gen_scorers)}, got {scorer!r}"
            )
        self.gen_scorer = scorer

    # ----------------------------------------------------------------- subclass hooks
    def options(self, sample: Sample, row: Mapping[str, Any] | None = None) -> list[str]:
        """The option texts of a sample, in letter order."""
        raise NotImplementedError

    def gold_index(self, sample: Sample, n_options: int) -> int:
        """The 0-based index of the right option (ValueError when unusable)."""
        raise NotImplementedError

    def images(self, sample: Sample, row: Mapping[str, Any]) -> list[Any]:
        """The decoded images of a sample, in prompt order."""
        return [load_image(row.get(self.image_column))]

    # ----------------------------------------------------------------- requests
    @property
    def candidate_template(self) -> str:
        """How an option becomes a candidate continuation (``{letter}``/``{option}`` fields)."""
        return str(self.config.get("candidate_template") or "{letter}")

    def candidates(self, options: Sequence[str]) -> tuple[str, ...]:
        """The candidate continuations of a likelihood request, one per option."""
        return tuple(
            self.candidate_template.format(letter=LETTERS[i], option=text) for i, text in enumerate(options)
        )

    def gold_letter(self, sample: Sample) -> str:
        """The gold option letter."""
        n = len(self.options(sample))
        return LETTERS[self.gold_index(sample, n)]

    def image_parts(self, images: Sequence[Any]) -> list[ContentPart]:
        """Image parts, each followed by ``image_separator`` text when one is configured (the
        Qwen-VL SEED-Bench prompt puts a newline after every ``<img>...</img>``)."""
        sep = self.config.get("image_separator")
        parts: list[ContentPart] = []
        for img in images:
            parts.append(ImagePart(img))
            if sep:
                parts.append(TextPart(str(sep)))
        return parts

    def build_request(self, sample: Sample) -> Request:
        """Images + the filled template; a ``choice_logprobs`` request in likelihood mode."""
        row = self.row(sample)
        options = self.options(sample, row)
        if len(options) < 2:
            raise InputError("a multiple-choice question needs at least two options")
        if len(options) > len(LETTERS):
            raise InputError(f"{len(options)} options: at most {len(LETTERS)} are supported")
        if self.has_targets:
            try:
                self.gold_index(sample, len(options))
            except ValueError as exc:
                raise InputError(str(exc)) from None
        fields = self.prompt_fields(sample, row)
        prompt = self.prompt_template().format(**fields)
        message = user_message(*self.image_parts(self.images(sample, row)), prompt)
        if self.mode == "likelihood":
            return Request(
                sample.id,
                (message,),
                self.generation(),
                task=self.name,
                kind=CHOICE_KIND,
                candidates=self.candidates(options),
            )
        return Request(sample.id, (message,), self.generation(), task=self.name)

    # ----------------------------------------------------------------- scoring
    def extract(self, sample: Sample, prediction: str) -> str | None:
        """The letter a prediction stands for: the candidate it is (likelihood) or the letter read
        by the generative scorer (None when none)."""
        options = self.options(sample)
        if self.mode == "likelihood":
            candidates = self.candidates(options)
            return LETTERS[candidates.index(prediction)] if prediction in candidates else None
        letters = tuple(LETTERS[: len(options)])
        if self.gen_scorer == "lmms_eval":
            return self.lmms_eval_letter(prediction, letters)
        return extract_choice(prediction, letters, options=dict(zip(letters, options, strict=True)))

    def lmms_eval_letter(self, prediction: str, letters: Sequence[str]) -> str | None:
        """The letter lmms-eval reads from a generated answer (ScienceQA's rule by default)."""
        return lmms_eval_sqa_letter(prediction, letters)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """``accuracy``: 1.0 when the chosen letter is the gold one."""
        try:
            gold = self.gold_letter(sample)
        except (ValueError, InputError) as exc:
            raise ValueError(str(exc)) from None
        return {"accuracy": 1.0 if self.extract(sample, prediction) == gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extracted``: the chosen letter (None: unparsed)."""
        return {"extracted": self.extract(sample, prediction)}

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """``unparsed``: scored records from which no letter could be read."""
        unparsed = sum(
            1 for r in records if r.error is None and r.scores and r.extra.get("extracted") is None
        )
        return {**super().counts(records), "unparsed": unparsed}

    def protocol(self) -> dict[str, Any]:
        """Mode, candidates and selection rule (likelihood) or the generative scorer."""
        out = super().protocol()
        out["mode"] = self.mode
        if self.mode == "likelihood":
            out["request_kind"] = CHOICE_KIND
            out["candidate_template"] = self.candidate_template
            out["selection"] = "mean"
            out["metric"] = (
                "accuracy: the option whose candidate has the highest mean log-probability per token "
                "(lowest mean loss, Qwen-VL evaluate_multiple_choice.py) is the gold one"
            )
        else:
            out["scorer"] = self.gen_scorer
            out["metric"] = f"accuracy: {self.gen_scorers[self.gen_scorer]}"
            out["extractor_version"] = EXTRACTOR_VERSION
        out["image_separator"] = self.config.get("image_separator")
        return out


class ScienceQATask(OptionRankingTask):
    """ScienceQA-IMG test: likelihood-ranked (Qwen-VL) or generated (lmms-eval) letter answers."""

    id_column = None
    answer_column = "answer"
    metadata_columns = ("subject", "grade", "category")
    breakdown_keys = ("subject", "grade", "category")

    def options(self, sample: Sample, row: Mapping[str, Any] | None = None) -> list[str]:
        """The ``choices`` list of the row."""
        row = row if row is not None else self._text_row(sample)
        raw = row.get("choices")
        if not isinstance(raw, list | tuple) or not all(isinstance(c, str) for c in raw):
            raise InputError("'choices' must be a list of strings")
        return list(raw)

    def _text_row(self, sample: Sample) -> dict[str, Any]:
        if not hasattr(self, "_choices"):
            self._choices = self.dataset["choices"]
        return {"choices": self._choices[sample.index]}

    def gold_index(self, sample: Sample, n_options: int) -> int:
        """``answer`` is the 0-based index of the right choice."""
        target = sample.target
        if isinstance(target, bool) or not isinstance(target, int):
            raise ValueError(f"gold answer {target!r} is not an option index")
        if not 0 <= target < n_options:
            raise ValueError(f"gold answer index {target} is outside the {n_options} options")
        return target

    def images(self, sample: Sample, row: Mapping[str, Any]) -> list[Any]:
        """The question's image (ScienceQA-IMG rows all have one; a missing one is an input error)."""
        if row.get(self.image_column) is None:
            raise InputError("missing image (ScienceQA-IMG questions all have one)")
        return [load_image(row.get(self.image_column))]

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """``question``, ``options`` (``A. ...`` lines), ``hint`` (``N/A`` when empty, as Qwen-VL)
        and ``context`` (``Context: <hint>\\n`` or nothing, as lmms-eval)."""
        fields = super().prompt_fields(sample, row)
        hint = row.get("hint") if isinstance(row.get("hint"), str) else ""
        fields["options"] = option_lines(self.options(sample, row))
        fields["hint"] = hint.strip() or "N/A"
        fields["context"] = f"Context: {hint}\n" if hint else ""
        return fields
