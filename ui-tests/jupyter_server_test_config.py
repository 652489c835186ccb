"""JupyterLab server configuration for the galata UI tests.

Never use this configuration outside the tests: galata opens the server to
any client without a token and exposes JupyterLab's JavaScript objects on
``window`` for the test driver.
"""

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # noqa: F821 (provided by the traitlets config loader)

configure_jupyter_server(c)

# Tests and CI run as root in containers.
c.ServerApp.allow_root = True

# Small, quick searches: one simulation at a time, runs under the root's .sela/runs.
c.SelaApp.default_parallel = 1
c.SelaApp.max_concurrent_runs = 2
