"""HTTP adapters: one function per RealWorld operationId, a few lines each.

A view takes the validated ``body``/``query``, calls one op and returns the
object for the route's reply schema. Views import ops, web and errors only.
"""
