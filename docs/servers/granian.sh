#!/bin/sh
# Granian in its WSGI mode: two worker processes, one blocking thread each (like gunicorn's sync
# workers). Run from the virtualenv the wheel is in.
# tests/integration/test_wsgi_servers.py runs this very file; docs/deploy.md quotes it.
bind="${CONDUIT_BIND:-127.0.0.1:8000}"
exec granian --interface wsgi --host "${bind%:*}" --port "${bind##*:}" --workers 2 --blocking-threads 1 \
    wsgi:application
