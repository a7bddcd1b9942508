"""The VQA family: VQAv2, TextVQA, OK-VQA, VizWiz-VQA, GQA, ChartQA, OCR-VQA, AI2D, InfographicVQA.

Every task here is a small subclass of :class:`PromptedImageQATask`, which adds to
:class:`~evalkit.tasks.image_qa.ImageQATask`:

* **prompt presets with settings** — ``prompts`` holds the templates (``default`` = Qwen2-VL /
  lmms-eval style, ``qwen_vl`` = the Qwen-VL ``evaluate_vqa.py`` style, ...) and
  ``preset_overrides.<preset>`` the config keys that go with a preset (``generation.max_new_tokens``
  of the Qwen-VL scripts, AI2D's answer format). They are merged into the task config when the
  preset is selected and recorded in results (``protocol.preset_overrides``);
* **template fields checked up front** — a template naming a field the task does not provide is a
  usage error at start-up, not one error record per sample;
* **per-task official scorers** (:data:`SCORERS`): VQA accuracy (VQAv2, TextVQA, OK-VQA, VizWiz),
  exact match after normalisation (GQA, OCR-VQA, AI2D), ChartQA relaxed accuracy, ANLS (InfoVQA);
* **hidden-answer splits** — ``hidden_answer_splits`` lists the splits whose answers are not public
  (VQAv2 ``test``/``testdev``, InfoVQA ``test``...); there the task writes the official submission
  file instead of scores (``force_scoring: true`` overrides).

Dataset schemas (columns of the hub datasets) are documented in ``docs/tasks-image-qa.md`` and
reproduced by :mod:`evalkit.testing.image_qa`.
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from evalkit.errors import InputError, UsageError
from evalkit.media.image import load_image
from evalkit.metrics import (
    anls,
    exact_match,
    mtvqa_match,
    relaxed_accuracy,
    relaxed_accuracy_qwen_vl,
    textvqa_accuracy,
    vqa_accuracy,
)
from evalkit.tasks.base import MetricSpec, TaskResult, write_submission_json
from evalkit.tasks.image_qa import ImageQATask, anls_description, anls_settings, image_labels, strip_answer
from evalkit.types import ImagePart, Record, Request, Sample, user_message

#: scorer name -> (function(prediction, gold answers) -> float, description recorded in results)
SCORERS: dict[str, tuple[Callable[[str, list[str]], float], str]] = {
    "vqa_accuracy": (
        vqa_accuracy,
        "VQA accuracy (official VQA eval vqaEval.py: answer normalisation unless all gold answers are "
        "identical; mean over the leave-one-out subsets of min(1, matches/3))",
    ),
    "textvqa_accuracy": (
        textvqa_accuracy,
        "TextVQA accuracy (the TextVQA authors' evaluator, mmf TextVQAAccuracyEvaluator; lmms-eval the "
        "same): lower-case, ',' and '?' deleted, then the VQA normalisation of every answer (always); "
        "mean over the leave-one-out subsets of min(1, matches/3)",
    ),
    "exact_match": (
        exact_match,
        "exact match after normalisation (whitespace collapsed, lower-cased, one trailing period removed); "
        "max over gold answers",
    ),
    "relaxed_accuracy": (
        relaxed_accuracy,
        "ChartQA relaxed accuracy: numbers within 5% of the target (relative to the target, "
        "'%' means /100), otherwise case-insensitive exact match; max over gold answers",
    ),
    "relaxed_accuracy_qwen_vl": (
        relaxed_accuracy_qwen_vl,
        "ChartQA relaxed accuracy as Qwen-VL's evaluate_vqa.py calls it (arguments swapped): numbers "
        "within 5% relative to the *prediction*, gold answers not stripped; max over gold answers",
    ),
    "anls": (
        anls,
        anls_description(0.5, "rrc"),
    ),
    "mtvqa_match": (
        mtvqa_match,
        "MTVQA acc.py: answer.strip().lower() in prediction.strip().lower().replace('.', '')",
    ),
}


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated recursively with ``override`` (nested mappings merged, the rest replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def template_fields(template: str) -> set[str]:
    """The top-level field names a ``str.format`` template uses (``{question}`` -> ``question``)."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            names.add(field.split(".", 1)[0].split("[", 1)[0])
    return names


def question_fields(question: str) -> dict[str, str]:
    """The template fields every task fills from its question: ``{question}``, ``{question_capitalized}``."""
    return {"question": question, "question_capitalized": question.capitalize()}


def gold_answers(value: Any, column: str) -> list[str]:
    """The gold answers of a sample as a non-empty list of strings, or an :class:`InputError`."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, bytes | bytearray):
        raise InputError(f"missing gold answers in '{column}' (got {type(value).__name__})")
    answers = list(value)
    if not answers:
        raise InputError(f"no gold answers in '{column}' (empty answer list)")
    bad = [a for a in answers if not isinstance(a, str)]
    if bad:
        raise InputError(f"gold answers in '{column}' must be strings, got {type(bad[0]).__name__}")
    return answers


class PromptedImageQATask(ImageQATask):
    """Single-image QA with prompt presets, an official scorer per task and submission files.

    Subclasses set the column names, :attr:`scorer`, :attr:`metrics` and, where answers can be
    hidden, :attr:`hidden_answer_splits` and :attr:`submission_id_key`; hooks
    (:meth:`make_target`, :meth:`make_metadata`, :meth:`prompt_fields`, :meth:`image_value`)
    cover the dataset-specific parts.
    """

    #: id column of the dataset; None -> the row index is the sample id (as lmms-eval's ``doc_id``)
    id_column: ClassVar[str | None] = "question_id"
    #: further columns read when listing samples (passed to make_target / make_metadata)
    extra_columns: ClassVar[Sequence[str]] = ()
    #: key of :data:`SCORERS`; the per-sample score is stored under this name
    scorer: ClassVar[str] = "exact_match"
    #: scorer variants selectable with ``task.metric.variant=<name>`` (name -> key of
    #: :data:`SCORERS`; the first is the default); empty: the task has only :attr:`scorer`. The score
    #: keeps the name :attr:`scorer` whichever variant computes it.
    metric_variants: ClassVar[Mapping[str, str]] = {}
    #: metadata key that receives :func:`~evalkit.tasks.image_qa.image_label` of the row's image
    #: (a digest of its bytes), for hub datasets with no image id column; name it as
    #: :attr:`cluster_key` so that the questions of one image form a cluster (None: no label)
    image_label_key: ClassVar[str | None] = None
    #: splits whose answers are not public: a submission file is written instead of scores
    hidden_answer_splits: ClassVar[frozenset[str]] = frozenset()
    #: key of the sample id in the official submission file (None: no submission format)
    submission_id_key: ClassVar[str | None] = None
    #: template fields every task provides (subclasses add theirs in :meth:`prompt_fields`)
    base_fields: ClassVar[frozenset[str]] = frozenset({"question", "question_capitalized"})
    extra_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        choice = str(self.config.get("prompt", "default"))
        overrides = dict((self.config.get("preset_overrides") or {}).get(choice) or {})
        self.applied_overrides: dict[str, Any] = overrides
        if overrides:
            self.config = deep_merge(self.config, overrides)
        self._check_template()
        self.metric_variant = self._metric_variant()

    def _metric_variant(self) -> str | None:
        """The selected ``metric.variant`` (None when the task has no variants)."""
        chosen = (self.config.get("metric") or {}).get("variant")
        if not self.metric_variants:
            if chosen is not None:
                raise UsageError(f"task {self.name} has no metric variants (got metric.variant={chosen!r})")
            return None
        chosen = str(chosen) if chosen is not None else next(iter(self.metric_variants))
        if chosen not in self.metric_variants:
            raise UsageError(
                f"task {self.name}: unknown metric.variant {chosen!r}; available: {', '.join(self.metric_variants)}"
            )
        return chosen

    @property
    def active_scorer(self) -> str:
        """The key of :data:`SCORERS` that scores this run (the variant's, else :attr:`scorer`)."""
        if self.metric_variant is None:
            return self.scorer
        return self.metric_variants[self.metric_variant]

    # ----------------------------------------------------------------- config
    def _check_template(self) -> None:
        template = self.prompt_template()
        allowed = self.base_fields | self.extra_fields
        unknown = sorted(template_fields(template) - allowed)
        if unknown:
            raise UsageError(
                f"task {self.name}: prompt template uses unknown field(s) {', '.join('{' + u + '}' for u in unknown)}; "
                f"available: {', '.join('{' + a + '}' for a in sorted(allowed))}"
            )

    @property
    def split(self) -> str:
        """The configured dataset split."""
        return str((self.config.get("dataset") or {}).get("split", ""))

    @property
    def has_targets(self) -> bool:
        """False on the splits listed in :attr:`hidden_answer_splits` (unless ``force_scoring``)."""
        return self.split not in self.hidden_answer_splits or bool(self.config.get("force_scoring", False))

    # ----------------------------------------------------------------- samples
    def read_columns(self) -> dict[str, list[Any]]:
        """The non-image columns needed to list samples, read in one pass."""
        names = [
            c for c in (self.id_column, self.answer_column, *self.metadata_columns, *self.extra_columns) if c
        ]
        return self._columns(list(dict.fromkeys(names)))

    def make_target(self, values: Mapping[str, Any]) -> Any:
        """The gold answer(s) of one row as written to the record (default: the answer column)."""
        return values.get(self.answer_column)

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Breakdown metadata of one row (default: the metadata columns that are not null)."""
        return {c: values[c] for c in self.metadata_columns if values.get(c) is not None}

    def sample_id(self, values: Mapping[str, Any], index: int) -> str:
        """The sample id: the dataset's id column, or the row index when the dataset has none."""
        if self.id_column is None:
            return str(index)
        sid = values.get(self.id_column)
        return str(sid) if sid is not None else f"row-{index}"

    def samples(self) -> list[Sample]:
        """One sample per row, in dataset order; targets are None on hidden-answer splits."""
        cols = self.read_columns()
        n = len(self.dataset)
        labels = image_labels(self.dataset, self.image_column) if self.image_label_key else None
        out = []
        for i in range(n):
            values = {c: v[i] for c, v in cols.items()}
            meta = self.make_metadata(values)
            if labels is not None and labels[i] is not None:
                meta[str(self.image_label_key)] = labels[i]
            out.append(
                Sample(
                    id=self.sample_id(values, i),
                    index=i,
                    target=self.make_target(values) if self.has_targets else None,
                    metadata=meta,
                )
            )
        return out

    def sample_question(self, sample: Sample) -> str | None:
        """The question text of a sample (used by ``evalkit score`` to check file alignment)."""
        if not hasattr(self, "_question_cache"):
            cols = self.dataset.column_names
            self._question_cache = (
                self.dataset[self.question_column] if self.question_column in cols else None
            )
        cache = self._question_cache
        value = cache[sample.index] if cache is not None and sample.index < len(cache) else None
        return value if isinstance(value, str) else None

    def external_sample_id(self, doc: Mapping[str, Any]) -> str | None:
        """The sample id of a document logged by another harness (lmms-eval's ``doc``), if it has one."""
        if self.id_column is None:
            return None
        value = doc.get(self.id_column)
        return None if value is None else str(value)

    # ----------------------------------------------------------------- requests
    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """The values of the template fields for one sample (InputError on bad data)."""
        return question_fields(self.question(dict(row)))

    def image_value(self, sample: Sample, row: Mapping[str, Any]) -> Any:
        """The undecoded image value of a sample (default: the row's image column)."""
        return row.get(self.image_column)

    def check_target(self, sample: Sample) -> list[str]:
        """The sample's gold answers as strings; an :class:`InputError` when unusable."""
        return gold_answers(sample.target, self.answer_column)

    def scored_answers(self, sample: Sample) -> list[str]:
        """The gold answers to score against; a ValueError (a per-sample score error) when unusable."""
        try:
            return self.check_target(sample)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    def build_request(self, sample: Sample) -> Request:
        """Image + the selected template filled with the sample's fields (cheap checks first)."""
        if self.has_targets:
            self.check_target(sample)
        row = self.row(sample)
        fields = self.prompt_fields(sample, row)
        image = load_image(self.image_value(sample, row))
        prompt = self.prompt_template().format(**fields)
        return Request(
            sample.id, (user_message(ImagePart(image), prompt),), self.generation(), task=self.name
        )

    # ----------------------------------------------------------------- scoring
    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """The task's official per-sample score (ValueError when the gold answers are unusable)."""
        answers = self.scored_answers(sample)
        fn, _ = SCORERS[self.active_scorer]
        return {self.scorer: float(fn(prediction, answers))}

    def submission_entry(self, record: Record) -> dict[str, Any]:
        """One entry of the official submission file (``{<id key>: id, "answer": text}``)."""
        assert self.submission_id_key is not None
        sid: Any = int(record.id) if record.id.isdigit() else record.id
        answer = strip_answer(record.prediction) if record.error is None else ""
        return {self.submission_id_key: sid, "answer": answer}

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """The official submission JSON for a hidden-answer split (every sample, errors as "")."""
        if self.submission_id_key is None:
            return None
        return write_submission_json([self.submission_entry(r) for r in records], path)

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """The generic aggregate, plus a note for every metric that has no scored sample."""
        result = super().aggregate(records)
        for name, value in result.metrics.items():
            if value is None:
                where = self.metrics[name].where
                scope = f" with {', '.join(f'{k}={v}' for k, v in where.items())}" if where else ""
                result.notes[name] = f"no scored samples{scope}"
        return result

    def protocol(self) -> dict[str, Any]:
        """Adds the metric definition and the preset's overrides to the recorded protocol."""
        out = super().protocol()
        out["metric"] = SCORERS[self.active_scorer][1]
        out["metric_variant"] = self.metric_variant
        out["preset_overrides"] = self.applied_overrides or None
        out["answers_hidden"] = not self.has_targets
        return out


# --------------------------------------------------------------------------- VQA accuracy tasks
class VQAv2Task(PromptedImageQATask):
    """VQAv2 (``lmms-lab-encoder/VQAv2``, formerly ``lmms-lab/VQAv2``): ``validation`` scored with
    VQA accuracy; ``test``/``testdev`` write the EvalAI submission
    ``[{"question_id": int, "answer": str}]``, padded to every id of
    ``task.submission.questions`` when given (EvalAI's test-dev phase wants all test2015 ids).

    Columns: question_type, multiple_choice_answer, answers (list of {answer, answer_confidence,
    answer_id}), image_id, answer_type, question_id (int), question, image.
    """

    version = "2"
    id_column = "question_id"
    answer_column = "answers"
    metadata_columns = ("answer_type", "image_id")
    cluster_key = "image_id"  # several questions per COCO image
    breakdown_keys = ("answer_type",)
    scorer = "vqa_accuracy"
    metrics = {"vqa_accuracy": MetricSpec(score="vqa_accuracy")}
    main_metric = "vqa_accuracy"
    hidden_answer_splits = frozenset({"test", "testdev"})
    submission_id_key = "question_id"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.submission_questions = self._read_submission_questions()

    def _read_submission_questions(self) -> list[int] | None:
        """The question ids of ``task.submission.questions`` (the official
        ``v2_OpenEnded_mscoco_test2015_questions.json``), or None when not set."""
        raw = (self.config.get("submission") or {}).get("questions")
        if not raw:
            return None
        path = Path(str(raw)).expanduser()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(
                f"task.submission.questions: cannot read {path}: {exc.strerror or exc}"
            ) from None
        except json.JSONDecodeError as exc:
            raise UsageError(f"task.submission.questions: {path} is not valid JSON ({exc.msg})") from None
        questions = data.get("questions") if isinstance(data, Mapping) else None
        try:
            return [int(q["question_id"]) for q in questions]  # type: ignore[union-attr]
        except (TypeError, KeyError, ValueError):
            raise UsageError(
                f"task.submission.questions: {path} is not a VQA questions file "
                '(expected {"questions": [{"question_id": ..., ...}, ...]})'
            ) from None

    def make_target(self, values: Mapping[str, Any]) -> Any:
        """The 10 human answers as strings (the dataset stores dicts with answer/confidence/id)."""
        answers = values.get(self.answer_column)
        if not isinstance(answers, list):
            return answers
        return [a.get("answer") if isinstance(a, Mapping) else a for a in answers]

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """The EvalAI submission; with ``task.submission.questions`` it lists every question id of
        that file (in its order), answering ``""`` for the ones this run did not answer (EvalAI's
        test-dev phase expects answers for all test2015 ids)."""
        if self.submission_questions is None:
            return super().write_submission(records, path)
        answered = {e["question_id"]: e for e in (self.submission_entry(r) for r in records)}
        entries = [answered.pop(q, {"question_id": q, "answer": ""}) for q in self.submission_questions]
        entries += list(answered.values())  # ids missing from the questions file are kept
        return write_submission_json(entries, path)

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Notes on the submission file: padded to the questions file, or why EvalAI may reject it."""
        result = super().aggregate(records)
        if self.has_targets:
            return result
        if self.submission_questions is not None:
            known = set(self.submission_questions)
            extra = sum(1 for r in records if (int(r.id) if r.id.isdigit() else r.id) not in known)
            result.notes["submission"] = (
                f"padded to the {len(known)} question ids of task.submission.questions "
                f"({len(records)} answered here, the rest answer ''"
                + (f"; {extra} answered id(s) are not in that file" if extra else "")
                + ")"
            )
        elif self.split == "testdev":
            result.notes["submission"] = (
                "only the test-dev questions are in the submission file; EvalAI expects answers for all "
                "test2015 question ids: pass task.submission.questions=<v2_OpenEnded_mscoco_test2015_questions.json> "
                "to pad it"
            )
        return result


class TextVQATask(PromptedImageQATask):
    """TextVQA (``lmms-lab-encoder/textvqa``, formerly ``lmms-lab/textvqa``): ``validation`` scored
    over the 10 answers with the TextVQA authors' rule (``metric.variant=mmf``, default: mmf's
    ``TextVQAAccuracyEvaluator``, as lmms-eval) or vqaEval.py's (``metric.variant=vqaeval``, which
    skips normalisation when all 10 answers are identical); the score is named ``vqa_accuracy``
    either way. ``test`` writes ``[{"question_id": int, "answer": str}]``."""

    version = "2"
    id_column = "question_id"
    answer_column = "answers"
    metadata_columns = ("image_id",)
    cluster_key = "image_id"  # several questions per image
    scorer = "vqa_accuracy"
    metric_variants = {"mmf": "textvqa_accuracy", "vqaeval": "vqa_accuracy"}
    metrics = {"vqa_accuracy": MetricSpec(score="vqa_accuracy")}
    main_metric = "vqa_accuracy"
    hidden_answer_splits = frozenset({"test"})
    submission_id_key = "question_id"


class OKVQATask(PromptedImageQATask):
    """OK-VQA (``lmms-lab/OK-VQA``, split ``val2014``), VQA accuracy over the 10 answers."""

    version = "1"
    id_column = "question_id"
    answer_column = "answers"
    metadata_columns = ("question_type", "answer_type", "image_id")
    cluster_key = "image_id"
    breakdown_keys = ("question_type",)
    scorer = "vqa_accuracy"
    metrics = {"vqa_accuracy": MetricSpec(score="vqa_accuracy")}
    main_metric = "vqa_accuracy"


class VizWizVQATask(PromptedImageQATask):
    """VizWiz-VQA (``lmms-lab/VizWiz-VQA``): ``val`` scored with VQA accuracy ("unanswerable" is a
    valid answer); ``test`` writes ``[{"image": "<question_id>.jpg", "answer": str}]``."""

    version = "1"
    id_column = "question_id"
    answer_column = "answers"
    metadata_columns = ("category",)
    breakdown_keys = ("category",)
    scorer = "vqa_accuracy"
    metrics = {"vqa_accuracy": MetricSpec(score="vqa_accuracy")}
    main_metric = "vqa_accuracy"
    hidden_answer_splits = frozenset({"test"})
    submission_id_key = "image"

    def submission_entry(self, record: Record) -> dict[str, Any]:
        """VizWiz names the image file, not a numeric id."""
        entry = super().submission_entry(record)
        entry["image"] = f"{record.id}.jpg"
        return entry


# --------------------------------------------------------------------------- exact-match tasks
class GQATask(PromptedImageQATask):
    """GQA test-dev balanced (``lmms-lab/GQA``): questions in config
    ``testdev_balanced_instructions``, images in ``testdev_balanced_images`` (joined on
    ``imageId`` = images' ``id``); exact match after normalisation."""

    version = "1"
    id_column = "id"
    answer_column = "answer"
    extra_columns = ("types", "imageId")
    breakdown_keys = ("structural",)
    cluster_key = "imageId"  # dozens of questions per image (the questions' imageId column)
    scorer = "exact_match"
    metrics = {"accuracy": MetricSpec(score="exact_match")}
    main_metric = "accuracy"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.images: Any = None
        self._image_rows: dict[str, int] = {}

    def load(self) -> None:
        """Load the questions config, then the images config of the same dataset."""
        super().load()
        from datasets import Image

        from evalkit.tasks.datasets import load_dataset_from_config

        ds_cfg = dict(self.config.get("dataset") or {})
        images_name = ds_cfg.get("images_name") or "testdev_balanced_images"
        images, info = load_dataset_from_config({**ds_cfg, "name": images_name})
        if "image" in images.column_names:
            images = images.cast_column("image", Image(decode=False))
        self.images = images
        self.dataset_info["images"] = {k: info.get(k) for k in ("name", "fingerprint", "num_rows")}
        ids = images["id"] if "id" in images.column_names else []
        self._image_rows = {str(i): n for n, i in enumerate(ids)}

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Question types (structural: verify/query/choose/logical/compare; semantic) and the
        ``imageId`` (the cluster key)."""
        types = values.get("types")
        meta: dict[str, Any] = {}
        if isinstance(types, Mapping):
            meta = {k: types[k] for k in ("structural", "semantic") if types.get(k) is not None}
        if values.get("imageId") is not None:
            meta["imageId"] = values["imageId"]
        return meta

    def image_value(self, sample: Sample, row: Mapping[str, Any]) -> Any:
        """The image of the question's ``imageId`` from the images config."""
        image_id = row.get("imageId")
        if image_id is None:
            raise InputError("missing 'imageId' field")
        n = self._image_rows.get(str(image_id))
        if n is None:
            raise InputError(f"image {image_id!r} is not in the images config")
        return self.images[n]["image"]


class ChartQATask(PromptedImageQATask):
    """ChartQA test (``lmms-lab/ChartQA``; ``type`` = human_test / augmented_test), relaxed
    accuracy, reported for the human and augmented subsets separately and together."""

    version = "1"
    id_column = None
    answer_column = "answer"
    extra_columns = ("type",)
    breakdown_keys = ("subset",)
    # several questions per chart; the hub rows (type, question, answer, image) carry no chart id,
    # so metadata["image"] is a digest of the chart's image bytes (image_label_key)
    cluster_key = "image"
    image_label_key = "image"
    scorer = "relaxed_accuracy"
    #: ``default``: the ChartQA/pix2struct definition (tolerance relative to the target);
    #: ``qwen_vl``: Qwen-VL's evaluate_vqa.py, which swaps the arguments (relative to the prediction)
    metric_variants = {"default": "relaxed_accuracy", "qwen_vl": "relaxed_accuracy_qwen_vl"}
    metrics = {
        "relaxed_accuracy": MetricSpec(score="relaxed_accuracy"),
        "relaxed_accuracy_human": MetricSpec(score="relaxed_accuracy", where={"subset": "human"}),
        "relaxed_accuracy_augmented": MetricSpec(score="relaxed_accuracy", where={"subset": "augmented"}),
    }
    main_metric = "relaxed_accuracy"

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``subset``: human / augmented (from ``type``)."""
        kind = values.get("type")
        if not isinstance(kind, str):
            return {}
        return {"subset": kind.removesuffix("_test")}


class OCRVQATask(PromptedImageQATask):
    """OCR-VQA test (``howard-hou/OCR-VQA``): rows are book covers with parallel ``questions`` /
    ``answers`` lists, flattened to one sample per question (id ``<image_id>_<k>``); exact match."""

    version = "1"
    id_column = "image_id"
    answer_column = "answers"
    question_column = "questions"
    metadata_columns = ("genre",)
    breakdown_keys = ("genre",)
    cluster_key = "image_id"  # several questions per book cover (one row each)
    scorer = "exact_match"
    metrics = {"accuracy": MetricSpec(score="exact_match")}
    main_metric = "accuracy"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self._questions: dict[str, Any] = {}

    def samples(self) -> list[Sample]:
        """One sample per (question, answer) pair; a row whose lists differ in length or are not
        lists yields one error sample (``<image_id>_pairs``)."""
        cols = self._columns([self.id_column, "questions", "answers", *self.metadata_columns])
        out = []
        self._questions = {}
        for i in range(len(self.dataset)):
            key = str(cols[self.id_column][i]) if cols[self.id_column][i] is not None else f"row-{i}"
            meta = {c: cols[c][i] for c in self.metadata_columns if cols[c][i] is not None}
            if cols[self.id_column][i] is not None:
                meta["image_id"] = key  # the cover's questions form one cluster (cluster_key)
            questions, answers = cols["questions"][i], cols["answers"][i]
            if not self.has_targets and isinstance(questions, list):
                answers = [None] * len(questions)
            if (
                not isinstance(questions, list)
                or not isinstance(answers, list)
                or len(questions) != len(answers)
            ):
                sid = f"{key}_pairs"
                self._questions[sid] = InputError(
                    "malformed row: 'questions' and 'answers' must be lists of equal length"
                )
                out.append(Sample(id=sid, index=i, target=None, metadata=meta))
                continue
            for k, (q, a) in enumerate(zip(questions, answers, strict=True)):
                sid = f"{key}_{k}"
                self._questions[sid] = q
                out.append(Sample(id=sid, index=i, target=a if self.has_targets else None, metadata=meta))
        return out

    def _pair_question(self, sample: Sample) -> Any:
        if not self._questions:
            self.samples()
        return self._questions.get(sample.id)

    def sample_question(self, sample: Sample) -> str | None:
        """The question of this pair."""
        q = self._pair_question(sample)
        return q if isinstance(q, str) else None

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """The pair's question."""
        q = self._pair_question(sample)
        if isinstance(q, InputError):
            raise q
        if not isinstance(q, str) or not q.strip():
            raise InputError("missing or empty question in 'questions'")
        return question_fields(q)

    def build_request(self, sample: Sample) -> Request:
        """Malformed rows fail before anything else."""
        q = self._pair_question(sample)
        if isinstance(q, InputError):
            raise q
        return super().build_request(sample)


class AI2DTask(PromptedImageQATask):
    """AI2D test (``lmms-lab/ai2d``: question, options, answer = index of the correct option),
    exact match. ``answer_format: letter`` (default, lmms-eval/Qwen2-VL: options listed as
    ``A. ...``, target the letter) or ``text`` (Qwen-VL: target the option text)."""

    version = "1"
    id_column = None
    answer_column = "answer"
    extra_columns = ("options",)
    # several questions per diagram; the hub rows (question, options, answer, image) carry no
    # diagram id, so metadata["image"] is a digest of the diagram's image bytes (image_label_key)
    cluster_key = "image"
    image_label_key = "image"
    scorer = "exact_match"
    metrics = {"accuracy": MetricSpec(score="exact_match")}
    main_metric = "accuracy"
    extra_fields = frozenset({"options", "option_texts"})

    @property
    def answer_format(self) -> str:
        """``letter`` or ``text`` (config ``answer_format``)."""
        fmt = str(self.config.get("answer_format", "letter"))
        if fmt not in ("letter", "text"):
            raise UsageError(f"task {self.name}: answer_format must be 'letter' or 'text', got {fmt!r}")
        return fmt

    def make_target(self, values: Mapping[str, Any]) -> Any:
        """The correct option's letter or text; None (-> input error) when the index is unusable."""
        options, answer = values.get("options"), values.get(self.answer_column)
        try:
            idx = int(str(answer).strip())
        except ValueError:
            return None
        if not isinstance(options, list) or not 0 <= idx < len(options) or len(options) > 26:
            return None
        return chr(ord("A") + idx) if self.answer_format == "letter" else options[idx]

    def prompt_fields(self, sample: Sample, row: Mapping[str, Any]) -> dict[str, str]:
        """Adds ``{options}`` (``A. first\\nB. second``) and ``{option_texts}`` (one per line)."""
        fields = super().prompt_fields(sample, row)
        options = row.get("options")
        if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
            raise InputError("missing or malformed 'options' (need a list of strings)")
        fields["options"] = "\n".join(f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(options))
        fields["option_texts"] = "\n".join(options)
        return fields

    def protocol(self) -> dict[str, Any]:
        """Records the answer format."""
        out = super().protocol()
        out["answer_format"] = self.answer_format
        return out


# --------------------------------------------------------------------------- ANLS
class InfoVQATask(PromptedImageQATask):
    """InfographicVQA (``lmms-lab-encoder/DocVQA``, formerly ``lmms-lab/DocVQA``, config
    ``InfographicVQA``): ``validation`` scored with ANLS (τ = 0.5; ``metric.variant=rrc``, default,
    the leaderboard's script, or ``paper``, the PyPI ``anls`` package); ``test`` writes
    ``[{"questionId": int, "answer": str}]`` with stripped answers."""

    version = "2"
    id_column = "questionId"
    answer_column = "answers"
    metadata_columns = ("answer_type", "image_url")
    breakdown_keys = ("answer_type",)
    cluster_key = "image_url"  # several questions per infographic; image_url identifies it
    scorer = "anls"
    metrics = {"anls": MetricSpec(score="anls")}
    main_metric = "anls"
    hidden_answer_splits = frozenset({"test"})
    submission_id_key = "questionId"

    def _metric_variant(self) -> str | None:
        """ANLS variants are validated by :func:`anls_settings` (``rrc`` / ``paper``)."""
        self.threshold, variant = anls_settings(self.config, self.name)
        return variant

    @property
    def active_scorer(self) -> str:
        """Always ``anls`` (the variant is an argument of :func:`anls`)."""
        return "anls"

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """ANLS with the configured threshold (official 0.5) and variant (default ``rrc``)."""
        answers = self.scored_answers(sample)
        return {"anls": anls(prediction, answers, self.threshold, str(self.metric_variant))}

    def protocol(self) -> dict[str, Any]:
        """Records the ANLS threshold and variant actually used."""
        out = super().protocol()
        out["metric"] = anls_description(self.threshold, str(self.metric_variant))
        return out
