"""The ``mnistctl`` console script and ``python -m mnistctl`` (as torchrun and ``train --nproc`` start each worker)."""

import sys


def run() -> None:
    try:
        from mnistctl.cli import main
    except KeyboardInterrupt:  # Ctrl-C before the CLI has its own handler in place: as an interrupted command, without a traceback
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
