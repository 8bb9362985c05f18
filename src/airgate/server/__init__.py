"""airgate over HTTP: the JSON API under ``/api/v1`` and the web Action Center.

``app.create_app`` builds a FastAPI application over one store and one policy set;
every endpoint calls the same library functions as the CLI (same roles, same
separation of duties, same errors), acting as the actor of the request's token
(``auth.py``). A background thread does the time-driven work (``background.py``).
Importing this package loads nothing heavy; ``app`` loads FastAPI (``airgate[server]``).

May use: runtime, checks, engine, evidence, policy and the shared leaves, FastAPI,
Starlette, Jinja2 and prometheus-client. Never click, never the CLI.
"""
