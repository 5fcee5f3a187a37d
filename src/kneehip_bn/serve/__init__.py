"""The classroom web page and its JSON API: ``kneehip serve``.

A Starlette application (served by uvicorn) that students open in a browser: a case builder
grouped as a clinician examines, ranked diagnoses with prior and posterior bars, region
probabilities, the red-flag warning, the network picture with posteriors, "why and what
next", what-if (interventions, "if this finding were absent", a slider for any number of
the model) and a teaching mode with a case library. Behind it a JSON API mirroring the
CLI's ``--json`` (``/api/diagnose``, ``/api/query``, ``/api/explain``, ``/api/next-test``,
``/api/what-if``, ``/api/conflict``), documented at ``/openapi.json`` and ``/docs``.

Teaching and research model, NOT a medical device. Needs the ``serve`` extra
(``pip install "kneehip_bn[serve]"``: starlette and uvicorn).

Examples
--------
>>> from kneehip_bn.serve import create_app
>>> app = create_app("knee_hip_basic")
>>> app.state.spec.name
'knee_hip_basic'
"""

from __future__ import annotations

from kneehip_bn.serve.app import MAX_BODY_BYTES, create_app

__all__ = ["MAX_BODY_BYTES", "create_app"]
