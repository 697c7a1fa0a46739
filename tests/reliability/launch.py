"""``python -m tests.reliability.launch DATA_DIR ARGS...``: the ``striate`` command line on fake data.

The process is the real command line (``striate.cli.main``, as ``python -m striate``);
the only difference is that the Fashion-MNIST registry entry is pointed at the
small fake IDX files in ``DATA_DIR/fashion-mnist`` (their checksums instead of the
published ones), so tests can train, kill and resume real processes in seconds.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    from striate.data import registry
    from tests.data.helpers import idx_spec

    folder = Path(sys.argv[1]) / "fashion-mnist"
    spec = registry.DATASETS["fashion-mnist"]
    registry.DATASETS["fashion-mnist"] = idx_spec(spec, folder, mirrors=(), system_dirs=())
    from striate.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
