"""Discovery of tasks and models, and instantiation of task plugins.

Discovery is light: it reads the YAML files of ``configs/task`` and ``configs/model`` and the
metadata of the ``evalkit.tasks`` entry-point group, importing no plugin and no heavy library.

A task config names its plugin class with ``plugin: "module:Class"`` (built-in plugins live in the
top-level ``tasks/`` folder, installed as ``evalkit.plugins``). Third-party packages register tasks
through the entry-point group ``evalkit.tasks``::

    [project.entry-points."evalkit.tasks"]
    my_task = "my_package.tasks:MyTask"

where ``MyTask.default_config`` is a dict with the same keys as a task YAML file.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from evalkit.errors import UsageError
from evalkit.tasks.base import Task

ENTRY_POINT_GROUP = "evalkit.tasks"


def config_dir() -> Path:
    """The folder holding evalkit's Hydra config groups (shipped inside the package)."""
    import evalkit.configs

    return Path(evalkit.configs.__file__).parent


@dataclass(frozen=True)
class Entry:
    """One task or model available to ``evalkit run``."""

    name: str
    description: str
    source: str
    area: str = ""


def _read_yaml_header(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


#: the areas of the Qwen2-VL report (plus Qwen-VL's grounding, captioning and chat), in listing order
AREAS: dict[str, str] = {
    "college": "college-level problems",
    "math": "mathematical reasoning",
    "documents": "documents, OCR and multilingual text",
    "general_vqa": "general visual question answering",
    "video": "video understanding",
    "agent": "visual agents (GUI grounding and operation)",
    "grounding": "referring-expression grounding",
    "captioning": "zero-shot captioning",
    "chat": "open-ended chat (LLM judge)",
}


def _area(group: str, data: dict[str, Any], depth: int = 0) -> str:
    """A config's ``area``, else the area of the config its ``defaults`` list extends."""
    if data.get("area") or depth > 3:
        return str(data.get("area") or "")
    for d in data.get("defaults") or []:
        if isinstance(d, str) and d != "_self_":
            base = config_dir() / group / f"{d}.yaml"
            if base.exists():
                return _area(group, _read_yaml_header(base), depth + 1)
    return ""


def _group_entries(group: str) -> list[Entry]:
    out = []
    for path in sorted((config_dir() / group).glob("*.yaml")):
        data = _read_yaml_header(path)
        desc = str(data.get("description") or "").strip().splitlines()
        area = _area(group, data) if group == "task" else ""
        out.append(Entry(path.stem, desc[0] if desc else "", f"configs/{group}/{path.name}", area))
    return out


def task_entry_points() -> dict[str, str]:
    """Third-party tasks: name -> "module:Class" (not imported)."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_tasks() -> list[Entry]:
    """All tasks: built-in configs, then entry-point tasks not shadowed by a config."""
    entries = _group_entries("task")
    known = {e.name for e in entries}
    for name, target in sorted(task_entry_points().items()):
        if name not in known:
            entries.append(Entry(name, f"(plugin {target})", "entry point"))
    return entries


def list_models() -> list[Entry]:
    """All model presets of ``configs/model``."""
    return _group_entries("model")


def import_object(target: str) -> Any:
    """Import ``"package.module:Attribute"``."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UsageError(f"plugin target {target!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import task plugin module {module_name!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"task plugin module {module_name!r} has no attribute {attr!r}") from None


def entry_point_config(name: str) -> dict[str, Any] | None:
    """The default config of an entry-point task (imports its class), or None if not registered."""
    target = task_entry_points().get(name)
    if target is None:
        return None
    cls = import_object(target)
    config = dict(getattr(cls, "default_config", {}) or {})
    config.setdefault("name", name)
    config.setdefault("plugin", target)
    return config


def build_task(config: Mapping[str, Any]) -> Task:
    """Instantiate the task plugin named by ``config["plugin"]`` (or by its entry point)."""
    target = config.get("plugin") or task_entry_points().get(str(config.get("name")))
    if not target:
        raise UsageError(f"task config {config.get('name')!r} has no 'plugin: module:Class' key")
    cls = import_object(str(target))
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UsageError(f"task plugin {target} is not a subclass of evalkit.tasks.base.Task")
    return cls(config)
