# passenger_wsgi.py: what Passenger (and shared hosts built on it, such as cPanel's "Setup Python
# App") loads from the application's folder. The service is the wheel installed in the virtualenv
# that PassengerPython names; this file only hands Passenger its WSGI application.
from wsgi import application  # noqa: F401
