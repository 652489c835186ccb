"""The search engine: task, insights, MCTS, coder, runner, store and the search loop.

Imports neither jupyter_server nor ipywidgets; the server, magics, CLI and widgets adapt it.
"""
