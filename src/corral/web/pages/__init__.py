"""The web UI's pages and the htmx endpoints behind them (``/ui/…``), one module per area.

Pages render on the server and call the same services as the API; every state-changing
request needs the session's CSRF token (see ``corral.web.page_auth``).
"""
