"""The composition root for WSGI servers: ``gunicorn wsgi:application``.

The only module that reads the environment at import.
"""

from service.app import create_app
from service.config import Settings

application = create_app(Settings.from_env())
