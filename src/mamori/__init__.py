"""Mamori (守り): an open-source Security Operations Center in one ``pip install``.

The public API is deliberately small; everything else lives in private modules.
"""

from mamori.errors import MamoriError

__version__ = "0.1.0"

__all__ = ["MamoriError", "__version__"]
