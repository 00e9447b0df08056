"""The owner app's files (docs/owner-app.md), served as they are by ``gateway.api.owner_app``.

No framework and no build step: semantic HTML, one small stylesheet, ES modules, a web
manifest and a service worker that keeps the shell for offline start.
"""
