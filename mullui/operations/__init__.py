"""Agent operations: one agent's lifecycle (``lifecycle.py``) behind one interface for
where it runs (``location.py``: ``local.py`` on this machine, ``mullui.remote.dispatch``
on a host), the names it gets (``names.py``), its files (``records.py``), when a
queued one may start (``admission.py``) and local agents checked against tmux
(``reconcile.py``)."""
