"""WSGI middleware: small classes stacked by ``service.app.create_app``, each unaware of what it wraps."""
