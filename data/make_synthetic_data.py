"""Regenerate the SYNTHETIC example data in this folder (see README.md, the data card).

Run from the repository root:  python data/make_synthetic_data.py [--overwrite]
"""

import sys
from pathlib import Path

import numpy as np

from kneehip_bn import load_spec
from kneehip_bn.io.mapping import recode_to_audit
from kneehip_bn.io.writers import write_table
from kneehip_bn.learning.simulate import simulate_audit

HERE = Path(__file__).resolve().parent
overwrite = "--overwrite" in sys.argv
spec = load_spec("knee_hip_basic")  # synthetic_audit.csv and the clinic example use the basic edition

# 1. the model-format audit: node names as columns, state labels as values
audit = simulate_audit(2000, seed=20261126, missing=0.15, mechanism="mar", diagnosis_noise=0.15,
                       model=spec, hidden=("mechanism", "origin"))
write_table(audit, str(HERE / "synthetic_audit.csv"), overwrite=overwrite)

# 2. the same kind of data in a clinic's own columns and codes (translated by example_mapping.yaml)
clinic = simulate_audit(500, seed=7, missing=0.10, mechanism="mcar", diagnosis_noise=0.2,
                        model=spec, hidden=("mechanism", "origin"))
coded = recode_to_audit(clinic, HERE / "example_mapping.yaml")
rng = np.random.default_rng(7)
for test in ("SLR", "FNST", "FADIR", "TRENDELENBURG"):  # tests not done are coded "NOT DONE"
    coded[test] = coded[test].where(coded[test].notna(), "NOT DONE")
coded.insert(0, "PATIENT_ID", [f"P{i:05d}" for i in range(1, len(coded) + 1)])
days = rng.integers(0, 365, len(coded))
coded["VISIT_DATE"] = (np.datetime64("2025-01-01") + days.astype("timedelta64[D]")).astype(str)
write_table(coded, str(HERE / "example_clinic_audit.csv"), overwrite=overwrite)
# 3. the second edition (the default model, 70 nodes): an audit in its vocabulary
spec2 = load_spec("knee_hip")
audit2 = simulate_audit(2000, seed=20261202, missing=0.15, mechanism="mar", diagnosis_noise=0.15,
                        model=spec2, hidden=("mechanism", "origin"))
write_table(audit2, str(HERE / "synthetic_audit_knee_hip.csv"), overwrite=overwrite)
print("wrote synthetic_audit.csv, example_clinic_audit.csv and synthetic_audit_knee_hip.csv")
