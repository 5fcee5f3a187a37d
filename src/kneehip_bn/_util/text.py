"""Words shown wherever a user looks.

>>> from kneehip_bn._util.text import DISCLAIMER
>>> "NOT a medical device" in DISCLAIMER
True
"""

__all__ = ["DISCLAIMER"]

#: printed by every command, the classroom page and the reports
DISCLAIMER = (
    "Teaching and research model, NOT a medical device: do not use it to diagnose or "
    "treat anyone. Its numbers come from published studies and expert judgement (each with "
    "its source in the model file); they describe populations, not a patient."
)
