"""Textual apps: the watch dashboard (app.py, dashboard.py, widgets.py, charts.py, layers.py, state.py) behind
``mnistctl watch`` and ``train --tui``, and the drawing pad (draw.py, canvas.py, pixels.py, reader.py, readout.py)
behind ``mnistctl draw``."""
