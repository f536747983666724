"""Runs in the background: the SQLite run store, the recorder of engine events, the worker and its jobs API,
and time estimates."""
