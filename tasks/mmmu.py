"""MMMU (validation) and MMMU-Pro (standard 10 options, vision): college-level multi-discipline
questions with interleaved images, scored with MMMU's official answer parsing.

Data
----
* ``MMMU/MMMU``: one hub config per subject (30), split ``validation`` (900 rows). Columns: ``id``
  (``validation_<Subject>_<n>``), ``question`` (with ``<image k>`` tags), ``options`` (a *string*:
  Python-literal list), ``explanation``, ``image_1`` … ``image_7`` (images, null when unused),
  ``img_type``, ``answer`` (a letter, or the open answer), ``topic_difficulty``, ``question_type``
  (``multiple-choice`` / ``open``), ``subfield``.
* ``MMMU/MMMU_Pro`` config ``standard (10 options)``, split ``test`` (1,730 rows): ``id``,
  ``question``, ``options``, ``explanation``, ``image_1`` … ``image_7``, ``img_type``, ``answer``,
  ``topic_difficulty``, ``subject``; config ``vision``: ``id``, ``image`` (a screenshot/photo of
  the whole question), ``options``, ``answer``, ``subject``.

Requests
--------
The question text is split at each ``<image k>`` tag and ``image_k`` is placed there (as
VLMEvalKit's MMMU interleaving does; a tag that occurs twice places the image twice). Images of
the row that no tag names come first. A tag naming an empty image column is an input error.

Scoring (MMMU ``eval_utils.py``; MMMU-Pro ``evaluate.py``)
-----------------------------------------------------------
* multiple choice: :func:`parse_multi_choice_response` with the ``parser`` variant (``mmmu``: the
  MMMU repository; ``lmms_eval``: lmms-eval's copy, which also accepts ``A `` and ``A.``;
  ``mmmu_pro``: MMMU-Pro's, which first reads the text after the last ``Answer:``). When nothing
  matches, the official code picks a random letter: ``unparsed_choice: random`` does so with a
  generator seeded by ``seed`` and the sample id (reproducible, order-independent), ``wrong``
  scores 0. Either way the sample is counted as ``unparsed``.
* open: :func:`parse_open_response` (key sub-responses after "is", "so", "=", …, numbers extracted,
  normalised to floats rounded to 2 decimals) and :func:`eval_open` (a float must equal a gold
  float; a gold string must be a substring of a predicted string).

Accuracy is instance-level (micro) over all questions, with breakdowns per discipline, subject
and question type (the official "Overall-<discipline>" rows are the discipline breakdown).
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.media.image import load_image
from evalkit.tasks.base import MetricSpec
from evalkit.types import ImagePart, Record, Request, Sample, TextPart, user_message

#: MMMU's disciplines and their subjects (the hub config names)
DISCIPLINES: dict[str, tuple[str, ...]] = {
    "Art and Design": ("Art", "Art_Theory", "Design", "Music"),
    "Business": ("Accounting", "Economics", "Finance", "Manage", "Marketing"),
    "Science": ("Biology", "Chemistry", "Geography", "Math", "Physics"),
    "Health and Medicine": (
        "Basic_Medical_Science",
        "Clinical_Medicine",
        "Diagnostics_and_Laboratory_Medicine",
        "Pharmacy",
        "Public_Health",
    ),
    "Humanities and Social Science": ("History", "Literature", "Sociology", "Psychology"),
    "Tech and Engineering": (
        "Agriculture",
        "Architecture_and_Engineering",
        "Computer_Science",
        "Electronics",
        "Energy_and_Power",
        "Materials",
        "Mechanical_Engineering",
    ),
}
SUBJECTS: tuple[str, ...] = tuple(s for subjects in DISCIPLINES.values() for s in subjects)
_DISCIPLINE_OF = {s.lower(): d for d, subjects in DISCIPLINES.items() for s in subjects}
MAX_IMAGES = 7
PARSERS = ("mmmu", "lmms_eval", "mmmu_pro")
_IMAGE_TAG = re.compile(r"<image (\d+)>")
_STRIP_CHARS = (",", ".", "!", "?", ";", ":", "'")


# --------------------------------------------------------------------------- subjects
def subject_of(sample_id: str) -> str | None:
    """The subject in an MMMU id (``validation_Art_Theory_12`` -> ``Art_Theory``)."""
    split = sample_id.split("_", 1)[0]
    m = re.match(rf"^{re.escape(split)}_(.+?)_\d+$", sample_id)
    return m.group(1) if m else None


def discipline_of(subject: str | None) -> str | None:
    """The MMMU discipline of a subject (spaces or underscores, any case)."""
    if not subject:
        return None
    return _DISCIPLINE_OF.get(subject.strip().replace(" ", "_").lower())


# --------------------------------------------------------------------------- options
def parse_options(value: Any) -> list[str]:
    """The option list of a row: MMMU stores a Python-literal string (``"['1', '2']"``)."""
    if isinstance(value, list | tuple):
        options = list(value)
    elif isinstance(value, str):
        try:
            options = ast.literal_eval(value) if value.strip() else []
        except (ValueError, SyntaxError):
            raise InputError(f"'options' is not a list literal: {value[:60]!r}") from None
    elif value is None:
        options = []
    else:
        raise InputError(f"'options' has the wrong type ({type(value).__name__})")
    if not isinstance(options, list) or not all(isinstance(o, str | int | float) for o in options):
        raise InputError("'options' must be a list of texts")
    if len(options) > 26:
        raise InputError(f"too many options ({len(options)})")
    return [str(o) for o in options]


def option_letters(n: int) -> list[str]:
    """``A``, ``B``, … for ``n`` options."""
    return [chr(ord("A") + i) for i in range(n)]


def format_options(options: Sequence[str]) -> str:
    """``A. first\\nB. second`` (MMMU / lmms-eval option lines)."""
    return "\n".join(
        f"{letter}. {text}" for letter, text in zip(option_letters(len(options)), options, strict=True)
    )


# --------------------------------------------------------------------------- multiple choice
def _candidates_last(response: str, candidates: list[str], patterns: Mapping[str, str]) -> str:
    """Of several candidates, the one whose pattern occurs last (first one on ties, as argmax)."""
    positions = [response.rfind(patterns[c]) for c in candidates]
    return candidates[max(range(len(candidates)), key=lambda i: (positions[i], -i))]


def parse_multi_choice_response(response: str, options: Sequence[str], parser: str = "mmmu") -> str | None:
    """The option letter MMMU's official parser reads in ``response`` (None where it would guess).

    Steps (MMMU ``eval_utils.parse_multi_choice_response``): strip ``,.!?;:'`` from both ends, pad
    with spaces; letters written ``(A)``; else letters standing alone (``" A "``; ``lmms_eval`` and
    ``mmmu_pro``: ``"A "`` then ``"A."``); else, for responses longer than 5 words, options whose
    text occurs in the response. Several candidates: the one occurring last. ``mmmu_pro`` first
    takes the text after the last ``Answer:`` and returns the letter when exactly one occurs in it.
    """
    if parser not in PARSERS:
        raise ValueError(f"unknown MMMU parser {parser!r}; choose one of {', '.join(PARSERS)}")
    letters = option_letters(len(options))
    index2ans = dict(zip(letters, options, strict=True))
    if not isinstance(response, str):
        response = ""
    if parser == "mmmu_pro":
        pos = response.rfind("Answer:")
        if pos != -1:
            tail = response[pos + len("Answer:") :].strip()
            hits = [c for c in letters if c in tail]
            if len(hits) == 1:
                return hits[0]
    for ch in _STRIP_CHARS:
        response = response.strip(ch)
    response = f" {response} "

    candidates = [c for c in letters if f"({c})" in response]
    if candidates:
        if len(candidates) == 1:
            return candidates[0]
        return _candidates_last(response, candidates, {c: f"({c})" for c in letters})
    if parser == "mmmu":
        candidates = [c for c in letters if f" {c} " in response]
    else:
        candidates = [c for c in letters if f"{c} " in response]
        if not candidates:
            candidates = [c for c in letters if f"{c}." in response]
    if candidates:
        if len(candidates) == 1:
            return candidates[0]
        # the official code looks for " X " when ranking, even for candidates found as "X." (-1)
        return _candidates_last(response, candidates, {c: f" {c} " for c in letters})
    if len(response.split()) > 5:
        lowered = response.lower()
        candidates = [c for c, text in index2ans.items() if text.lower() in lowered]
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            positions = [lowered.rfind(index2ans[c].lower()) for c in candidates]
            return candidates[max(range(len(candidates)), key=lambda i: (positions[i], -i))]
    return None


def seeded_choice(letters: Sequence[str], seed: int, sample_id: str) -> str:
    """The official random fallback, made reproducible: a generator seeded by (seed, sample id)."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16)).choice(list(letters))


