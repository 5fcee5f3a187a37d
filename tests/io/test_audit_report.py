"""The audit report (kneehip_bn.io.audit_report): its HTML form escapes what it shows."""

from __future__ import annotations

import pandas as pd

from kneehip_bn.io.audit_report import PROBLEM_COLUMNS, AuditReport, problem


def test_html_form_escapes_the_source_name_quotes_included():
    rep = AuditReport(pd.DataFrame([problem("warning", "all_blank", "x", None, None, 1, None, None,
                                            "column 'x' is blank")], columns=PROBLEM_COLUMNS),
                      pd.DataFrame(columns=["column", "role", "node", "blank", "blank_fraction"]),
                      1, source='<b>"clinic" & \'co\'</b>')
    head = rep._repr_html_().split("</pre>")[0]
    assert head == ("<pre>Audit &lt;b&gt;&quot;clinic&quot; &amp; &#x27;co&#x27;&lt;/b&gt;: 1 rows, "
                    "0 columns; 0 error(s), 1 warning(s)")
