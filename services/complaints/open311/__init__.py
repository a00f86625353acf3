"""The Open311 GeoReport v2 façade of the complaints service (HTTPS, beside its gRPC server).

``api`` is the Starlette application (HTTP in and out, GeoReport's error
format), ``handlers`` the use cases on the complaints database, ``documents``
the JSON and XML renderings the spec lays out, ``keys`` the platforms' API
keys, ``server`` the uvicorn server the complaints process runs.
"""
