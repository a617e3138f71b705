"""Conduit: the RealWorld blogging API as a plain WSGI service.

This module deliberately imports nothing: ``schemas`` imports ``service.models``,
and an import here of ``service.app`` would close an import cycle.
"""

__version__ = "0.1.0"
