"""In-repo runs: the plugin is registered through the pytest11 entry point of the
installed package (`pip install -e .`); nothing else is needed here."""
