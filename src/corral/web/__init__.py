"""Browser-facing parts served by the same app: the API explorer now, the web UI next.

Front-end packages come from npm (``package.json``/``package-lock.json``, installed by the
set-up with ``npm ci``) and are served from ``node_modules`` as they are: no bundler, no CDN.
"""
