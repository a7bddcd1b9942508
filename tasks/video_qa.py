"""Video multiple-choice QA: Video-MME (with or without subtitles) and MVBench.

Shared plumbing (:class:`VideoQATask`):

* **Frame sampling** is protocol: the task config's ``video`` block (by default an interpolation of
  the model preset's ``model.video``, so the resolved config records what ran; override per task
  with ``task.video.nframes=16``) becomes a :class:`~evalkit.media.video.VideoSampling`. Since the
  preset always carries ``fps``, a non-null ``nframes`` takes precedence over ``fps`` (recorded as
  ``fps: null`` in ``protocol.video_sampling``).
* Frames are decoded per request by :func:`evalkit.media.video.sample_video` (only the planned
  frames, resized to the per-frame pixel budget) and sent as one
  :class:`~evalkit.types.VideoPart` (the HF backend passes it to the Qwen2-VL processor as
  ``videos=``, i.e. ``video_grid_thw``). A missing, empty, truncated or undecodable video, or an
  unusable clip bound, raises :class:`~evalkit.errors.InputError` -> one error record; the run goes on.
* Each record stores ``video`` (sampled frame indices, timestamps, clip, frame size, fallback
  notes) and ``extracted`` (the option letter found by :func:`evalkit.metrics.extract_choice`,
  ``None`` = unparsed, counted in ``counts.unparsed``).
* ``answer_prefill`` (MVBench's official ``Best option:(``): the assistant turn is pre-filled with
  it (a trailing assistant message the backend continues) and the letter is extracted from
  ``answer_prefill_return + prediction`` (``"("``, as the official evaluation re-attaches it).

Data layouts: see ``docs/tasks-video.md``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import InputError, UsageError
from evalkit.judge.choice import ChoiceFallback
from evalkit.media.video import (
    SampledVideo,
    VideoSampling,
    plan_frames,
    resize_frame_budget,
    sample_video,
)
from evalkit.metrics import extract_choice
from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.tasks.base import MetricSpec, Task, TaskResult
from evalkit.types import Message, Record, Request, Sample, TextPart, VideoPart, user_message

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VIDEO_SUFFIXES = ("", ".mp4", ".MP4", ".mkv", ".webm", ".avi", ".mov")
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


def _is_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~")) or Path(path).exists()


def find_video(folder: Path, name: str) -> Path:
    """``folder/name``, trying the usual video extensions when ``name`` has none or differs.

    Raises :class:`InputError` when no such file or frame folder exists.
    """
    base = folder / name
    candidates = [base] + [base.with_suffix(s) for s in _VIDEO_SUFFIXES if s and base.suffix != s]
    if not base.suffix:
        candidates += [Path(f"{base}{s}") for s in _VIDEO_SUFFIXES if s]
    for c in candidates:
        if c.exists():
            return c
    raise InputError(f"video {name} not found under {folder}")


# ------------------------------------------------------------------------------------ subtitles


@dataclass(frozen=True)
class SubtitleCue:
    """One SRT cue: 1-based position in the file, start/end in seconds, plain text."""

    number: int
    start: float
    end: float
    text: str


_SRT_TIME = re.compile(
    r"(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})\s*-->\s*(\d+):(\d{1,2}):(\d{1,2})[,.](\d{1,3})"
)
_TAG = re.compile(r"<[^>]+>")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def parse_srt(text: str) -> list[SubtitleCue]:
    """Cues of an SRT file in file order; markup (``<font ...>``) is removed, lines joined by spaces.

    Blocks without a valid ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` line or without text are skipped.
    """
    cues = []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff"))
    for block in blocks:
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        for k, line in enumerate(lines):
            m = _SRT_TIME.search(line)
            if m:
                body = " ".join(html.unescape(_TAG.sub("", ln)).strip() for ln in lines[k + 1 :])
                body = " ".join(body.split())
                if body:
                    cues.append(
                        SubtitleCue(len(cues) + 1, _seconds(*m.groups()[:4]), _seconds(*m.groups()[4:]), body)
                    )
                break
    return cues


def select_subtitles(cues: Sequence[SubtitleCue], timestamps: Sequence[float]) -> list[SubtitleCue]:
    """The cues shown at any of the sampled frame times (``start <= t < end``), in file order, once each."""
    return [c for c in cues if any(c.start <= t < c.end for t in timestamps)]


# ------------------------------------------------------------------------------------ base task


class VideoQATask(ChoiceFallback, Task):
    """Shared plumbing of video multiple-choice tasks (frame sampling, prompt, letter extraction)."""

    version = "2"
    metrics: Mapping[str, MetricSpec] = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"
    paper_scale = 100.0

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.rows: list[dict[str, Any]] = []
        self._sampling: VideoSampling | None = None
        # sampled-frame records of built requests, popped into the record by record_extra()
        self._video_log: dict[str, dict[str, Any]] = {}

    # ----------------------------------------------------------------- sampling
    @property
    def sampling(self) -> VideoSampling:
        """The frame-sampling protocol from ``config["video"]`` (``nframes`` wins over ``fps``)."""
        if self._sampling is None:
            raw = dict(self.config.get("video") or {})
            if raw.get("nframes") is not None:
                raw["fps"] = None
            self._sampling = VideoSampling.from_config(raw)
        return self._sampling

    def decode(self, path: Path, start: float | None = None, end: float | None = None) -> SampledVideo:
        """Sample ``path`` (or its clip) per :attr:`sampling`; every failure is an :class:`InputError`."""
        backend = str(self.config.get("video_backend") or "auto")
        try:
            if path.is_dir():
                return self._decode_frame_folder(path, start, end)
            return sample_video(path, self.sampling, start, end, backend=backend)
        except InputError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:  # anything the decoder lets through
            raise InputError(f"video {path.name} cannot be read: {type(exc).__name__}: {exc}") from None

    def _decode_frame_folder(self, folder: Path, start: float | None, end: float | None) -> SampledVideo:
        """A video stored as a folder of numbered frames at ``frame_folder_fps`` (MVBench's TVQA)."""
        from PIL import Image

        from evalkit.media.video import VideoInfo

        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_SUFFIXES)
        if not files:
            raise InputError(f"frame folder {folder.name} holds no frames")
        fps = float(self.config.get("frame_folder_fps") or 3.0)
        plan = plan_frames(len(files), fps, self.sampling, start, end)
        with Image.open(files[0]) as first:
            width, height = first.size
        size = resize_frame_budget(height, width, self.sampling, plan.nframes)
        cache: dict[int, Any] = {}
        for i in sorted(set(plan.indices)):
            try:
                with Image.open(files[i]) as im:
                    cache[i] = im.convert("RGB").resize((size[1], size[0]), Image.Resampling.BICUBIC)
            except OSError as exc:
                raise InputError(f"frame {files[i].name} of {folder.name} cannot be read: {exc}") from None
        info = VideoInfo(
            n_frames=len(files),
            fps=fps,
            duration_s=len(files) / fps,
            width=width,
            height=height,
            codec="frames",
            n_frames_source="folder",
        )
        return SampledVideo(
            frames=[cache[i] for i in plan.indices],
            timestamps=plan.timestamps,
            indices=plan.indices,
            info=info,
            plan=plan,
            frame_size=size,
            backend="frames",
            frame_index="folder",
            notes=plan.notes,
        )

    # ----------------------------------------------------------------- prompts
    def system_prompt(self) -> str | None:
        """Optional system message (``config["system_prompt"]``)."""
        text = self.config.get("system_prompt")
        return str(text) if text else None

    def answer_prefill(self) -> str | None:
        """Optional start of the assistant's answer (``config["answer_prefill"]``)."""
        text = self.config.get("answer_prefill")
        return str(text) if text else None

    def answer_text(self, prediction: str) -> str:
        """The text the letter is read from: ``answer_prefill_return + prediction`` when the answer
        was pre-filled (MVBench: ``"(" + "A) ..."``), else the prediction."""
        if self.answer_prefill() is None:
            return prediction
        return str(self.config.get("answer_prefill_return") or "") + prediction

    def make_request(self, sample: Sample, video: SampledVideo, prompt: str) -> Request:
        """One user turn: the video (frames + timestamps), then the prompt; logs the sampled frames."""
        self._video_log[sample.id] = video.record()
        part = VideoPart(tuple(video.frames), tuple(video.timestamps), fps=float(video.plan.sample_fps))
        messages: list[Message] = []
        system = self.system_prompt()
        if system:
            messages.append(Message("system", (TextPart(system),)))
        messages.append(user_message(part, prompt))
        prefill = self.answer_prefill()
        if prefill:
            messages.append(Message("assistant", (TextPart(prefill),)))
        return Request(sample.id, tuple(messages), self.generation(), task=self.name)

    # ----------------------------------------------------------------- scoring
    def options(self, sample: Sample) -> dict[str, str]:
        """``{letter: option text}`` of a sample."""
        raise NotImplementedError

    def gold_letter(self, sample: Sample) -> str:
        """The correct option letter (raise ``ValueError`` when the data has none)."""
        raise NotImplementedError

    def mcq_item(self, sample: Sample) -> tuple[dict[str, str], str | None, str] | None:
        """Options and gold letter (for the opt-in LLM fallback); the question stays in the video prompt."""
        return self.options(sample), None, self.gold_letter(sample)

    def extract(self, sample: Sample, prediction: str) -> str | None:
        """The option letter chosen by ``prediction`` (None = unparsed or ambiguous)."""
        options = self.options(sample)
        return extract_choice(self.answer_text(prediction), list(options), options=options or None)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """1.0 when the extracted letter is the gold letter, else 0.0 (unparsed counts as wrong)."""
        gold = self.gold_letter(sample)
        return {"accuracy": 1.0 if self.extract(sample, prediction) == gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extracted`` letter, and ``video`` (sampled indices/timestamps) when this run sampled it."""
        out: dict[str, Any] = {"extracted": self.extract(sample, prediction)}
        video = self._video_log.pop(sample.id, None)
        if video is not None:
            out["video"] = video
        return out

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """``unparsed``: scored samples from which no option letter could be extracted."""
        return {
            **super().counts(records),
            "unparsed": sum(
                1
                for r in records
                if r.error is None and "accuracy" in r.scores and r.extra.get("extracted") is None
            ),
        }

    def protocol(self) -> dict[str, Any]:
        """Adds the frame sampling, the extractor version and the scoring rule."""
        out = super().protocol()
        out["video_sampling"] = self.sampling.to_dict()
        out["video_backend"] = str(self.config.get("video_backend") or "auto")
        out["system_prompt"] = self.system_prompt()
        out["answer_prefill"] = self.answer_prefill()
        out["answer_prefill_return"] = (
            self.config.get("answer_prefill_return") if self.answer_prefill() else None
        )
        out["extractor_version"] = EXTRACTOR_VERSION
        out["metric"] = (
            "accuracy: extract_choice(prediction) == gold letter; unextractable = wrong (counted as unparsed)"
        )
        return out


# ------------------------------------------------------------------------------------ Video-MME


class VideoMMETask(VideoQATask):
    """Video-MME (``lmms-eval/Video-MME``, formerly ``lmms-lab/Video-MME``, split ``test``), without
    or with subtitles. ``accuracy`` counts unparsed answers as wrong (default); ``accuracy_answered``
    divides by the answered questions only, as the official Video-MME script does.

    Columns: ``video_id``, ``duration`` (short/medium/long), ``domain``, ``sub_category``, ``url``,
    ``videoID`` (YouTube id; the video file is ``<video_root>/<videoID>.mp4``), ``question_id``,
    ``task_type``, ``question``, ``options`` (``["A. ...", "B. ...", ...]``), ``answer`` (a letter).
    With ``subtitles: true`` the cues of ``<subtitle_root>/<videoID>.srt`` shown at the sampled
    frame times are inserted in the prompt (``{subtitles}``).
    """

    metrics = {
        # unparsed answers count as wrong (the default, comparable across harnesses)
        "accuracy": MetricSpec(score="accuracy"),
        # the official Video-MME script: accuracy over the answers a letter was read from only
        "accuracy_answered": MetricSpec(score="accuracy_answered"),
    }
    breakdown_keys = ("duration", "domain", "task_type", "sub_category")
    metadata_columns = ("duration", "domain", "sub_category", "task_type", "videoID", "video_id")
    cluster_key = "videoID"  # 3 questions per video: intervals and the gate resample whole videos

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Adds ``accuracy_answered`` (per-sample score kept only where a letter was extracted,
        after any LLM fallback) before the generic aggregate."""
        for r in records:
            r.scores.pop("accuracy_answered", None)
            if r.error is None and "accuracy" in r.scores and r.extra.get("extracted") is not None:
                r.scores["accuracy_answered"] = r.scores["accuracy"]
        return super().aggregate(records)

    def load(self) -> None:
        """Load the question table and resolve the video (and subtitle) folders."""
        super().load()
        cols = self.dataset.column_names
        missing = [c for c in ("question_id", "videoID", "question", "options", "answer") if c not in cols]
        if missing:
            raise UsageError(f"task {self.name}: dataset lacks column(s) {missing} (Video-MME schema)")
        self.rows = self.dataset.to_list()
        self.video_root = self._folder("video_root", "data")
        self.subtitle_root = self._folder("subtitle_root", "subtitle") if self.uses_subtitles else None

    @property
    def uses_subtitles(self) -> bool:
        """True for ``videomme_subs`` (``config["subtitles"]``)."""
        return bool(self.config.get("subtitles", False))

    def _folder(self, key: str, default_sub: str) -> Path:
        value = self.config.get(key)
        if value:
            return Path(str(value)).expanduser()
        ds_path = str((self.config.get("dataset") or {}).get("path") or "")
        if ds_path and _is_local(ds_path):
            base = Path(ds_path).expanduser()
            return (base if base.is_dir() else base.parent) / default_sub
        raise UsageError(
            f"task {self.name}: set task.{key}=<folder> (the unzipped '{default_sub}/' folder of the hub "
            "repository); videos are not part of the hub's parquet"
        )

    def samples(self) -> list[Sample]:
        """One sample per question; id = ``question_id``."""
        out = []
        for i, row in enumerate(self.rows):
            meta = {c: row[c] for c in self.metadata_columns if row.get(c) is not None}
            sid = row.get("question_id")
            out.append(Sample(str(sid) if sid is not None else f"row-{i}", i, row.get("answer"), meta))
        return out

    def options(self, sample: Sample) -> dict[str, str]:
        """Options ``"A. text"`` -> ``{"A": "text"}`` (letters by position when unlabelled)."""
        raw = self.rows[sample.index].get("options") or []
        out: dict[str, str] = {}
        for k, opt in enumerate(raw):
            m = re.match(r"^\s*\(?([A-Z])[.):]\s*(.*)$", str(opt), re.DOTALL)
            if m:
                out[m.group(1)] = m.group(2).strip()
            else:
                out[LETTERS[k]] = str(opt).strip()
        return out

    def gold_letter(self, sample: Sample) -> str:
        """The ``answer`` letter."""
        gold = sample.target
        if not isinstance(gold, str) or gold.strip().upper() not in self.options(sample):
            raise ValueError(f"gold answer {gold!r} is not one of the option letters")
        return gold.strip().upper()

    def subtitle_text(self, row: Mapping[str, Any], timestamps: Sequence[float]) -> tuple[str, list[int]]:
        """The subtitle lines at the sampled times (one per line) and their cue numbers."""
        assert self.subtitle_root is not None
        path = self.subtitle_root / f"{row['videoID']}.srt"
        none = str(self.config.get("no_subtitles_text", "No subtitles available"))
        if not path.is_file():
            return none, []
        cues = select_subtitles(parse_srt(path.read_text(encoding="utf-8", errors="replace")), timestamps)
        if not cues:
            return none, []
        return "\n".join(c.text for c in cues), [c.number for c in cues]

    def build_request(self, sample: Sample) -> Request:
        """Video frames + the Video-MME prompt (question, ``A. ...`` options, optional subtitles)."""
        row = self.rows[sample.index]
        question = row.get("question")
        if not isinstance(question, str) or not question.strip():
            raise InputError("missing or empty 'question' field")
        options = row.get("options")
        if not options:
            raise InputError("missing 'options' field")
        if not row.get("videoID"):
            raise InputError("missing 'videoID' field")
        video = self.decode(find_video(self.video_root, f"{row['videoID']}.mp4"))
        fields = {"question": question, "options": "\n".join(str(o) for o in options), "subtitles": ""}
        cue_numbers: list[int] = []
        if self.uses_subtitles:
            fields["subtitles"], cue_numbers = self.subtitle_text(row, video.timestamps)
        request = self.make_request(sample, video, self.prompt_template().format(**fields))
        if self.uses_subtitles:
            self._video_log[sample.id]["subtitle_cues"] = cue_numbers
        return request

    def protocol(self) -> dict[str, Any]:
        """Adds the subtitle setting."""
        out = super().protocol()
        out["subtitles"] = (
            "cues of <videoID>.srt with start <= t < end for a sampled frame time t, in file order"
            if self.uses_subtitles
            else None
        )
        return out


# ------------------------------------------------------------------------------------ MVBench

#: task -> (json file, video folder under video/, clip bounds used) as in MVBench's official
#: evaluation (OpenGVLab Ask-Anything ``mvbench.ipynb`` data_list).
MVBENCH_TASKS: dict[str, tuple[str, str, bool]] = {
    "action_sequence": ("action_sequence.json", "star/Charades_v1_480", True),
    "action_prediction": ("action_prediction.json", "star/Charades_v1_480", True),
    "action_antonym": ("action_antonym.json", "ssv2_video", False),
    "fine_grained_action": ("fine_grained_action.json", "Moments_in_Time_Raw/videos", False),
    "unexpected_action": ("unexpected_action.json", "FunQA_test/test", False),
    "object_existence": ("object_existence.json", "clevrer/video_validation", False),
    "object_interaction": ("object_interaction.json", "star/Charades_v1_480", True),
    "object_shuffle": ("object_shuffle.json", "perception/videos", False),
    "moving_direction": ("moving_direction.json", "clevrer/video_validation", False),
    "action_localization": ("action_localization.json", "sta/sta_video", True),
    "scene_transition": ("scene_transition.json", "scene_qa/video", False),
    "action_count": ("action_count.json", "perception/videos", False),
    "moving_count": ("moving_count.json", "clevrer/video_validation", False),
    "moving_attribute": ("moving_attribute.json", "clevrer/video_validation", False),
    "state_change": ("state_change.json", "perception/videos", False),
    "fine_grained_pose": ("fine_grained_pose.json", "nturgbd", False),
    "character_order": ("character_order.json", "perception/videos", False),
    "egocentric_navigation": ("egocentric_navigation.json", "vlnqa", False),
    "episodic_reasoning": ("episodic_reasoning.json", "tvqa/frames_fps3_hq", True),
    "counterfactual_inference": ("counterfactual_inference.json", "clevrer/video_validation", False),
}


class MVBenchTask(VideoQATask):
    """MVBench (``OpenGVLab/MVBench``): 20 tasks of 200 questions, accuracy per task, mean over
    tasks (official average) and pooled.

    Layout (the hub repository, videos unzipped): ``<root>/json/<task>.json`` (a list of
    ``{"video", "question", "candidates", "answer"[, "start", "end"]}``; ``answer`` is the text of
    the correct candidate) and ``<root>/video/<folder>/<video>``. Sample ids are ``<task>-<n>``
    (n = position in the JSON file).
    """

    metrics = {
        "accuracy": MetricSpec(score="accuracy"),
        "accuracy_mean_over_tasks": MetricSpec(score="accuracy", kind="macro", group="task_type"),
    }
    main_metric = "accuracy_mean_over_tasks"
    breakdown_keys = ("task_type",)
    # tasks draw on shared source folders (five CLEVRER tasks on clevrer/video_validation, three
    # STAR tasks cut clips from star/Charades_v1_480...), so one video can carry several questions:
    # metadata["video"] = <official folder>/<video> (one video alone is a cluster of one: harmless)
    cluster_key = "video"

    def task_table(self) -> dict[str, tuple[str, str, bool]]:
        """The selected tasks (``config["tasks"]``, default all 20) with their files and folders;
        ``config["task_folders"]`` overrides folders."""
        names = list(self.config.get("tasks") or MVBENCH_TASKS)
        unknown = [n for n in names if n not in MVBENCH_TASKS]
        if unknown:
            raise UsageError(
                f"task {self.name}: unknown MVBench task(s) {unknown}; known: {list(MVBENCH_TASKS)}"
            )
        folders = dict(self.config.get("task_folders") or {})
        return {
            n: (MVBENCH_TASKS[n][0], str(folders.get(n, MVBENCH_TASKS[n][1])), MVBENCH_TASKS[n][2])
            for n in names
        }

    def load(self) -> None:
        """Read ``json/<task>.json`` of every selected task (local copy or hub download)."""
        ds = dict(self.config.get("dataset") or {})
        raw = str(ds.get("path") or "")
        if not raw:
            raise UsageError("task.dataset.path is not set (a local MVBench folder or OpenGVLab/MVBench)")
        table = self.task_table()
        if _is_local(raw):
            root = Path(raw).expanduser()
            json_dir = root / "json"
        else:
            try:
                from huggingface_hub import snapshot_download

                root = Path(
                    snapshot_download(
                        raw, repo_type="dataset", revision=ds.get("revision"), allow_patterns=["json/*"]
                    )
                )
            except Exception as exc:
                raise UsageError(
                    f"could not download {raw}: {str(exc).splitlines()[0] if str(exc) else exc}"
                ) from exc
            json_dir = root / "json"
        video_root = self.config.get("video_root")
        self.video_root = Path(str(video_root)).expanduser() if video_root else root / "video"
        self.rows = []
        digest = hashlib.sha256()
        for task, (json_name, folder, bound) in table.items():
            path = json_dir / json_name
            if not path.is_file():
                raise UsageError(
                    f"task {self.name}: {path} not found (MVBench layout: <root>/json/<task>.json)"
                )
            text = path.read_text()
            digest.update(f"{json_name}\0{text}\0".encode())
            items = json.loads(text)
            for n, item in enumerate(items):
                self.rows.append({**item, "_task": task, "_n": n, "_folder": folder, "_bound": bound})
        self.dataset_info = {"path": raw, "resolved_path": str(root), "num_rows": len(self.rows),
                             "tasks": list(table), "revision": ds.get("revision"),
                             "fingerprint": digest.hexdigest()}  # fmt: skip

    def samples(self) -> list[Sample]:
        """One sample per question, in task order; metadata ``task_type`` = the task name and
        ``video`` = the video's official folder and file name (the cluster key: the same label
        whatever ``task_folders`` says, and for every clip cut from one video)."""
        out = []
        for i, r in enumerate(self.rows):
            meta = {"task_type": r["_task"]}
            if isinstance(r.get("video"), str) and r["video"]:
                meta["video"] = f"{MVBENCH_TASKS[r['_task']][1]}/{r['video']}"
            out.append(Sample(f"{r['_task']}-{r['_n']}", i, r.get("answer"), meta))
        return out

    def options(self, sample: Sample) -> dict[str, str]:
        """Candidates as ``{"A": text, ...}``."""
        cands = self.rows[sample.index].get("candidates") or []
        return {LETTERS[k]: str(c) for k, c in enumerate(cands)}

    def gold_letter(self, sample: Sample) -> str:
        """The letter of the candidate equal to ``answer``."""
        for letter, text in self.options(sample).items():
            if text == str(sample.target):
                return letter
        raise ValueError(f"answer {sample.target!r} is not one of the candidates")

    def bounds(self, row: Mapping[str, Any]) -> tuple[float | None, float | None]:
        """``(start, end)`` in seconds for the tasks evaluated on clips, else ``(None, None)``."""
        if not row.get("_bound") or not self.config.get("use_bounds", True):
            return None, None
        try:
            start = float(row["start"]) if row.get("start") is not None else None
            end = float(row["end"]) if row.get("end") is not None else None
        except (TypeError, ValueError):
            raise InputError(f"bad clip bounds start={row.get('start')!r} end={row.get('end')!r}") from None
        return start, end

    def build_request(self, sample: Sample) -> Request:
        """Clip frames + ``Question: ...\\nOptions:\\n(A) ...`` + the answer instruction."""
        row = self.rows[sample.index]
        question, cands = row.get("question"), row.get("candidates")
        if not isinstance(question, str) or not question.strip():
            raise InputError("missing or empty 'question' field")
        if not isinstance(cands, list) or len(cands) < 2:
            raise InputError("'candidates' must list at least two options")
        try:
            self.gold_letter(sample)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if not row.get("video"):
            raise InputError("missing 'video' field")
        start, end = self.bounds(row)
        video = self.decode(find_video(self.video_root / row["_folder"], str(row["video"])), start, end)
        options = "\n".join(f"({letter}) {text}" for letter, text in self.options(sample).items())
        prompt = self.prompt_template().format(question=question.strip(), options=options)
        request = self.make_request(sample, video, prompt)
        self._video_log[sample.id]["clip_seconds"] = [start, end]
        return request

    def protocol(self) -> dict[str, Any]:
        """Adds the task list and the clip-bound rule."""
        out = super().protocol()
        out["tasks"] = {
            n: {"json": j, "folder": f, "clip_bounds": b} for n, (j, f, b) in self.task_table().items()
        }
        out["use_bounds"] = bool(self.config.get("use_bounds", True))
        return out
