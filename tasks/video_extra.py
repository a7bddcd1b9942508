"""More video multiple-choice QA: PerceptionTest (MC video QA) and EgoSchema.

Both reuse :class:`evalkit.plugins.video_qa.VideoQATask` - the same Qwen2-VL frame protocol as
Video-MME and MVBench (``task.video`` = the model preset's ``model.video``: 2 fps, an even frame
count in [4, 768], per-frame pixel budget), decoding by :func:`evalkit.media.video.sample_video`,
option-letter extraction by :func:`evalkit.metrics.extract_choice` and a bad video (missing,
empty, truncated, undecodable) as one per-sample input error.

* ``perceptiontest_val_mc`` - ``lmms-eval/PerceptionTest_Val`` (fallback: the old ``lmms-lab/`` id) config ``mc_question_val`` split
  ``validation`` (19,140 questions, 3 options, ``answer_id`` public): top-1 accuracy, broken down
  by ``area`` (memory/abstraction/physics/semantics), ``reasoning`` (descriptive/explanatory/
  predictive/counterfactual) and ``tag`` (a question counts for each of its tags).
  ``perceptiontest_test_mc`` - ``lmms-eval/PerceptionTest`` config ``mc_question`` split ``test``
  (answers hidden) -> a submission file.
* ``egoschema_subset`` - ``lmms-eval/egoschema`` config ``Subset`` (the public 500-question subset
  with answers): accuracy. ``egoschema`` - config ``MC``, the full 5,031 questions (answers
  hidden) -> a submission file ``{video_idx: option index}`` for the EgoSchema server.

Videos are not in the parquet: the hub repositories ship them as zips that unzip to
``videos/<name>.mp4``; ``task.video_root`` (default ``<dataset.path>/videos`` for a local copy)
points there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.plugins.video_qa import LETTERS, VideoQATask, find_video

from evalkit.errors import InputError, UsageError
from evalkit.tasks.base import MetricSpec, write_submission_json
from evalkit.types import Record, Request, Sample


def _local_path(raw: str) -> Path | None:
    """``raw`` as a local path when it names one (hub ids give ``None``)."""
    if raw.startswith(("/", "./", "../", "~")) or Path(raw).expanduser().exists():
        return Path(raw).expanduser()
    return None


def strip_option_label(option: str, letter: str) -> str:
    """``"A. text"`` -> ``"text"`` when the option carries its own letter label, else unchanged."""
    text = str(option).strip()
    for sep in (". ", ".", ") ", ")", ": ", ":"):
        for prefix in (f"{letter}{sep}", f"({letter}{sep}"):
            if text.startswith(prefix) and len(text) > len(prefix):
                return text[len(prefix) :].strip()
    return text


class HubVideoMCTask(VideoQATask):
    """A video MCQ whose question table is a hub parquet and whose videos sit in ``video_root``.

    Subclasses name the columns (:attr:`id_columns`, :attr:`video_column`, :attr:`options_column`,
    :attr:`answer_column`) and how the answer is stored.
    """

    version = "1"
    video_column = "video_name"
    options_column = "options"
    answer_column = "answer"
    question_column = "question"
    id_columns: Sequence[str] = ()
    metadata_columns: Sequence[str] = ()

    def load(self) -> None:
        """Load the question table (hub id or local copy) and resolve the video folder."""
        super().load()
        cols = self.dataset.column_names
        needed = [self.video_column, self.question_column, self.options_column, *self.id_columns]
        if self.has_targets:
            needed.append(self.answer_column)
        missing = [c for c in needed if c not in cols]
        if missing:
            raise UsageError(
                f"task {self.name}: dataset {self.dataset_info.get('path')} lacks column(s) {missing} "
                f"(columns: {', '.join(cols)})"
            )
        self.rows = self.dataset.to_list()
        self.video_root = self._video_root()

    @property
    def has_targets(self) -> bool:
        """False for the hidden-answer sets (``targets_hidden: true``): a submission file is written."""
        return not bool(self.config.get("targets_hidden", False))

    def _video_root(self) -> Path:
        value = self.config.get("video_root")
        if value:
            return Path(str(value)).expanduser()
        local = _local_path(str((self.config.get("dataset") or {}).get("path") or ""))
        if local is not None:
            return (local if local.is_dir() else local.parent) / "videos"
        raise UsageError(
            f"task {self.name}: set task.video_root=<folder> (the unzipped videos/ folder of the hub "
            "repository); videos are not part of the hub's parquet"
        )

    def sample_id(self, row: Mapping[str, Any], index: int) -> str:
        """The sample id built from :attr:`id_columns` (``row-<i>`` when they are empty)."""
        parts = [str(row[c]) for c in self.id_columns if row.get(c) not in (None, "")]
        return "-".join(parts) if len(parts) == len(self.id_columns) and parts else f"row-{index}"

    def samples(self) -> list[Sample]:
        """One sample per question, in dataset order."""
        out = []
        for i, row in enumerate(self.rows):
            meta = {c: row[c] for c in self.metadata_columns if row.get(c) not in (None, [], "")}
            out.append(Sample(self.sample_id(row, i), i, row.get(self.answer_column), meta))
        self._by_id = {s.id: s for s in out}
        return out

    def options(self, sample: Sample) -> dict[str, str]:
        """``{letter: option text}`` (letters by position; ``"A. "`` labels stripped)."""
        raw = self.rows[sample.index].get(self.options_column) or []
        return {LETTERS[k]: strip_option_label(str(o), LETTERS[k]) for k, o in enumerate(raw)}

    def gold_letter(self, sample: Sample) -> str:
        """The gold answer is the 0-based index of the correct option (as text or an int)."""
        try:
            index = int(str(sample.target).strip())
        except (TypeError, ValueError):
            raise ValueError(f"gold answer {sample.target!r} is not an option index") from None
        if not 0 <= index < len(self.options(sample)):
            raise ValueError(f"gold answer index {index} is outside the {len(self.options(sample))} options")
        return LETTERS[index]

    def build_request(self, sample: Sample) -> Request:
        """Video frames + the prompt (question, ``A. ...`` options, answer instruction)."""
        row = self.rows[sample.index]
        question = row.get(self.question_column)
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"missing or empty '{self.question_column}' field")
        options = self.options(sample)
        if len(options) < 2:
            raise InputError(f"'{self.options_column}' must list at least two options")
        if self.has_targets:
            try:
                self.gold_letter(sample)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        name = row.get(self.video_column)
        if not name:
            raise InputError(f"missing '{self.video_column}' field")
        video = self.decode(find_video(self.video_root, f"{name}.mp4"))
        text = "\n".join(f"{letter}. {option}" for letter, option in options.items())
        prompt = self.prompt_template().format(question=question.strip(), options=text)
        return self.make_request(sample, video, prompt)

    def record_row(self, record: Record) -> tuple[Sample | None, dict[str, Any]]:
        """The sample and dataset row a record belongs to (``(None, {})`` if unknown)."""
        if not hasattr(self, "_by_id"):
            self.samples()
        sample = self._by_id.get(record.id)
        return sample, (self.rows[sample.index] if sample is not None else {})

    def predicted_index(self, record: Record) -> int:
        """The 0-based option index of a record's answer; -1 when unparsed or an error."""
        sample, _ = self.record_row(record)
        if sample is None or record.error is not None or not isinstance(record.prediction, str):
            return -1
        letter = self.extract(sample, record.prediction)
        return LETTERS.index(letter) if isinstance(letter, str) and letter in LETTERS else -1

    def protocol(self) -> dict[str, Any]:
        """Adds the columns used and the submission rule."""
        out = super().protocol()
        out["columns"] = {
            "video": self.video_column,
            "question": self.question_column,
            "options": self.options_column,
            "answer": self.answer_column,
            "id": list(self.id_columns),
        }
        out["targets_hidden"] = not self.has_targets
        return out


