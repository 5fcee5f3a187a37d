"""The model layer: the model file, its validation and edits, its tables, its pgmpy network.

One module per job: :mod:`~kneehip_bn.model.spec` (the dataclasses and the format's
vocabulary), :mod:`~kneehip_bn.model.yamlio` (read and write the YAML file),
:mod:`~kneehip_bn.model.validate`, :mod:`~kneehip_bn.model.edit`,
:mod:`~kneehip_bn.model.tables` (probability arrays), :mod:`~kneehip_bn.model.network`
(the pgmpy network), :mod:`~kneehip_bn.model.coerce` (what a user may pass as a model) and
:mod:`~kneehip_bn.model.readwrite` (exchange formats). It imports only ``errors`` and
``_util``.
"""
