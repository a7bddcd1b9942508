"""No network, hub id given (issue 13): one short probe, then one line saying the model/dataset is
not in the local cache, how to download it, or which key takes a local folder.

Nothing leaves the machine: the hub endpoint and every proxy point at a closed port on 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from evalkit import hub
from tests.conftest import run_cli


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_env(tmp_path: Path) -> dict[str, str]:
    dead = f"http://127.0.0.1:{closed_port()}"
    return {
        "HF_ENDPOINT": dead,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "ALL_PROXY": dead,
        "NO_PROXY": "",
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_CACHE": str(tmp_path / "hf-home" / "hub"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf-home" / "datasets"),
        "HF_HUB_OFFLINE": "",
        "HF_DATASETS_OFFLINE": "",
        "TRANSFORMERS_OFFLINE": "",
    }


def test_probe_against_closed_and_open_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802
            self.send_response(404)  # any HTTP answer means the hub is there
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert hub.hub_reachable(f"http://127.0.0.1:{httpd.server_address[1]}", 2.0) is True
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert hub.hub_reachable(f"http://127.0.0.1:{closed_port()}", 2.0) is False


def test_offline_variables_skip_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "hub_reachable", lambda *a: pytest.fail("probed although offline"))
    assert hub.hub_unavailable("model") == "HF_HUB_OFFLINE=1 is set"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub.hub_unavailable("dataset") == "HF_DATASETS_OFFLINE=1 is set"


def test_unreachable_hub_model_fails_fast_with_one_line(tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = run_cli(
        "run", "task=docvqa_mini", "model=hf", "model.pretrained=evalkit-tests/not-a-cached-model",
        "model.device=cpu", "limit=1", "runner.cache=false", "runner.progress=false",
        f"output_dir={tmp_path / 'out'}", env=offline_env(tmp_path),
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("evalkit: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    msg = errors[0]
    assert "model evalkit-tests/not-a-cached-model is not in the local cache" in msg
    assert "cannot be reached" in msg and "hf download evalkit-tests/not-a-cached-model" in msg
    assert "model.pretrained=<local folder>" in msg
    assert "Traceback" not in proc.stderr
    assert len(lines) <= 3, proc.stderr  # no screen of retry warnings
    assert elapsed < 60  # the issue: 163 s of retries before this


def test_offline_variable_model_message(tmp_path: Path) -> None:
    env = {**offline_env(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = run_cli(
        "run", "task=docvqa_mini", "model=hf", "model.pretrained=evalkit-tests/not-a-cached-model",
        "model.device=cpu", "limit=1", "runner.cache=false", "runner.progress=false",
        f"output_dir={tmp_path / 'out'}", env=env,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "is not in the local cache and HF_HUB_OFFLINE=1 is set" in proc.stderr, proc.stderr[-3000:]


def test_unreachable_hub_dataset_fails_fast_with_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "run", "task=docvqa_mini", "model=tiny", "model.backend=fake",
        "task.dataset.path=evalkit-tests/not-a-cached-dataset", "limit=1", "runner.cache=false",
        "runner.progress=false", f"output_dir={tmp_path / 'out'}", env=offline_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    msg = errors[0]
    assert "dataset evalkit-tests/not-a-cached-dataset is not in the local cache" in msg
    assert "cannot be reached" in msg and "task.dataset.path=<folder>" in msg
    assert "--repo-type dataset" in msg
    assert "Traceback" not in proc.stderr


def test_identity_works_offline_and_load_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-scoring a run needs the model's identity, never its weights: only loading fails."""
    from evalkit.errors import UsageError
    from evalkit.models.hf import HFModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = HFModel({"backend": "hf", "pretrained": "evalkit-tests/never-cached", "device": "cpu"})
    ident = m.identity()
    assert ident["weights_hash"] is None and ident["pretrained"] == "evalkit-tests/never-cached"
    with pytest.raises(UsageError, match=r"not in the local cache and HF_HUB_OFFLINE=1 is set"):
        m.load()


def test_offline_variable_set_after_import_reaches_the_hub_libraries(monkeypatch):
    """HF_HUB_OFFLINE set after datasets / huggingface_hub were imported (an embedding program, the
    test session): the libraries' import-time flags follow it, so nothing retries the network."""
    import datasets.config as ds_config
    import huggingface_hub.constants as hub_constants

    from evalkit.hub import hub_unavailable

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(ds_config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(ds_config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_unavailable("dataset") == "HF_HUB_OFFLINE=1 is set"
    assert hub_constants.HF_HUB_OFFLINE and ds_config.HF_HUB_OFFLINE and ds_config.HF_DATASETS_OFFLINE

    monkeypatch.setattr(ds_config, "HF_DATASETS_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert hub_unavailable("dataset") == "HF_DATASETS_OFFLINE=1 is set"
    assert ds_config.HF_DATASETS_OFFLINE and not hub_constants.HF_HUB_OFFLINE  # models stay online
