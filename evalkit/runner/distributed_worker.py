"""One rank spawned by the local launcher of :mod:`evalkit.runner.distributed`.

Not meant to be run by hand: the launcher sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``, the rank's devices and ``EVALKIT_DIST_CONFIG`` (the resolved run
config as JSON), then runs ``python -m evalkit.runner.distributed_worker``. This entry point hands
the pipeline's stages (:data:`evalkit.pipeline.STAGES`) to the rank.
"""

from __future__ import annotations

import sys

from evalkit.pipeline import STAGES
from evalkit.runner.distributed import worker_main

if __name__ == "__main__":
    sys.exit(worker_main(STAGES))
