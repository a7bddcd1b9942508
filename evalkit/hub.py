"""Fast, clear failure when the Hugging Face Hub cannot be reached.

Without network, ``transformers``/``datasets`` retry every hub call with growing waits (minutes,
and a screen of warnings) before failing with a message that does not say what to do. evalkit
therefore probes the hub *once per process* with a short timeout (one HTTP ``HEAD`` of the
endpoint, through the proxies of the environment) before the first hub load:

* reachable → nothing changes;
* not reachable → this process switches the hub libraries to offline mode (as ``HF_HUB_OFFLINE=1``
  would), so what is in the local cache loads at once, and a model or dataset that is not there
  fails with one line: it is not in the local cache, how to download it, or which key takes a
  local folder instead.

``HF_HUB_OFFLINE=1`` (or ``HF_DATASETS_OFFLINE=1`` for datasets, ``TRANSFORMERS_OFFLINE=1``) skips
the probe and uses the cache only. ``HF_ENDPOINT`` selects the hub (a mirror); the probe waits at
most ``EVALKIT_HUB_PROBE_TIMEOUT_S`` seconds (default 3).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import urllib.error
import urllib.request

log = logging.getLogger("evalkit")

_TRUE = {"1", "true", "yes", "on"}
DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_PROBE_TIMEOUT_S = 3.0


def hub_endpoint() -> str:
    """The hub URL in use (``HF_ENDPOINT``, else huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_setting(kind: str = "model") -> str | None:
    """The environment variable that puts ``kind`` (``model`` or ``dataset``) loads offline, as
    ``NAME=value``, or None."""
    names = (
        ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"]
        if kind == "model"
        else ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"]
    )
    for name in names:
        value = os.environ.get(name, "")
        if value.strip().lower() in _TRUE:
            return f"{name}={value}"
    return None


@functools.cache
def hub_reachable(endpoint: str, timeout_s: float) -> bool:
    """One ``HEAD`` request to ``endpoint`` (any HTTP answer, even an error status, means the hub is
    there); False on a connection error or timeout. Cached: the probe runs once per process."""
    request = urllib.request.Request(endpoint, method="HEAD", headers={"User-Agent": "evalkit-hub-probe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):  # noqa: S310 - http(s) endpoint
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def probe_timeout_s() -> float:
    """``EVALKIT_HUB_PROBE_TIMEOUT_S`` (default 3 s)."""
    try:
        return float(os.environ.get("EVALKIT_HUB_PROBE_TIMEOUT_S") or DEFAULT_PROBE_TIMEOUT_S)
    except ValueError:
        return DEFAULT_PROBE_TIMEOUT_S


def go_offline() -> None:
    """Put ``huggingface_hub``, ``transformers`` and ``datasets`` of this process (and of the
    processes it starts) in offline mode: cache only, no network retries."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - a dependency of transformers and datasets
        pass
    ds_config = sys.modules.get("datasets.config")
    if ds_config is not None:
        ds_config.HF_HUB_OFFLINE = True
        ds_config.HF_DATASETS_OFFLINE = True


def hub_unavailable(kind: str = "model") -> str | None:
    """Why hub downloads cannot happen now (an offline variable, or the failed probe), or None
    when the hub is reachable. When the probe fails, switches this process to offline mode."""
    setting = offline_setting(kind)
    if setting is not None:
        # the hub libraries read the variable once, when first imported: one set after that (by a
        # program embedding evalkit) would leave them retrying the network for tens of seconds
        if setting.startswith("HF_HUB_OFFLINE="):
            go_offline()
        elif setting.startswith("HF_DATASETS_OFFLINE=") and (ds_config := sys.modules.get("datasets.config")):
            ds_config.HF_DATASETS_OFFLINE = True
        return f"{setting} is set"
    endpoint = hub_endpoint()
    if hub_reachable(endpoint, probe_timeout_s()):
        return None
    log.warning("the hub at %s cannot be reached; using the local cache only", endpoint)
    go_offline()
    return f"the hub at {endpoint} cannot be reached"


def model_not_cached_message(repo_id: str, reason: str, revision: str | None = None) -> str:
    """One line: the model is not in the local cache, how to download it, or pass a folder."""
    rev = f" --revision {revision}" if revision else ""
    return (
        f"model {repo_id} is not in the local cache and {reason}: download it where the hub is "
        f"reachable (hf download {repo_id}{rev}, then copy the cache folder {_hub_cache()}), or "
        f"pass model.pretrained=<local folder>"
    )


def dataset_not_cached_message(repo_id: str, reason: str) -> str:
    """One line: the dataset is not in the local cache, how to download it, or pass a folder."""
    return (
        f"dataset {repo_id} is not in the local cache and {reason}: download it where the hub is "
        f"reachable (hf download {repo_id} --repo-type dataset --local-dir <folder>), then pass "
        f"task.dataset.path=<folder>"
    )


def _hub_cache() -> str:
    try:
        import huggingface_hub.constants as hub_constants

        return str(hub_constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover
        return "~/.cache/huggingface/hub"
