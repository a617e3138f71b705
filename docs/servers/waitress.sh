#!/bin/sh
# Waitress: pure Python, for hosts without a compiler. One process with threads, mounted under
# /conduit (the prefix reaches the app as SCRIPT_NAME). Run from the virtualenv the wheel is in.
# tests/integration/test_wsgi_servers.py runs this very file; docs/deploy.md quotes it.
exec waitress-serve --listen="${CONDUIT_BIND:-127.0.0.1:8000}" --threads=4 --url-prefix=/conduit \
    wsgi:application
