"""The ``generate``, ``evaluate`` and ``export`` commands (``dexter-brain <command>``; ``pipelines/`` runs the
same ``main`` as ``python -m pipelines.<script>``). ``build``, ``train``, ``chat`` and ``learn`` live in
``dexter_brain.cli``."""
