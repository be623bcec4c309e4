"""One router module per resource; :func:`videojobs_gateway.app.create_app` assembles them."""