# --------------------------------------------------------------------------- open questions
def check_is_number(text: str) -> bool:
    """True when ``text`` (commas removed) parses as a float."""
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def normalize_str(text: str) -> list[str | float]:
    """MMMU ``normalize_str``: a number -> [float rounded to 2 decimals]; text -> [lower-cased];
    a single character -> [" c", "c "] (so it only matches as a whole word)."""
    text = text.strip()
    if check_is_number(text):
        value = round(float(text.replace(",", "")), 2)
        return [value]
    text = text.lower()
    if len(text) == 1:
        return [" " + text, text + " "]
    return [text]


_NUM_COMMAS = re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b")
_NUM_SCIENTIFIC = re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+")
_NUM_SIMPLE = re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])")


def extract_numbers(text: str) -> list[str]:
    """Numbers written with thousands separators, in scientific notation, or plainly (in that order)."""
    return _NUM_COMMAS.findall(text) + _NUM_SCIENTIFIC.findall(text) + _NUM_SIMPLE.findall(text)


_KEY_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")
_TRIVIAL = {":", ",", ".", "!", "?", ";", "'"}


def key_subresponses(response: str) -> list[str]:
    """The parts of a response likely to hold the answer: per sentence/line, the shortest tail after
    an indicator word ("is", "so", …; "=" too in the last one); the whole response if none.

    As in the official code the response is lower-cased *before* splitting on ``". "`` followed by
    a capital letter, so in practice only newlines split it."""
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    found = []
    for i, part in enumerate(parts):
        indicators = list(_KEY_INDICATORS) + (["="] if i == len(parts) - 1 else [])
        shortest: str | None = None
        for ind in indicators:
            if ind in part:
                tail = part.split(ind)[-1].strip()
                if not shortest or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in _TRIVIAL:
            found.append(shortest)
    return found or [response]


