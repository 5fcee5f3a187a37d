"""Leaf helpers that import nothing of the package but :mod:`kneehip_bn.errors`.

:mod:`~kneehip_bn._util.files` (the one atomic writer), :mod:`~kneehip_bn._util.graph`
(graph routines without networkx), :mod:`~kneehip_bn._util.progress` (the one progress
bar), :mod:`~kneehip_bn._util.strict_yaml` (the one YAML loader),
:mod:`~kneehip_bn._util.jsonclean`, :mod:`~kneehip_bn._util.text` and
:mod:`~kneehip_bn._util.version`.
"""
