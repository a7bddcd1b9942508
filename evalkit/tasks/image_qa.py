"""Shared plumbing of single-image question-answering tasks (DocVQA, VQA family, RealWorldQA...).

Subclasses name their columns and implement :meth:`~evalkit.tasks.base.Task.score`; images are
kept undecoded in the dataset and decoded per request by :func:`evalkit.media.image.load_image`, so a
corrupt image becomes one sample's error record instead of a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import InputError, UsageError
from evalkit.media.image import load_image
from evalkit.tasks.base import Task
from evalkit.types import ImagePart, Request, Sample, as_str_list, sample_id, user_message

#: ANLS variants (``task.metric.variant=``) -> what each one is, recorded in the protocol
ANLS_VARIANT_SOURCES: dict[str, str] = {
    "rrc": (
        "the DocVQA/InfographicVQA leaderboard's evaluation script (RRC / docvqa.org "
        "infographicsvqa_eval.py; also Qwen-VL eval_mm, lmms-eval, VLMEvalKit): NL = "
        "Levenshtein(normalised) / max upper-cased length of the raw strings; 1 - NL kept when >= tau"
    ),
    "paper": (
        "the paper's definition as in the PyPI 'anls' package: NL = Levenshtein / max upper-cased "
        "length of the normalised strings; 1 - NL kept when NL < tau"
    ),
}


def anls_settings(config: Mapping[str, Any], task_name: str) -> tuple[float, str]:
    """``(threshold, variant)`` of an ANLS task from ``config["metric"]`` (defaults 0.5, ``rrc``);
    a :class:`UsageError` for an unknown variant or a threshold that is not a number."""
    metric = config.get("metric") or {}
    variant = str(metric.get("variant") or "rrc")
    if variant not in ANLS_VARIANT_SOURCES:
        raise UsageError(
            f"task {task_name}: unknown metric.variant {variant!r}; available: {', '.join(ANLS_VARIANT_SOURCES)}"
        )
    try:
        threshold = float(metric.get("threshold", 0.5))
    except (TypeError, ValueError):
        raise UsageError(f"task {task_name}: metric.threshold must be a number") from None
    return threshold, variant


def anls_description(threshold: float, variant: str) -> str:
    """The ANLS definition recorded in results (``protocol.metric``)."""
    return (
        f"anls(threshold={threshold}, variant={variant!r}), normalisation lower/strip/collapse spaces; "
        f"{variant} = {ANLS_VARIANT_SOURCES[variant]}"
    )


def strip_answer(prediction: Any) -> str:
    """A model answer as a submission file holds it: text with newlines/tabs as spaces, stripped
    (as the Qwen-VL scripts strip the decoded answer); non-text -> ``""``."""
    if not isinstance(prediction, str):
        return ""
    return prediction.replace("\n", " ").replace("\t", " ").strip()


def _column_values(dataset: Any, column: str) -> list[Any]:
    """A column's values; text that is not valid UTF-8 comes back as raw ``bytes`` (per value), so
    the affected samples become error records instead of the whole dataset failing to list."""
    try:
        return list(dataset[column])
    except UnicodeDecodeError:
        import pyarrow as pa
        import pyarrow.compute as pc

        arrow = dataset.data.column(column).combine_chunks()

        def raw(arr: Any) -> Any:
            if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
                return arr.view(pa.binary() if pa.types.is_string(arr.type) else pa.large_binary())
            if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
                return type(arr).from_arrays(arr.offsets, raw(arr.flatten()), mask=pc.is_null(arr))
            return arr

        values = raw(arrow).to_pylist()
        out = []
        for v in values:
            try:
                out.append(_decode_all(v))
            except UnicodeDecodeError:
                out.append(v)
        return out


def image_label(value: Any) -> str | None:
    """A stable label identifying an undecoded image cell, for datasets whose rows carry the image
    but no image id: the XXH3-64 digest of the encoded bytes (rows of one image hold the same
    bytes), or the file path when the cell has no bytes; None when there is no image. A plain
    string cell is a path when short, else (base64) digested too."""
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, str):
        data, path = (value.encode() if len(value) > 512 else None), value
    else:
        data, path = value, None
    if isinstance(data, bytes | bytearray | memoryview) and len(data):
        import xxhash

        return xxhash.xxh3_64_hexdigest(data)
    return path if isinstance(path, str) and path else None


def image_labels(dataset: Any, column: str, batch_size: int = 64) -> list[str | None]:
    """:func:`image_label` of every row's ``column`` (read in batches: bounded memory, no decoding)."""
    n = len(dataset)
    if column not in dataset.column_names:
        return [None] * n
    out: list[str | None] = []
    for batch in dataset.select_columns([column]).iter(batch_size=batch_size):
        out.extend(image_label(v) for v in batch[column])
    return out


