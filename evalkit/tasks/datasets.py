"""Dataset loading for tasks: hub ids and local copies, with the resolved revision recorded.

``task.dataset.path`` may be
* a hub id (``lmms-lab/DocVQA``) with ``name`` (config) and ``split``;
* a local ``save_to_disk`` folder (a Dataset or a DatasetDict);
* a local folder of parquet files laid out like the hub repo (``<config>/<split>-*.parquet`` or
  ``data/<split>-*.parquet`` or ``<split>-*.parquet``);
* a single ``.parquet`` / ``.jsonl`` / ``.json`` / ``.csv`` / ``.tsv`` file;
* ``pkg://evalkit/data/...``: data shipped inside the evalkit package (the mini benchmarks).

Dataset identity (recorded in ``info["check"]``, which goes to ``results.json`` provenance as
``dataset_check``):

* ``fallback_path``: tried when ``path`` cannot be loaded (not in the local cache / hub, missing
  folder) — e.g. the old ``lmms-lab/X`` id of a dataset that moved to ``lmms-lab-encoder/X``.
  ``check.fallback_used`` says which one was loaded.  A missing *local* ``path`` falls back only to
  another local path, never to a hub id;
* ``revision``: the pinned hub commit (loaded with it); a resolved revision that differs is reported
  (``check.revision_changed``);
* ``fingerprint``: the pinned datasets fingerprint of the loaded split; a different fingerprint is
  reported (``check.fingerprint_changed``) with a warning — the data changed under the same id.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import UsageError
from evalkit.hub import dataset_not_cached_message, hub_unavailable

log = logging.getLogger(__name__)

_FILE_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}


def resolve_data_path(path: str) -> str:
    """Expand ``~`` and ``pkg://evalkit/...`` (files shipped in the package)."""
    if path.startswith("pkg://"):
        from importlib.resources import files

        package, _, rel = path[len("pkg://") :].partition("/")
        return str(files(package).joinpath(rel))
    return os.path.expanduser(path)


def _looks_local(path: str) -> bool:
    return (
        path.startswith(("/", "./", "../", "~"))
        or os.path.exists(path)
        or Path(path).suffix in _FILE_BUILDERS
    )


def _missing_path_message(raw_path: str) -> str:
    return (
        f"dataset path {raw_path} does not exist; pass task.dataset.path=<hub id, a local "
        "save_to_disk folder, a folder of parquet files or a parquet/jsonl file>"
    )


def check_local_dataset_path(cfg: Mapping[str, Any]) -> None:
    """Raise at once, before any library is imported, the error :func:`load_dataset_from_config`
    would raise for a local ``path`` that does not exist and has no usable fallback.

    Raises:
        UsageError: the local dataset path (and its local fallback, if any) does not exist.
    """
    raw = cfg.get("path")
    if not raw or not isinstance(raw, str):
        return
    path = resolve_data_path(raw)
    if not _looks_local(path) or os.path.exists(path):
        return  # a hub id, or a path that exists: the loader judges it
    fallback = str(cfg.get("fallback_path") or "")
    fallback_path = resolve_data_path(fallback) if fallback else ""
    if not fallback or fallback == raw or not _looks_local(fallback_path):
        # no fallback, or a hub one: a missing local copy is never replaced by a download
        raise UsageError(_missing_path_message(raw))
    if not os.path.exists(fallback_path):
        raise UsageError(
            f"{_missing_path_message(raw)}; fallback_path {fallback} failed too: {_missing_path_message(fallback)}"
        )


def _parquet_files(folder: Path, name: str | None, split: str) -> list[str]:
    candidates = []
    bases = [folder / name] if name and (folder / name).is_dir() else []
    bases += [folder / "data", folder]
    for base in bases:
        for pattern in (f"{split}-*.parquet", f"{split}.parquet", f"{split}/*.parquet"):
            candidates = sorted(str(p) for p in base.glob(pattern))
            if candidates:
                return candidates
    return candidates


def _pick_split(ds: Any, split: str, where: str) -> Any:
    from datasets import DatasetDict

    if isinstance(ds, DatasetDict):
        if split not in ds:
            raise UsageError(f"split {split!r} not found in {where}; available splits: {', '.join(ds)}")
        return ds[split]
    return ds


