"""The Textual dashboard behind ``mnistctl watch`` and ``mnistctl train --tui``."""