def _decode_all(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_decode_all(v) for v in value]
    return value


class ImageQATask(Task):
    """Shared plumbing of single-image QA tasks: undecoded image column, question/answer columns."""

    id_column = "question_id"
    question_column = "question"
    answer_column = "answer"
    image_column = "image"
    metadata_columns: Sequence[str] = ()

    def load(self) -> None:
        """Load the dataset with images left undecoded (decoded per request, errors per sample)."""
        super().load()
        from datasets import Image

        cols = self.dataset.column_names
        if self.image_column in cols:
            self.dataset = self.dataset.cast_column(self.image_column, Image(decode=False))

    def _columns(self, names: Sequence[str]) -> dict[str, list[Any]]:
        present = [c for c in names if c in self.dataset.column_names]
        try:
            table = self.dataset.select_columns(present)[:] if present else {}
        except UnicodeDecodeError:  # a text column with invalid UTF-8: read the raw bytes instead
            table = {c: _column_values(self.dataset, c) for c in present}
        n = len(self.dataset)
        return {c: table.get(c, [None] * n) for c in names}

    @property
    def has_targets(self) -> bool:
        """Test splits hide their answers."""
        split = str((self.config.get("dataset") or {}).get("split", ""))
        return not split.startswith("test") or bool(self.config.get("force_scoring", False))

    def samples(self) -> list[Sample]:
        """One sample per row; ids from the dataset's own id column."""
        cols = self._columns([self.id_column, self.answer_column, *self.metadata_columns])
        out = []
        for i, raw_id in enumerate(cols[self.id_column]):
            meta = {c: cols[c][i] for c in self.metadata_columns if cols[c][i] is not None}
            sid, problem = sample_id(raw_id, i)  # undecodable id bytes: a safe, unique id + an error
            out.append(
                Sample(id=sid, index=i, target=cols[self.answer_column][i], metadata=meta, error=problem)
            )
        return out

    def row(self, sample: Sample) -> dict[str, Any]:
        """The dataset row of a sample (image undecoded)."""
        return self.dataset[sample.index]

    def question(self, row: dict[str, Any]) -> str:
        """The question text of a row; a missing or non-string question is an input error."""
        q = row.get(self.question_column)
        if not isinstance(q, str) or not q.strip():
            raise InputError(f"missing or empty '{self.question_column}' field")
        return q

    def build_request(self, sample: Sample) -> Request:
        """Image + the prompt template filled with the question."""
        if self.has_targets:
            target = sample.target
            if target is not None and not isinstance(target, str | list | tuple):
                raise InputError(
                    f"'{self.answer_column}' has the wrong type ({type(target).__name__}); expected text or a list of texts"
                )
            if not as_str_list(target):
                raise InputError(f"no gold answers in '{self.answer_column}' (empty answer list)")
        row = self.row(sample)
        question = self.question(row)
        image = load_image(row.get(self.image_column))
        prompt = self.prompt_template().format(question=question)
        return Request(
            sample.id, (user_message(ImagePart(image), prompt),), self.generation(), task=self.name
        )
