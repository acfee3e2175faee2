"""Import PyPOTS once, without the ASCII-art banner it prints on first import.

PyPOTS reads the stream's encoding to choose the banner, so the stand-in
stdout needs one; it also imports ``tqdm.auto``, which warns once in a
notebook without ipywidgets (and then prints plain text): that one warning is
silenced. Import this module before anything from ``pypots``.

``PYPOTS_LOG`` names PyPOTS's logger (a line per epoch, a warning when no
saving path is given): silence it in a block with
``tsgen.runtime.quiet(loggers=[PYPOTS_LOG])``.
"""

import contextlib
import io

from .runtime import quiet

with (
    contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")),
    quiet(warnings_=[(Warning, "IProgress not found")]),
):
    import pypots  # noqa: F401

PYPOTS_LOG = "PyPOTS running log"
