"""One module per page of the console; each has ``add_routes(app)`` and thin handlers that ask
ivr.web.data and render a template."""
