"""Zero-shot image captioning (COCO, NoCaps, Flickr30k) scored with pycocoevalcap.

Data (lmms-lab hub schemas; columns are config): ``lmms-lab/COCO-Caption2017`` split ``val``
(``question_id`` = image file name, ``answer`` = references), ``lmms-lab/COCO-Caption`` (2014),
``lmms-lab/NoCaps`` split ``validation`` (``image_id``, ``annotations_captions``; per-domain
breakdown when a ``domain`` column exists), ``lmms-lab/flickr30k`` split ``test`` (``img_id``,
``caption``) and ``yerevann/coco-karpathy`` split ``test`` (``cocoid``, ``sentences``; images read
from ``task.image_root/<filepath>/<filename>`` because the hub copy only holds URLs).

Metrics (:func:`evalkit.metrics.caption.evaluate_captions`, one evaluation per run): predictions
and references are PTB-tokenised once, then BLEU-1..4, METEOR, ROUGE-L and CIDEr are computed over
the whole set of scored samples (corpus-level; CIDEr's IDF comes from the evaluated references).
SPICE is ``null`` with a one-line reason in ``notes`` unless Stanford CoreNLP is installed for
pycocoevalcap. Java is required and checked when the task loads, before any generation.

After aggregation each scored record carries its per-image CIDEr in ``scores["cider"]`` (the mean
of those equals the corpus CIDEr); the NoCaps ``domain`` breakdown is the mean of the per-image
CIDEr within each domain, from the same evaluation.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import InputError, MissingDependencyError, UsageError
from evalkit.media.image import load_image
from evalkit.metrics.caption import CAPTION_METRICS, evaluate_captions
from evalkit.tasks.base import MetricSpec, TaskResult, write_submission_json
from evalkit.tasks.image_qa import ImageQATask
from evalkit.types import GenerationParams, ImagePart, Record, Request, Sample, as_str_list, user_message


class CaptionTask(ImageQATask):
    """One caption per image, scored at corpus level with pycocoevalcap (see module docstring)."""

    version = "1"
    #: CIDEr is corpus-level, and equal to the mean of pycocoevalcap's per-image CIDEr (IDF from the
    #: evaluated references), so it is declared as that mean: reports can bootstrap it per image.
    metrics = {
        name: MetricSpec(kind="mean", score="cider") if name == "cider" else MetricSpec(kind="corpus")
        for name in CAPTION_METRICS
    }
    main_metric = "cider"
    paper_scale = 100.0
    breakdown_keys = ()  # the domain breakdown is computed from per-image CIDEr in aggregate()

    def __init__(self, config: dict[str, Any]):
        super().__init__(config)
        cfg = self.config
        self.id_column = str(cfg.get("id_column") or "question_id")
        self.answer_column = str(cfg.get("references_column") or "answer")
        self.image_column = str(cfg.get("image_column") or "image")
        self.domain_column: str | None = cfg.get("domain_column") or None
        self.image_root: str | None = cfg.get("image_root") or None
        self.filepath_column = str(cfg.get("filepath_column") or "filepath")
        self.filename_column = str(cfg.get("filename_column") or "filename")
        self.prompt_template()  # fail early on an unknown preset

    # ----------------------------------------------------------------- data
    @property
    def has_targets(self) -> bool:
        """Scored unless ``targets_hidden`` (e.g. COCO/NoCaps test splits: submission file only)."""
        return not bool(self.config.get("targets_hidden", False))

    def load(self) -> None:
        """Load the split (images undecoded); check the reference/image columns and Java up front,
        so a missing dependency stops the run before any generation."""
        super().load()
        cols = self.dataset.column_names
        if self.has_targets and self.answer_column not in cols:
            raise UsageError(
                f"task {self.name}: dataset has no reference column {self.answer_column!r} "
                f"(columns: {', '.join(cols)}); set task.references_column, or task.targets_hidden=true "
                "for a split without references"
            )
        if self.image_column not in cols and not self.image_root:
            raise UsageError(
                f"task {self.name}: dataset has no image column {self.image_column!r} (columns: {', '.join(cols)}); "
                f"set task.image_root=<folder> to read <image_root>/<{self.filepath_column}>/<{self.filename_column}>"
            )
        if self.has_targets and shutil.which("java") is None:
            raise MissingDependencyError(
                f"task {self.name} needs Java for its caption metrics (pycocoevalcap's PTB tokenizer and METEOR "
                "are Java programs) and `java` is not on PATH; install a Java runtime, e.g. "
                "`apt-get install default-jre-headless` or `conda install openjdk`"
            )

    def _subset_ids(self) -> set[str] | None:
        """Values of ``task.subset_column`` (default: the id column) to keep, from ``task.subset_ids``
        (a list, or a file holding a JSON list or one value per line), e.g. the Karpathy test split."""
        spec = self.config.get("subset_ids")
        if not spec:
            return None
        if isinstance(spec, list | tuple):
            return {str(x) for x in spec}
        path = Path(str(spec)).expanduser()
        if not path.is_file():
            raise UsageError(f"task {self.name}: subset_ids file {path} does not exist")
        text = path.read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = [line.strip() for line in text.splitlines() if line.strip()]
        if not isinstance(data, list):
            raise UsageError(
                f"task {self.name}: subset_ids file {path} must hold a JSON list or one id per line"
            )
        return {str(x) for x in data}

    def samples(self) -> list[Sample]:
        """One sample per image row (optionally restricted to ``subset_ids``), in dataset order."""
        subset = self._subset_ids()
        subset_column = str(self.config.get("subset_column") or self.id_column)
        names = [self.id_column, self.answer_column, subset_column]
        if self.domain_column:
            names.append(self.domain_column)
        cols = self._columns(list(dict.fromkeys(names)))
        out = []
        for i, raw_id in enumerate(cols[self.id_column]):
            sid = str(raw_id) if raw_id is not None else f"row-{i}"
            if subset is not None and str(cols[subset_column][i]) not in subset:
                continue
            meta: dict[str, Any] = {}
            if self.domain_column and cols[self.domain_column][i] is not None:
                meta["domain"] = str(cols[self.domain_column][i])
            target = cols[self.answer_column][i] if self.has_targets else None
            out.append(Sample(id=sid, index=i, target=target, metadata=meta))
        return out

    # ----------------------------------------------------------------- requests
    def prompt_template(self) -> str:
        """A preset name from ``prompts`` or a literal prompt (any text with a space)."""
        choice = str(self.config.get("prompt", "qwen_vl"))
        presets = self.config.get("prompts") or {}
        if choice in presets:
            return str(presets[choice])
        if " " in choice.strip() or "{" in choice:
            return choice
        raise UsageError(
            f"task {self.name}: unknown prompt preset {choice!r}; available: {', '.join(presets) or 'none'} "
            "(or pass a literal prompt)"
        )

    def generation(self) -> GenerationParams:
        """The prompt preset's generation settings (``generation_presets``), then ``generation``
        overrides on top (Qwen-VL: 8-30 new tokens; lmms-eval: up to 64)."""
        choice = str(self.config.get("prompt", ""))
        gen = dict((self.config.get("generation_presets") or {}).get(choice) or {})
        gen.update(self.config.get("generation") or {})
        if "stop" in gen:
            gen["stop"] = tuple(gen["stop"] or ())
        return GenerationParams(**gen)

    def _image_value(self, row: dict[str, Any]) -> Any:
        value = row.get(self.image_column)
        if value is not None or not self.image_root:
            return value
        filename = row.get(self.filename_column)
        if not isinstance(filename, str) or not filename:
            raise InputError(f"no image column and no '{self.filename_column}' to find the image file")
        folder = row.get(self.filepath_column)
        path = Path(self.image_root).expanduser() / (folder if isinstance(folder, str) else "") / filename
        if not path.is_file():
            raise InputError(f"image file {path} does not exist (task.image_root={self.image_root})")
        return str(path)

    def build_request(self, sample: Sample) -> Request:
        """The image and the caption prompt (no per-sample fields)."""
        if self.has_targets:
            refs = as_str_list(sample.target)
            if not refs or not any(r.strip() for r in refs):
                raise InputError(f"no reference captions in '{self.answer_column}'")
        image = load_image(self._image_value(self.row(sample)))
        prompt = self.prompt_template()
        return Request(
            sample.id, (user_message(ImagePart(image), prompt),), self.generation(), task=self.name
        )

    # ----------------------------------------------------------------- scoring
    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Nothing per sample: every caption metric is corpus-level (see :meth:`aggregate`)."""
        if not as_str_list(sample.target):
            raise ValueError(f"no reference captions in '{self.answer_column}'")
        return {}

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Generic aggregation, then one pycocoevalcap evaluation of all scored records: the corpus
        metrics, the SPICE note, per-image CIDEr on each record and the domain breakdown."""
        result = super().aggregate(records)  # corpus metrics (and CIDEr, not yet per image) are None here
        if not self.has_targets:
            return result
        result.metrics = {k: None for k in CAPTION_METRICS}
        scored = [r for r in records if r.error is None]
        if not scored:
            result.notes["caption_metrics"] = "no scored samples: every sample had an error"
            return result
        predictions = {r.id: r.prediction or "" for r in scored}
        references = {r.id: as_str_list(r.target) for r in scored}
        evaluation = evaluate_captions(predictions, references)
        result.metrics = {k: evaluation.scores.get(k) for k in CAPTION_METRICS}
        result.notes.update(evaluation.notes)
        domains: dict[str, list[float]] = defaultdict(list)
        for r in scored:
            cider = evaluation.per_image[r.id]["cider"]
            r.scores["cider"] = cider
            if "domain" in r.metadata:
                domains[str(r.metadata["domain"])].append(cider)
        if domains:
            result.breakdowns["domain"] = {
                d: {"cider": math.fsum(v) / len(v), "n": len(v)} for d, v in sorted(domains.items())
            }
        return result

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """COCO-style results JSON ``[{"image_id": <int>, "caption": <str>}, ...]`` for splits
        without references (the id's last number, e.g. ``000000179765.jpg`` -> 179765)."""
        entries = []
        for r in records:
            numbers = re.findall(r"\d+", r.id)
            image_id: Any = int(numbers[-1]) if numbers else r.id
            entries.append({"image_id": image_id, "caption": r.prediction if r.error is None else ""})
        return write_submission_json(entries, path)

    def protocol(self) -> dict[str, Any]:
        """Adds the metric definition and the columns used to the recorded protocol."""
        out = super().protocol()
        out["metric"] = (
            "pycocoevalcap: PTB tokenizer once over predictions and references, BLEU-1..4 (closest ref "
            "length), METEOR, ROUGE-L, CIDEr (pycocoevalcap Cider = CIDEr-D, IDF from the evaluated "
            "references), corpus-level over scored samples; SPICE only with Stanford CoreNLP installed"
        )
        out["columns"] = {
            "id": self.id_column,
            "references": self.answer_column,
            "image": self.image_column if not self.image_root else f"{self.image_root}/<filepath>/<filename>",
            "domain": self.domain_column,
        }
        if self.config.get("subset_ids"):
            out["subset"] = {
                "ids": str(self.config["subset_ids"]),
                "column": str(self.config.get("subset_column") or self.id_column),
            }
        return out
