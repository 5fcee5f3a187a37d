"""Plain JSON values from results: NaN/inf become ``null``, numpy scalars Python numbers.

>>> import numpy as np
>>> from kneehip_bn._util.jsonclean import json_clean
>>> json_clean({"p": np.float64(0.5), "n": np.int64(3), "bad": float("nan"), "xs": (1, np.bool_(True))})
{'p': 0.5, 'n': 3, 'bad': None, 'xs': [1, True]}
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["json_clean"]


def json_clean(o: Any) -> Any:
    """``o`` with every non-finite float replaced by ``None``, numpy scalars by Python
    scalars, tuples by lists and keys by strings (what :func:`json.dumps` accepts as
    strict JSON)."""
    if hasattr(o, "item") and callable(o.item) and not isinstance(o, (dict, list, tuple)):
        o = o.item()
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {str(k): json_clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [json_clean(v) for v in o]
    return o