class PerceptionTestTask(HubVideoMCTask):
    """PerceptionTest multiple-choice video QA (3 options; ``answer_id`` = index of the right one).

    Columns (``lmms-lab/PerceptionTest_Val`` ``mc_question_val``): ``video_name``, ``question``,
    ``question_id`` (numbered per video, so sample ids are ``<video_name>-<question_id>``),
    ``options`` (list of 3 strings), ``answer_id`` (str), ``area``, ``reasoning``, ``tag`` (list).
    The test config ``mc_question`` has no answer/area/reasoning/tag columns.
    """

    answer_column = "answer_id"
    id_columns = ("video_name", "question_id")
    metadata_columns = ("area", "reasoning", "tag", "video_name")
    breakdown_keys = ("area", "reasoning", "tag")
    metrics = {"accuracy": MetricSpec(score="accuracy")}

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """lmms-eval's PerceptionTest test file: a list of ``{"video_name", "question",
        "question_id", "pred_id"}`` (``pred_id`` = 0-based option, -1 when unparsed or an error)."""
        entries = []
        for r in records:
            _, row = self.record_row(r)
            entries.append(
                {
                    "video_name": row.get("video_name"),
                    "question": row.get("question"),
                    "question_id": row.get("question_id"),
                    "pred_id": self.predicted_index(r),
                }
            )
        return write_submission_json(entries, path)


class EgoSchemaTask(HubVideoMCTask):
    """EgoSchema (5 options per question, 3-minute egocentric clips).

    Columns (``lmms-lab/egoschema``): ``question_idx``, ``question``, ``video_idx`` (the EgoSchema
    ``q_uid``; the clip is ``videos/<video_idx>.mp4``), ``option`` (list of ``"A. ..."`` strings),
    ``answer`` (0-based index as text; empty in the hidden ``MC`` config).
    """

    video_column = "video_idx"
    options_column = "option"
    answer_column = "answer"
    id_columns = ("video_idx",)
    metadata_columns = ()

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """The EgoSchema server's JSON ``{video_idx (q_uid): option index}`` (-1 when unparsed)."""
        out: dict[str, int] = {}
        for r in records:
            _, row = self.record_row(r)
            out[str(row.get("video_idx", r.id))] = self.predicted_index(r)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
        return path
