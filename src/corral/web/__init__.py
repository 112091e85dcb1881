"""The web UI: server-rendered pages, the API explorer and the front-end files they use.

``api/app.py`` mounts it into the same app; it never imports ``api/`` (what both need is in
``http/``).

Front-end packages come from npm (``package.json``/``package-lock.json``, installed by the
set-up with ``npm ci``) and are served from ``node_modules`` as they are: no bundler, no CDN.
"""