def parse_open_response(response: str) -> list[str | float]:
    """MMMU ``parse_open_response``: key sub-responses plus the numbers in them, normalised
    (:func:`normalize_str`), without duplicates (sorted for a stable record)."""
    keys = key_subresponses(response if isinstance(response, str) else "")
    preds: list[str] = list(keys)
    for k in keys:
        preds.extend(extract_numbers(k))
    out: list[str | float] = []
    for p in preds:
        for v in normalize_str(p):
            if v not in out:
                out.append(v)
    return sorted(out, key=lambda v: (isinstance(v, str), str(v)))


def gold_open_answers(answer: Any) -> list[str]:
    """The open question's gold answer(s): a string, or a list (also written as a list literal)."""
    if isinstance(answer, list | tuple):
        return [str(a) for a in answer]
    if isinstance(answer, str):
        text = answer.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = None
            if isinstance(value, list) and value:
                return [str(a) for a in value]
        return [answer]
    raise ValueError(f"open answer has the wrong type ({type(answer).__name__})")


def eval_open(gold: Sequence[str], parsed: Sequence[str | float]) -> bool:
    """MMMU ``eval_open``: a predicted float equal to a normalised gold float, or a normalised gold
    string contained in a predicted string."""
    norm: list[str | float] = []
    for g in gold:
        norm.extend(normalize_str(g))
    for pred in parsed:
        if isinstance(pred, str):
            if any(isinstance(g, str) and g in pred for g in norm):
                return True
        elif any(not isinstance(g, str) and pred == g for g in norm):
            return True
    return False


