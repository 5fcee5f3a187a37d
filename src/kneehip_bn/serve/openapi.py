"""The OpenAPI 3.1 document of the classroom API, written as data, and a plain docs page.

The document is built from :data:`kneehip_bn.serve.api.ENDPOINT_FIELDS` (the fields each
endpoint accepts) so it cannot drift from what the server checks; ``/docs`` renders it as
one HTML page without any script (no CDN, works offline).

>>> from kneehip_bn import load_spec
>>> doc = openapi_document(load_spec("knee_hip_basic"))
>>> sorted(p for p in doc["paths"] if p.startswith("/api/"))[:3]
['/api/case', '/api/cases', '/api/conflict']
"""

from __future__ import annotations

import html
import json
from typing import Any

from kneehip_bn._util.version import __version__
from kneehip_bn.serve.api import (
    ENDPOINT_FIELDS,
    MAX_EDITS,
    MAX_EVIDENCE,
    MAX_SCENARIOS,
    MAX_SIMULATE,
)

__all__ = ["docs_html", "openapi_document"]

_ASSIGN = {"type": "object", "additionalProperties": {"type": "string"},
           "maxProperties": MAX_EVIDENCE}
_FIELDS: dict[str, dict[str, Any]] = {
    "evidence": {**_ASSIGN, "description": "observed findings, tests or context {node: state} "
                                           "(the CLI's -e NODE=STATE)",
                 "example": {"knee_pain": "present"}},
    "do": {**_ASSIGN, "description": "interventions {node: state} by graph surgery (--do)"},
    "set": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_EDITS,
            "description": "edits of the model's numbers for this request (--set forms: "
                           "NODE=P, NODE.STATE=P, NODE[PARENT=STATE].STATE=P, NODE.leak=P, "
                           "NODE.link.PARENT[:STATE]=P)", "example": ["knee_pain.leak=0.1"]},
    "variable": {"type": "string", "description": "the node to query (query's NODE)"},
    "origin": {"type": "array", "items": {"type": "string"},
               "description": "explain only these origins (--origin)"},
    "scenario": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_SCENARIOS,
                 "description": "scenarios in the CLI form NAME:ACTION=ITEMS[;...] (--scenario)",
                 "example": ["treated:do=knee_pathology=absent"]},
    "scenarios": {"type": "object", "description": "scenarios as {name: {add, remove, context, "
                                                   "do, set}} (what_if's Python form)"},
    "target": {"type": "array", "items": {"type": "string"},
               "description": "rows of the what-if table, NODE or NODE=STATE (--target)"},
    "candidate": {"type": "array", "items": {"type": "string"},
                  "description": "only these candidate tests (--candidate)"},
    "cost": {"type": "array", "items": {"type": "string"},
             "description": "NODE=COST items (--cost)"},
    "top": {"type": "integer", "minimum": 1, "description": "checked as --top (the JSON list "
                                                            "is complete, as the CLI's)"},
    "simulate": {"type": "integer", "minimum": 0, "maximum": MAX_SIMULATE,
                 "description": "simulate N cases for a tail probability (--simulate)"},
    "seed": {"type": "integer", "description": "random seed of simulate (--seed)"},
}

_SUMMARY = {
    "diagnose": ("Rank the diagnoses given findings", "kneehip diagnose --json"),
    "query": ("One node's distribution under evidence and/or do()", "kneehip query NODE --json"),
    "explain": ("Why: weight of evidence of each finding, paths, summary",
                "kneehip explain --json"),
    "what-if": ("Scenarios side by side (do, add, remove, context, set)",
                "kneehip what-if --json"),
    "next-test": ("Which finding or test would tell the most (information gain)",
                  "kneehip next-test --json"),
    "conflict": ("Jensen's conflict measure of the findings", "kneehip conflict --json"),
    "case": ("Region probabilities and red-flag findings present (the page's warning)", None),
    "graph": ("The network with posteriors (show_inference) as SVG", None),
}


def _body_schema(endpoint: str) -> dict[str, Any]:
    props = {k: _FIELDS[k] for k in ENDPOINT_FIELDS[endpoint]}
    schema: dict[str, Any] = {"type": "object", "properties": props,
                              "additionalProperties": False}
    if endpoint == "query":
        schema["required"] = ["variable"]
    return schema


_ERROR = {"description": "bad input: the CLI's one-line message",
          "content": {"application/json": {"schema": {
              "type": "object", "properties": {"error": {"type": "string"}},
              "required": ["error"]}}}}


def openapi_document(spec: Any) -> dict[str, Any]:
    """The OpenAPI 3.1 document for a server of this model."""
    paths: dict[str, Any] = {}
    for name in ENDPOINT_FIELDS:
        summary, cli = _SUMMARY[name]
        path = "/api/graph.svg" if name == "graph" else f"/api/{name}"
        ok_content = ({"image/svg+xml": {"schema": {"type": "string"}}} if name == "graph"
                      else {"application/json": {"schema": {}}})
        op = {
            "summary": summary,
            "description": (f"Returns the same JSON, with the same numbers, as `{cli}`."
                            if cli else summary),
            "requestBody": {"required": False, "content": {
                "application/json": {"schema": _body_schema(name)}}},
            "responses": {"200": {"description": "the answer", "content": ok_content},
                          "400": _ERROR, "413": _ERROR,
                          "422": {**_ERROR, "description": "impossible evidence"}},
        }
        paths[path] = {"post": op}
        if name == "graph":
            paths[path]["get"] = {"summary": "The network with prior probabilities (no body)",
                                  "responses": {"200": {"description": "SVG",
                                                        "content": ok_content}}}
    for path, summary in (("/api/model", "The model: name, version, nodes, sections, numbers"),
                          ("/api/cases", "The teaching case library for this model")):
        paths[path] = {"get": {"summary": summary, "responses": {"200": {
            "description": "JSON", "content": {"application/json": {"schema": {}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"kneehip_bn classroom API ({spec.name})",
            "version": __version__,
            "description": ("JSON API behind `kneehip serve`, mirroring the CLI's --json. "
                            "Teaching and research model, NOT a medical device. Stateless; "
                            "the model is fixed when the server starts."),
        },
        "paths": dict(sorted(paths.items())),
    }


def docs_html(doc: dict[str, Any]) -> str:
    """A readable HTML page of the OpenAPI document (no script)."""
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
             f"{html.escape(doc['info']['title'])}</title>"
             "<link rel='stylesheet' href='/static/style.css'></head><body class='docs'>",
             f"<h1>{html.escape(doc['info']['title'])}</h1>",
             f"<p>{html.escape(doc['info']['description'])}</p>",
             "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
             "Back to <a href='/'>the classroom page</a>.</p>"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>")
            parts.append(f"<p>{html.escape(op.get('description', op['summary']))}</p>")
            schema = op.get("requestBody", {}).get("content", {}).get(
                "application/json", {}).get("schema")
            if schema:
                parts.append("<table><tr><th>field</th><th>type</th><th>meaning</th></tr>")
                for k, v in schema["properties"].items():
                    parts.append(f"<tr><td><code>{k}</code></td><td>{v['type']}</td><td>"
                                 f"{html.escape(v.get('description', ''))}</td></tr>")
                parts.append("</table>")
    parts.append("<h2>Example</h2><pre>" + html.escape(
        "curl -s -X POST http://127.0.0.1:8000/api/diagnose -H 'content-type: application/json' "
        "-d " + json.dumps(json.dumps({"evidence": {"knee_pain": "present"}}))) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
