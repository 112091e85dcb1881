"""HTTP conventions the API (``api/``) and the web pages (``web/``) both speak.

It sits below both so that imports run one way: ``api/app.py`` assembles the app and mounts
``web/``; ``web/`` never imports ``api/``, and nothing here imports either
(``tests/unit/test_layering.py`` keeps it so).
"""