def load_dataset_from_config(cfg: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Load the dataset described by a task's ``dataset`` config (``path``, else ``fallback_path``).

    Returns ``(dataset, info)`` where ``info`` records the resolved path, config, split, revision,
    the datasets fingerprint and ``check`` (fallback used, pinned revision/fingerprint vs the loaded
    one; see the module docstring), all written to results provenance.
    """
    raw_path = cfg.get("path")
    if not raw_path:
        raise UsageError("task.dataset.path is not set; pass task.dataset.path=<hub id or local path>")
    fallback = cfg.get("fallback_path")
    try:
        ds, info = _load_path(cfg, str(raw_path))
        used_fallback = False
    except UsageError as first:
        # a user's local copy that is missing is reported as is, not replaced by a hub download
        local_primary = _looks_local(resolve_data_path(str(raw_path)))
        if (
            not fallback
            or str(fallback) == str(raw_path)
            or (local_primary and not _looks_local(str(fallback)))
        ):
            raise
        log.warning("dataset %s could not be loaded (%s); trying fallback_path %s", raw_path, first, fallback)
        try:
            ds, info = _load_path(cfg, str(fallback))
        except UsageError as second:
            raise UsageError(f"{first}; fallback_path {fallback} failed too: {second}") from second
        used_fallback = True
    info["check"] = identity_check(cfg, info, str(raw_path), used_fallback)
    return ds, info


def identity_check(
    cfg: Mapping[str, Any], info: Mapping[str, Any], requested: str, used_fallback: bool
) -> dict[str, Any] | None:
    """The dataset-identity report of one load: which path was used and whether the pinned
    ``revision`` / ``fingerprint`` match what was loaded (None when nothing is pinned or redirected)."""
    check: dict[str, Any] = {}
    if used_fallback:
        check.update(requested_path=requested, fallback_used=True, loaded_path=info.get("path"))
    pinned_fp = cfg.get("fingerprint")
    if pinned_fp:
        changed = str(pinned_fp) != str(info.get("fingerprint"))
        check.update(pinned_fingerprint=str(pinned_fp), fingerprint_changed=changed)
        if changed:
            log.warning(
                "dataset %s: fingerprint %s differs from the pinned %s (the data changed)",
                info.get("path"),
                info.get("fingerprint"),
                pinned_fp,
            )
    pinned_rev, resolved = cfg.get("revision"), info.get("resolved_revision")
    if pinned_rev and resolved and len(str(pinned_rev)) == 40:
        check.update(pinned_revision=str(pinned_rev), revision_changed=str(resolved) != str(pinned_rev))
    return check or None


def _load_path(cfg: Mapping[str, Any], raw_path: str) -> tuple[Any, dict[str, Any]]:
    """Load one candidate path of a ``dataset`` config (see :func:`load_dataset_from_config`)."""
    path = resolve_data_path(str(raw_path))
    name = cfg.get("name")
    split = str(cfg.get("split") or "test")
    revision = cfg.get("revision")
    info: dict[str, Any] = {"path": str(raw_path), "name": name, "split": split, "revision": revision}

    import datasets

    datasets.utils.logging.disable_progress_bar()
    unavailable: str | None = None
    try:
        if _looks_local(path):
            p = Path(path)
            if not p.exists():
                raise UsageError(_missing_path_message(str(raw_path)))
            if p.is_file():
                builder = _FILE_BUILDERS.get(p.suffix)
                if builder is None:
                    raise UsageError(
                        f"unsupported dataset file type {p.suffix!r} ({raw_path}); use parquet, jsonl, json or csv"
                    )
                kwargs = {"delimiter": "\t"} if p.suffix == ".tsv" else {}
                ds = datasets.load_dataset(builder, data_files=str(p), split="train", **kwargs)
            elif (
                (p / "dataset_info.json").exists()
                or (p / "dataset_dict.json").exists()
                or (p / "state.json").exists()
            ):
                ds = _pick_split(datasets.load_from_disk(str(p)), split, str(raw_path))
            else:
                files = _parquet_files(p, name, split)
                if not files:
                    raise UsageError(
                        f"no parquet files for config {name!r} split {split!r} under {raw_path} "
                        f"(looked for {name or '.'}/{split}-*.parquet and data/{split}-*.parquet)"
                    )
                ds = datasets.load_dataset("parquet", data_files=files, split="train")
            info["resolved_path"] = str(p.resolve())
        else:
            unavailable = hub_unavailable("dataset")  # one short probe: offline fails in seconds
            ds = datasets.load_dataset(path, name, split=split, revision=revision)
            info["resolved_revision"] = _hub_revision(ds) or revision
    except UsageError:
        raise
    except Exception as exc:  # offline hub, unknown config, corrupt files...
        if unavailable is not None:
            raise UsageError(dataset_not_cached_message(str(raw_path), unavailable)) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"could not load dataset {raw_path} (config={name}, split={split}): {first}. "
            "Check task.dataset.path/name/split, or point task.dataset.path at a local copy"
        ) from exc
    info["fingerprint"] = getattr(ds, "_fingerprint", None)
    info["num_rows"] = len(ds)
    return ds, info


def _hub_revision(ds: Any) -> str | None:
    """Best-effort commit sha of a hub dataset, read from its cache files' paths."""
    for f in getattr(ds, "cache_files", []) or []:
        parts = Path(f.get("filename", "")).parts
        for part in parts:
            if len(part) == 40 and all(c in "0123456789abcdef" for c in part):
                return part
    return None
