"""The staff web UI (``intake serve``); see :func:`intake.web.app.create_app`."""
