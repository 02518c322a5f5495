"""``python -m mnistctl``: the CLI, as torchrun and ``train --nproc`` start each worker."""

import sys

try:
    from mnistctl.cli import main
except KeyboardInterrupt:  # Ctrl-C while a worker is still starting: as an interrupted command, without a traceback
    print("interrupted", file=sys.stderr)
    sys.exit(130)

main()
