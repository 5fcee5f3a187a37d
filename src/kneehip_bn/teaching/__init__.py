"""Teaching tools: why the model believes what it does, what-if, what to ask next, conflict,
how fragile a conclusion is, and the pictures.

Every number comes from the compiled engine (:func:`~kneehip_bn.inference.cache.get_engine`):
a whole family of related queries (the evidence with each finding left out, every joint state
of the origins, simulated cases) goes through one batched ``Engine.batch`` call.

- :mod:`~kneehip_bn.teaching.explain`: :func:`~kneehip_bn.teaching.explain.explain`, how much
  each finding moved each origin (weight of evidence, in the context of the other findings),
  the causal path that carries it, and a plain-language summary.
- :mod:`~kneehip_bn.teaching.what_if`: several scenarios side by side (findings added or
  removed, context changed, interventions ``do``, edited priors).
- :mod:`~kneehip_bn.teaching.next_test`: which unobserved finding or test is expected to tell
  the most about the origins (mutual information, in bits), with costs.
- :mod:`~kneehip_bn.teaching.conflict`: Jensen's conflict measure, flagging atypical or
  contradictory cases.
- :mod:`~kneehip_bn.teaching.robustness`: one-way parameter sensitivity and credible
  intervals of the posteriors.
- :mod:`~kneehip_bn.teaching.plots`: the layered network and the bar charts (matplotlib).
- :mod:`~kneehip_bn.teaching.common`: the helpers these share (and the causal tools and the
  classroom server use).

The public functions are in the package's front door (``kneehip_bn.explain`` and so on).
"""
