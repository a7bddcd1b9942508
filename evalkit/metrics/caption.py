"""COCO-style caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE) via pycocoevalcap.

What :func:`evaluate_captions` does, per evaluation:

1. checks that ``java`` is on ``PATH`` (the PTB tokenizer, METEOR and SPICE are Java programs) and
   raises :class:`~evalkit.errors.MissingDependencyError` otherwise;
2. PTB-tokenises predictions and references **once**, in a single Java call (pycocoevalcap's
   ``stanford-corenlp-3.4.1.jar`` with its flags ``-preserveLines -lowerCase``, then its
   punctuation-token filter) - lmms-eval re-tokenises everything for each of its seven metrics;
3. runs pycocoevalcap's own scorers on the tokenised text: ``Bleu(4)`` (``closest`` reference
   length), ``Meteor()``, ``Rouge()``, ``Cider()`` (IDF from the references of the evaluated
   images, corpus score = mean of the per-image scores) and, only if its Stanford CoreNLP jars are
   already installed, ``Spice()``.

METEOR's JVM takes about ten seconds (and about 1 GB) to load its paraphrase table, longer than
scoring thousands of captions, and its ``-stdio`` protocol keeps no state between evaluations. So
one JVM per process serves every evaluation (:class:`MeteorServer`): started on first use, reused
by the next evaluation (a sweep over COCO, NoCaps and Flickr30k, ``evalkit score`` over many
folders), closed after :data:`METEOR_IDLE_S` seconds unused, at exit, or at once if a call fails
(a failed call may leave unread lines in its pipe); a forked child starts its own.

SPICE: pycocoevalcap downloads Stanford CoreNLP 3.6.0 (~400 MB) the first time ``Spice()`` is
constructed.  evalkit never triggers that download: it looks for the two jars in
``pycocoevalcap/spice/lib/`` first; when they are missing ``spice`` is ``None`` and the reason is
given in the notes (:func:`caption_scores_with_notes`, :attr:`CaptionEvaluation.notes`).

Tokeniser differences from pycocoevalcap's ``PTBTokenizer`` wrapper (only where the wrapper is
wrong): characters that Java reads as line breaks (``\\r``, ``\\v``, ``\\f``, U+2028, U+2029; the
wrapper only replaces ``\\n``) are replaced by spaces - in the wrapper they split a caption over two
lines and shift every later caption onto the wrong image; the input file is written and read as
UTF-8 whatever the locale; the temporary file goes to the system temp directory instead of
site-packages; a line-count mismatch raises instead of silently misaligning.  Empty captions are
fine (they tokenise to ``""`` and score 0).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Collection, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import MissingDependencyError

__all__ = [
    "CAPTION_METRICS",
    "CaptionEvaluation",
    "evaluate_captions",
    "caption_scores",
    "caption_scores_with_notes",
    "caption_scores_per_image",
    "ptb_tokenize",
    "spice_status",
]

CAPTION_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider", "spice")
"""Keys of the corpus-level score dict, in report order."""

_CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
# Characters the Java PTB tokenizer treats as line terminators under -preserveLines.
_JAVA_LINE_BREAKS = str.maketrans({c: " " for c in "\n\r\x0b\x0c\u2028\u2029"})


@dataclass(frozen=True)
class CaptionEvaluation:
    """Everything one caption evaluation produces.

    Attributes:
        scores: corpus-level ``{metric: value}`` for :data:`CAPTION_METRICS` (``None`` = not
            computed, see ``notes``), in pycocoevalcap's scale (CIDEr is not multiplied by 100).
        per_image: ``{image id: {metric: value}}`` with pycocoevalcap's per-image scores
            (sentence-level BLEU, METEOR, ROUGE-L, CIDEr, SPICE when computed).  The mean of the
            per-image CIDEr, ROUGE-L and SPICE equals the corpus value; BLEU and METEOR are corpus
            statistics, not means.
        notes: ``{metric: one-line reason}`` for every metric that is ``None``.
    """

    scores: dict[str, float | None]
    per_image: dict[Hashable, dict[str, float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("caption metrics need pycocoevalcap (pip install pycocoevalcap)")
    return Path(next(iter(spec.submodule_search_locations)))


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise MissingDependencyError(
            "caption metrics need Java: `java` was not found on PATH (pycocoevalcap's PTB tokenizer, "
            "METEOR and SPICE are Java programs); install a Java runtime, e.g. "
            "`apt-get install default-jre-headless` or `conda install openjdk`"
        )
    return java


def spice_status() -> tuple[bool, str]:
    """Whether SPICE can run without a download, and a one-line reason when it cannot.

    Looks for pycocoevalcap's SPICE jar and the Stanford CoreNLP 3.6.0 jars it would otherwise
    download at run time; never downloads anything.
    """
    spice_dir = _package_dir() / "spice"
    missing = [
        name
        for name in ("spice-1.0.jar", *(f"lib/{jar}" for jar in _CORENLP_JARS))
        if not (spice_dir / name).is_file()
    ]
    if missing:
        return False, (
            f"SPICE skipped: Stanford CoreNLP is not installed for pycocoevalcap (missing "
            f"{', '.join(missing)} in {spice_dir}); pycocoevalcap would download it at run time, "
            f"evalkit does not - copy the jars there to enable SPICE"
        )
    return True, ""


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """PTB-tokenise captions exactly as pycocoevalcap does, in one Java call.

    Lower-cases, splits off punctuation and drops punctuation tokens (pycocoevalcap's
    ``PUNCTUATIONS`` list).  See the module docstring for the (bug-fix) differences from
    pycocoevalcap's wrapper.

    Raises:
        MissingDependencyError: no ``java`` on ``PATH``.
        RuntimeError: the tokenizer failed or returned a different number of lines.
    """
    if not texts:
        return []
    java = _require_java()
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS, STANFORD_CORENLP_3_4_1_JAR

    jar = _package_dir() / "tokenizer" / STANFORD_CORENLP_3_4_1_JAR
    lines = [text.translate(_JAVA_LINE_BREAKS) for text in texts]
    with tempfile.TemporaryDirectory(prefix="evalkit-ptb-") as tmp:
        path = os.path.join(tmp, "captions.txt")
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            handle.write("".join(line + "\n" for line in lines))
        cmd = [java, "-Dfile.encoding=UTF-8", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer"]
        cmd += ["-preserveLines", "-lowerCase", "-encoding", "UTF-8", path]
        proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"PTB tokenizer failed (exit code {proc.returncode}): {tail[0]}")
    out = proc.stdout.decode("utf-8").split("\n")
    if len(out) == len(lines) + 1 and out[-1] == "":
        out.pop()
    if len(out) != len(lines):
        raise RuntimeError(f"PTB tokenizer returned {len(out)} lines for {len(lines)} captions")
    punctuation = frozenset(PUNCTUATIONS)
    return [" ".join(w for w in line.rstrip().split(" ") if w not in punctuation) for line in out]


def _validate(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> list[Hashable]:
    if not predictions:
        raise ValueError("caption metrics: no predictions given")
    ids = list(predictions)
    if set(ids) != set(references):
        missing = [i for i in ids if i not in references][:3]
        extra = [i for i in references if i not in predictions][:3]
        raise ValueError(
            "caption metrics: predictions and references must have the same image ids "
            f"(no references for {missing}, no prediction for {extra})"
        )
    for image_id in ids:
        if not isinstance(predictions[image_id], str):
            raise TypeError(f"caption metrics: prediction for {image_id!r} is not a string")
        refs = references[image_id]
        if isinstance(refs, str) or len(refs) == 0:
            raise ValueError(f"caption metrics: image {image_id!r} needs a non-empty list of references")
        if not all(isinstance(r, str) for r in refs):
            raise TypeError(f"caption metrics: a reference for {image_id!r} is not a string")
    return ids


def evaluate_captions(
    predictions: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    *,
    metrics: Collection[str] | None = None,
) -> CaptionEvaluation:
    """Compute the caption metrics once: corpus scores, per-image scores and notes.

    Args:
        predictions: ``{image id: caption}``.
        references: ``{image id: [reference captions]}``, the same ids.
        metrics: the subset of :data:`CAPTION_METRICS` to compute (default: all); the others are
            ``None`` with a "not requested" note.  METEOR is the slow one (its JVM loads a
            paraphrase table for several seconds).

    Raises:
        MissingDependencyError: Java is not installed.
        ValueError / TypeError: mismatched ids, empty reference lists, non-string captions, an
            unknown metric name.
    """
    wanted = set(CAPTION_METRICS if metrics is None else metrics)
    unknown = wanted - set(CAPTION_METRICS)
    if unknown:
        raise ValueError(f"caption metrics: unknown metric(s) {sorted(unknown)}; known: {CAPTION_METRICS}")
    ids = _validate(predictions, references)
    _require_java()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    # Start METEOR's JVM first (unless one is running): it loads its paraphrase table while Java
    # tokenises, then scores in its own process while Python computes BLEU, ROUGE-L and CIDEr.
    if "meteor" in wanted:
        METEOR.start()
    texts = [predictions[i] for i in ids]
    counts = [len(references[i]) for i in ids]
    for image_id in ids:
        texts.extend(references[image_id])
    tokens = ptb_tokenize(texts)
    res = {image_id: [tokens[k]] for k, image_id in enumerate(ids)}
    gts = {}
    pos = len(ids)
    for image_id, count in zip(ids, counts, strict=True):
        gts[image_id] = tokens[pos : pos + count]
        pos += count

    scores: dict[str, float | None] = {}
    per_metric: dict[str, Sequence[float]] = {}
    notes: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        meteor_job = pool.submit(METEOR.compute_score, gts, res) if "meteor" in wanted else None
        if wanted & {"bleu1", "bleu2", "bleu3", "bleu4"}:
            bleu, bleu_per_image = Bleu(4).compute_score(gts, res, verbose=0)
            for n in range(4):
                if f"bleu{n + 1}" in wanted:
                    scores[f"bleu{n + 1}"] = bleu[n]
                    per_metric[f"bleu{n + 1}"] = bleu_per_image[n]
        if "rouge_l" in wanted:
            scores["rouge_l"], per_metric["rouge_l"] = Rouge().compute_score(gts, res)
        if "cider" in wanted:
            scores["cider"], per_metric["cider"] = Cider().compute_score(gts, res)
        if meteor_job is not None:
            scores["meteor"], per_metric["meteor"] = meteor_job.result()
    if "spice" in wanted:
        available, reason = spice_status()
        if not available:
            notes["spice"] = reason
        else:
            try:
                from pycocoevalcap.spice.spice import Spice

                scores["spice"], spice_items = Spice().compute_score(gts, res)
                per_metric["spice"] = [item["All"]["f"] for item in spice_items]
            except Exception as err:  # SPICE is optional: report, do not crash the evaluation
                notes["spice"] = f"SPICE failed: {type(err).__name__}: {err}".splitlines()[0]

    for metric in CAPTION_METRICS:
        if metric not in wanted:
            notes[metric] = f"{metric} not requested"
    final = {m: (None if scores.get(m) is None else float(scores[m])) for m in CAPTION_METRICS}
    per_image = {
        image_id: {metric: float(values[k]) for metric, values in per_metric.items()}
        for k, image_id in enumerate(ids)
    }
    return CaptionEvaluation(scores=final, per_image=per_image, notes=notes)


METEOR_IDLE_S = 300.0
"""Seconds an unused METEOR JVM is kept for the next evaluation of this process."""


class MeteorServer:
    """One pycocoevalcap ``Meteor`` JVM for the process, shared by successive evaluations.

    :meth:`compute_score` is ``Meteor.compute_score`` (same input, same output); calls are
    serialised. The JVM is started by :meth:`start` or the first call, replaced if it has exited,
    closed on any failed call, after ``idle_s`` seconds unused, by :meth:`close` and at exit. A
    child made by ``fork`` never uses (or stops) its parent's JVM: it starts its own.
    """

    def __init__(self, idle_s: float = METEOR_IDLE_S) -> None:
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._scorer: object | None = None
        self._timer: threading.Timer | None = None
        self.starts = 0  # JVMs started by this process (for tests and diagnostics)

    def start(self) -> None:
        """Start the JVM now unless one is running (it loads while the caller does other work)."""
        with self._lock:
            self._running()
            self._arm_idle_close()

    def compute_score(
        self, gts: Mapping[Hashable, list[str]], res: Mapping[Hashable, list[str]]
    ) -> tuple[float, list[float]]:
        """METEOR of tokenised ``res`` against ``gts``: (corpus score, per-image scores)."""
        with self._lock:
            scorer = self._running()
            try:
                score, per_image = scorer.compute_score(gts, res)  # type: ignore[attr-defined]
            except BaseException:
                self._close_locked()
                raise
            self._arm_idle_close()
            return score, per_image

    def close(self) -> None:
        """Stop the JVM (if any) now."""
        with self._lock:
            self._close_locked()

    # ---------------------------------------------------------------- internals (lock held)
    def _running(self) -> object:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        proc = getattr(self._scorer, "meteor_p", None)
        if self._scorer is not None and (proc is None or proc.poll() is not None):
            self._close_locked()  # it died (killed, out of memory): start a fresh one
        if self._scorer is None:
            self._scorer = _new_meteor()
            self.starts += 1
        return self._scorer

    def _arm_idle_close(self) -> None:
        timer = threading.Timer(self.idle_s, self._close_if_idle)
        timer.daemon = True
        self._timer = timer
        timer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._timer is threading.current_thread():
                self._timer = None
                self._close_locked()

    def _close_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        scorer, self._scorer = self._scorer, None
        if scorer is not None:
            _close_meteor(scorer)

    def _forget_after_fork(self) -> None:
        # the inherited JVM is the parent's: drop it without a signal (its wrapper has no __del__)
        self._lock = threading.Lock()
        self._scorer = None
        self._timer = None


def _new_meteor() -> object:
    """pycocoevalcap's ``Meteor``, less its ``__del__`` (which kills the JVM whenever the wrapper
    is collected, also in a forked child): :class:`MeteorServer` stops it explicitly."""
    from pycocoevalcap.meteor.meteor import Meteor

    class _OwnedMeteor(Meteor):
        def __del__(self) -> None:
            pass

    return _OwnedMeteor()


def _close_meteor(scorer: object) -> None:
    """Stop METEOR's JVM now instead of whenever the scorer is garbage-collected (also one that
    has died: closing its pipe then flushes into nothing, which is not an error here)."""
    proc = getattr(scorer, "meteor_p", None)
    if proc is None:
        return
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    proc.kill()
    proc.wait()


METEOR = MeteorServer()
"""The process's METEOR JVM, used by :func:`evaluate_captions`."""
atexit.register(METEOR.close)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=METEOR._forget_after_fork)


def caption_scores(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[str, float | None]:
    """Corpus-level ``bleu1..bleu4, meteor, rouge_l, cider, spice`` (``spice`` is ``None`` unless
    Stanford CoreNLP is installed for pycocoevalcap; see :func:`caption_scores_with_notes`)."""
    return evaluate_captions(predictions, references).scores


def caption_scores_with_notes(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> tuple[dict[str, float | None], dict[str, str]]:
    """:func:`caption_scores` plus ``{metric: one-line reason}`` for each metric that is ``None``."""
    evaluation = evaluate_captions(predictions, references)
    return evaluation.scores, evaluation.notes


def caption_scores_per_image(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[Hashable, dict[str, float]]:
    """Per-image scores ``{image id: {"cider": ..., "rouge_l": ..., "meteor": ..., "bleu1": ...}}``.

    The mean of the per-image ``cider`` equals the corpus CIDEr of :func:`caption_scores`.  Call
    :func:`evaluate_captions` instead to get corpus and per-image scores from one evaluation.
    """
    return evaluate_captions(predictions, references).per_image
