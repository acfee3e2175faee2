"""Import PyPOTS once, without the ASCII-art banner it prints on first import.

PyPOTS reads the stream's encoding to choose the banner, so the stand-in
stdout needs one. Import this module before anything from ``pypots``.
"""

import contextlib
import io

with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO(), encoding="utf-8")):
    import pypots  # noqa: F401