# --------------------------------------------------------------------------- the task
class MMMUTask(PromptedImageQATask):
    """MMMU validation / MMMU-Pro standard: interleaved images, official parsing, per subject and
    discipline. Config: ``dataset.subjects`` (``all`` or a list: one hub config each, concatenated
    in :data:`SUBJECTS` order; ``combined``: one config holding every subject, as ``lmms-lab/MMMU``), ``parser``, ``unparsed_choice``, ``seed``, ``prompts`` (multiple
    choice) / ``open_prompts`` (open questions), ``instructions``."""

    version = "1"
    id_column = "id"
    answer_column = "answer"
    question_column = "question"
    extra_columns: ClassVar[Sequence[str]] = ("question_type", "subject", "topic_difficulty")
    breakdown_keys = ("discipline", "subject", "question_type")
    metrics = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"
    scorer = "exact_match"
    extra_fields = frozenset({"options", "instruction"})
    #: True for MMMU-Pro vision: the whole question is inside the one ``image`` column
    vision_only: ClassVar[bool] = False
    default_parser: ClassVar[str] = "mmmu"
    #: True when the data is one hub config (MMMU-Pro), not one config per subject (MMMU)
    single_config: ClassVar[bool] = False

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        from evalkit.plugins.vqa import template_fields

        unknown = sorted(template_fields(self.open_template()) - self.base_fields - self.extra_fields)
        if unknown:
            raise UsageError(
                f"task {self.name}: open-question template uses unknown field(s) "
                f"{', '.join('{' + u + '}' for u in unknown)}; available: {{question}}, {{instruction}}"
            )

    # ----------------------------------------------------------------- config
    @property
    def parser(self) -> str:
        """The multiple-choice parser variant (``mmmu``, ``lmms_eval``, ``mmmu_pro``)."""
        value = str(self.config.get("parser") or self.default_parser)
        if value not in PARSERS:
            raise UsageError(f"task {self.name}: parser must be one of {', '.join(PARSERS)}, got {value!r}")
        return value

    @property
    def unparsed_choice(self) -> str:
        """``random`` (official, seeded) or ``wrong``."""
        value = str(self.config.get("unparsed_choice") or "random")
        if value not in ("random", "wrong"):
            raise UsageError(f"task {self.name}: unparsed_choice must be random or wrong, got {value!r}")
        return value

    def _instruction(self, kind: str) -> str:
        return str((self.config.get("instructions") or {}).get(kind) or "")

    def open_template(self) -> str:
        """The template of open questions for the selected preset (``open_prompts``)."""
        choice = str(self.config.get("prompt", "default"))
        presets = self.config.get("open_prompts") or {}
        if choice in presets:
            return str(presets[choice])
        return str(presets.get("default") or "{question}\n\n{instruction}")

    # ----------------------------------------------------------------- data
    def _subjects(self) -> list[str]:
        ds = self.config.get("dataset") or {}
        if ds.get("name"):
            return [str(ds["name"])]
        chosen = ds.get("subjects", "all")
        if chosen in (None, "all", "combined"):
            return list(SUBJECTS)
        if isinstance(chosen, str):
            chosen = [chosen]
        names = [str(s) for s in chosen]
        unknown = [s for s in names if s not in SUBJECTS]
        if unknown:
            raise UsageError(
                f"task {self.name}: unknown MMMU subject(s) {', '.join(unknown)}; known: {', '.join(SUBJECTS)}"
            )
        return names

    def load(self) -> None:
        """One config per subject (local folders: the subject folders present), concatenated;
        image columns left undecoded."""
        from datasets import Image, concatenate_datasets

        from evalkit.tasks.datasets import load_dataset_from_config, resolve_data_path

        ds_cfg = dict(self.config.get("dataset") or {})
        if self.single_config or ds_cfg.get("subjects") == "combined":
            super().load()
            self.dataset = self._undecoded(self.dataset, Image)
            return
        subjects = self._subjects()
        path = resolve_data_path(str(ds_cfg.get("path") or ""))
        local = Path(path).is_dir()
        if local and not ds_cfg.get("name") and ds_cfg.get("subjects", "all") in (None, "all"):
            subjects = [s for s in subjects if (Path(path) / s).is_dir()]
            if not subjects:
                raise UsageError(
                    f"no MMMU subject folders (<Subject>/{ds_cfg.get('split')}-*.parquet) under {ds_cfg.get('path')}"
                )
        parts, infos = [], {}
        for subject in subjects:
            part, info = load_dataset_from_config({**ds_cfg, "name": subject})
            parts.append(self._undecoded(part, Image))
            infos[subject] = {k: info.get(k) for k in ("fingerprint", "num_rows", "resolved_revision")}
        self.dataset = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        self.dataset_info = {
            "path": ds_cfg.get("path"),
            "split": ds_cfg.get("split"),
            "revision": ds_cfg.get("revision"),
            "subjects": infos,
            "num_rows": len(self.dataset),
            "fingerprint": getattr(self.dataset, "_fingerprint", None),
        }
        self.loaded_subjects = subjects

    @staticmethod
    def _undecoded(ds: Any, image_feature: Any) -> Any:
        for col in ["image", *(f"image_{k}" for k in range(1, MAX_IMAGES + 1))]:
            if col in ds.column_names:
                ds = ds.cast_column(col, image_feature(decode=False))
        return ds

    # ----------------------------------------------------------------- samples
    def _question_type(self, values: Mapping[str, Any]) -> str:
        qtype = values.get("question_type")
        if qtype is None:  # MMMU-Pro: every question is multiple choice
            return "multiple-choice"
        return str(qtype)

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Subject (column ``subject`` or from the id), discipline, question type, difficulty."""
        sid = values.get(self.id_column)
        subject = values.get("subject") or (subject_of(str(sid)) if sid is not None else None)
        subject = str(subject).replace(" ", "_") if subject else None
        meta: dict[str, Any] = {"question_type": self._question_type(values)}
        if subject:
            meta["subject"] = subject
            discipline = discipline_of(subject)
            if discipline:
                meta["discipline"] = discipline
        if values.get("topic_difficulty"):
            meta["difficulty"] = values["topic_difficulty"]
        return meta

    def make_target(self, values: Mapping[str, Any]) -> Any:
        """The gold letter (multiple choice) or open answer, as stored."""
        return values.get(self.answer_column)

    def check_target(self, sample: Sample) -> list[str]:
        """The gold answer(s) as strings; an input error when missing or unusable."""
        target = sample.target
        if target is None or (isinstance(target, str) and not target.strip()):
            raise InputError(f"missing gold answer in '{self.answer_column}'")
        if sample.metadata.get("question_type") == "open":
            try:
                return gold_open_answers(target)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        if not isinstance(target, str):
            raise InputError(f"'{self.answer_column}' must be a letter, got {type(target).__name__}")
        return [target.strip()]

    # ----------------------------------------------------------------- requests
    def _row_options(self, row: Mapping[str, Any]) -> list[str]:
        return parse_options(row.get("options"))

    def prompt_text(self, sample: Sample, row: Mapping[str, Any]) -> str:
        """The filled template (``<image k>`` tags still in place)."""
        qtype = sample.metadata.get("question_type", "multiple-choice")
        if self.vision_only:
            question = ""
        else:
            question = self.question(dict(row))
        if qtype == "open":
            return self.open_template().format(
                question=question, options="", instruction=self._instruction("open")
            )
        options = self._row_options(row)
        if not options:
            raise InputError("multiple-choice question without options")
        text = self.prompt_template().format(
            question=question,
            options=format_options(options),
            instruction=self._instruction("multiple_choice"),
        )
        return text.strip() if self.vision_only else text

    def build_request(self, sample: Sample) -> Request:
        """The prompt with each ``<image k>`` replaced by that image (unreferenced images first)."""
        if self.has_targets:
            self.check_target(sample)
        row = self.row(sample)
        text = self.prompt_text(sample, row)
        if self.vision_only:
            parts: list[Any] = [ImagePart(load_image(row.get("image"))), TextPart(text)]
            return Request(sample.id, (user_message(*parts),), self.generation(), task=self.name)
        images: dict[int, Any] = {}

        def image(k: int) -> Any:
            if k not in images:
                if not 1 <= k <= MAX_IMAGES:
                    raise InputError(
                        f"the question refers to <image {k}>; MMMU has image_1..image_{MAX_IMAGES}"
                    )
                value = row.get(f"image_{k}")
                if value is None:
                    raise InputError(f"the question refers to <image {k}> but 'image_{k}' is empty")
                images[k] = load_image(value)
            return images[k]

        segments: list[Any] = []
        pos = 0
        for m in _IMAGE_TAG.finditer(text):
            if m.start() > pos:
                segments.append(text[pos : m.start()])
            segments.append(ImagePart(image(int(m.group(1)))))
            pos = m.end()
        if pos < len(text):
            segments.append(text[pos:])
        referenced = {int(m.group(1)) for m in _IMAGE_TAG.finditer(text)}
        leading = [
            ImagePart(image(k))
            for k in range(1, MAX_IMAGES + 1)
            if k not in referenced and row.get(f"image_{k}") is not None
        ]
        parts = leading + [s if isinstance(s, ImagePart) else TextPart(s) for s in segments if s != ""]
        if not any(isinstance(p, ImagePart) for p in parts):
            raise InputError("no image in this question (image_1..image_7 are empty)")
        return Request(sample.id, (user_message(*parts),), self.generation(), task=self.name)

    # ----------------------------------------------------------------- scoring
    def _sample_options(self, sample: Sample) -> list[str]:
        return self._row_options(self.row(sample))

    def parse(self, sample: Sample, prediction: str) -> tuple[Any, str]:
        """``(parsed answer, source)``: the letter or open-answer list, and ``rule``, ``random`` or
        ``none`` (unparsed and ``unparsed_choice: wrong``)."""
        if sample.metadata.get("question_type") == "open":
            return parse_open_response(prediction), "rule"
        options = self._sample_options(sample)
        letter = parse_multi_choice_response(prediction, options, self.parser)
        if letter is not None:
            return letter, "rule"
        if self.unparsed_choice == "random" and options:
            return seeded_choice(
                option_letters(len(options)), int(self.config.get("seed", 42)), sample.id
            ), "random"
        return None, "none"

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """1.0 / 0.0 by MMMU's ``eval_multi_choice`` / ``eval_open``."""
        try:
            gold = self.check_target(sample)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        parsed, _ = self.parse(sample, prediction)
        if sample.metadata.get("question_type") == "open":
            return {"accuracy": 1.0 if eval_open(gold, parsed) else 0.0}
        return {"accuracy": 1.0 if parsed is not None and parsed in gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``parsed`` (letter or open-answer list) and ``parse_source`` (rule / random / none)."""
        try:
            parsed, source = self.parse(sample, prediction)
        except InputError:
            return {}
        return {"parsed": parsed, "parse_source": source}

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """``unparsed``: multiple-choice answers no rule could read (guessed or scored wrong)."""
        n = sum(1 for r in records if r.error is None and r.extra.get("parse_source") in ("random", "none"))
        return {"unparsed": n}

    def protocol(self) -> dict[str, Any]:
        """Parser variant, unparsed policy, both templates and the subjects loaded."""
        out = super().protocol()
        out["metric"] = (
            "accuracy (instance level) with MMMU's official parsing: parse_multi_choice_response "
            f"(variant {self.parser}) / parse_open_response + eval_open"
        )
        out["parser"] = self.parser
        out["unparsed_choice"] = self.unparsed_choice
        out["seed"] = int(self.config.get("seed", 42))
        out["open_prompt"] = None if self.vision_only else self.open_template()
        out["instructions"] = dict(self.config.get("instructions") or {})
        subjects = getattr(self, "loaded_subjects", None)
        if subjects is not None:
            out["subjects"] = list(subjects)
        return out


class MMMUProTask(MMMUTask):
    """MMMU-Pro ``standard (10 options)``: every question multiple choice (up to 10 options), one
    hub config; the ``mmmu_pro`` parser (``Answer: X`` first)."""

    default_parser = "mmmu_pro"
    single_config = True


class MMMUProVisionTask(MMMUProTask):
    """MMMU-Pro ``vision``: the question and options are inside the image; the prompt is the
    instruction only."""

    vision_only = True
    extra_columns = ("subject",)
