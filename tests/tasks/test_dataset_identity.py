"""Dataset identity: ``fallback_path`` (moved hub ids), pinned fingerprints/revisions, and the
default ids of the task configs (issue 14, point 9). Offline: local folders stand in for hub ids."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from evalkit.errors import UsageError
from evalkit.runner.results import provenance
from evalkit.tasks.datasets import load_dataset_from_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "task"


def test_fallback_path_is_used_when_the_path_cannot_be_loaded(tmp_path, docvqa_dir):
    cfg = {"path": str(tmp_path / "moved"), "fallback_path": str(docvqa_dir), "name": "DocVQA"}
    ds, info = load_dataset_from_config({**cfg, "split": "validation"})
    assert len(ds) == 30
    assert info["path"] == str(docvqa_dir)
    assert info["check"] == {
        "requested_path": str(tmp_path / "moved"),
        "fallback_used": True,
        "loaded_path": str(docvqa_dir),
    }
    prov = provenance({}, info, 0, "t0", "t1")
    assert prov["dataset_path"] == str(docvqa_dir) and prov["dataset_check"]["fallback_used"] is True


def test_primary_path_wins_when_it_loads(docvqa_dir, tmp_path):
    cfg = {
        "path": str(docvqa_dir),
        "fallback_path": str(tmp_path / "old"),
        "name": "DocVQA",
        "split": "validation",
    }
    _, info = load_dataset_from_config(cfg)
    assert info["path"] == str(docvqa_dir) and info["check"] is None


def test_hub_id_falls_back_to_a_local_copy(docvqa_dir):
    # offline (tests set HF_HUB_OFFLINE): the new hub id is not in the cache -> the fallback
    cfg = {"path": "lmms-lab-encoder/not-cached", "fallback_path": str(docvqa_dir), "name": "DocVQA"}
    _, info = load_dataset_from_config({**cfg, "split": "validation"})
    assert (
        info["check"]["fallback_used"] is True
        and info["check"]["requested_path"] == "lmms-lab-encoder/not-cached"
    )


def test_both_failing_names_both(tmp_path):
    with pytest.raises(
        UsageError, match=r"moved does not exist.*fallback_path .*old failed too.*old does not exist"
    ):
        load_dataset_from_config({"path": str(tmp_path / "moved"), "fallback_path": str(tmp_path / "old")})


def test_missing_local_copy_never_falls_back_to_a_hub_id(tmp_path):
    with pytest.raises(UsageError) as exc:
        load_dataset_from_config({"path": str(tmp_path / "mine"), "fallback_path": "lmms-lab/DocVQA"})
    assert "mine does not exist" in str(exc.value) and "fallback" not in str(exc.value)


def test_pinned_fingerprint_mismatch_is_reported(docvqa_dir, caplog):
    base = {"path": str(docvqa_dir), "name": "DocVQA", "split": "validation"}
    _, info = load_dataset_from_config(base)
    real = info["fingerprint"]
    _, same = load_dataset_from_config({**base, "fingerprint": real})
    assert same["check"] == {"pinned_fingerprint": real, "fingerprint_changed": False}
    with caplog.at_level(logging.WARNING, logger="evalkit.tasks.datasets"):
        _, other = load_dataset_from_config({**base, "fingerprint": "0123abcd"})
    assert other["check"] == {"pinned_fingerprint": "0123abcd", "fingerprint_changed": True}
    assert "differs from the pinned 0123abcd" in caplog.text
    assert provenance({}, other, 0, "t0", "t1")["dataset_check"]["fingerprint_changed"] is True


def _task_configs() -> dict[str, dict]:
    out = {}
    for f in sorted(CONFIGS.glob("*.yaml")):
        cfg = yaml.safe_load(f.read_text()) or {}
        if isinstance(cfg.get("dataset"), dict) and cfg["dataset"].get("path"):
            out[f.stem] = cfg
    return out


#: configs of this checkout that read lmms-lab data (point 9): new id -> the old one as fallback
MOVED = {
    "docvqa": ("lmms-lab-encoder/DocVQA", "lmms-lab/DocVQA"),
    "infovqa": ("lmms-lab-encoder/DocVQA", "lmms-lab/DocVQA"),
    "textvqa": ("lmms-lab-encoder/textvqa", "lmms-lab/textvqa"),
    "vqav2": ("lmms-lab-encoder/VQAv2", "lmms-lab/VQAv2"),
    "okvqa": ("lmms-lab-encoder/OK-VQA", "lmms-lab/OK-VQA"),
    "vizwiz_vqa": ("lmms-lab-encoder/VizWiz-VQA", "lmms-lab/VizWiz-VQA"),
    "gqa": ("lmms-lab-encoder/GQA", "lmms-lab/GQA"),
    "chartqa": ("lmms-lab-encoder/ChartQA", "lmms-lab/ChartQA"),
    "ai2d": ("lmms-lab-encoder/ai2d", "lmms-lab/ai2d"),
    "realworldqa": ("lmms-lab-encoder/RealWorldQA", "lmms-lab/RealWorldQA"),
    "coco_cap": ("lmms-lab-encoder/COCO-Caption2017", "lmms-lab/COCO-Caption2017"),
    "nocaps": ("lmms-lab-encoder/NoCaps", "lmms-lab/NoCaps"),
    "flickr30k": ("lmms-lab-encoder/flickr30k", "lmms-lab/flickr30k"),
    "refcoco": ("lmms-lab-encoder/RefCOCO", "lmms-lab/RefCOCO"),
    "refcoco+": ("lmms-lab-encoder/RefCOCOplus", "lmms-lab/RefCOCOplus"),
    "refcocog": ("lmms-lab-encoder/RefCOCOg", "lmms-lab/RefCOCOg"),
    "videomme": ("lmms-eval/Video-MME", "lmms-lab/Video-MME"),
}


@pytest.mark.parametrize("task", sorted(MOVED))
def test_moved_datasets_default_to_the_new_id_with_the_old_as_fallback(task):
    ds = _task_configs()[task]["dataset"]
    assert (ds["path"], ds.get("fallback_path")) == MOVED[task]
    assert "revision" in ds  # pinned, or null where no commit is known


def test_revision_pins_are_commit_hashes_or_null():
    for name, cfg in _task_configs().items():
        rev = cfg["dataset"].get("revision")
        assert rev is None or (len(str(rev)) == 40 and all(c in "0123456789abcdef" for c in str(rev))), name
