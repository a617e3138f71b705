"""The composition root for WSGI servers: ``gunicorn wsgi:application``.

The only module that reads the environment at import (besides the CLI, at run time).
"""

from service.app import create_app
from service.config import Settings
from service.logs import configure_logging

settings = Settings.from_env()
configure_logging(settings)
application = create_app(settings)
