"""Fuzz every ``kneehip`` command with damaged and hostile inputs (issue 10).

Generates cases from a seed (each case has its own ``random.Random(f"{seed}:{index}")``, so
any case can be regenerated alone): damaged audit CSV files, damaged YAML model files and
mappings, damaged counts files (JSON and CSV), hostile option values and evidence / edit /
scenario strings. Each case is fed to ``kneehip_bn.cli.main`` in this process
(subprocess-free: fast, the engine cache is shared), except the cases that could exhaust
the machine (huge sizes, YAML alias bombs, ``/dev/zero``), which run through the real
``kneehip`` script in a subprocess with a memory cap and a timeout; a random sample of the
safe cases also runs through the real script, to check the in-process verdict.

Every file in the case's directory (inputs and a pre-existing output) is hashed before and
after. Each case is classified as

- ``answered``: exit status 0;
- ``clear error``: exit status 1 and one line ``error: ...`` (an audit report may add
  ``  also: ...`` lines, one per further problem);
- ``clear error (a list)``: exit status 1, ``error: ... has N problems:`` and one line
  ``  - at WHERE: ...`` per problem (a model file's validation: every problem at once);
- ``usage error``: exit status 2 from argparse (its usage line and one error line);
- ``unclear``: exit status 1 with no or a malformed message;
- ``traceback``: an exception escaped ``main`` (or ``Traceback`` on stderr, a signal, a
  timeout);
- ``input changed``: a file that existed before the run differs after it (counted on top
  of the verdict above);
- ``output left after error``: exit status non-zero and a new file in the case directory.

Usage::

    python benchmarks/fuzz_cli.py --seed 1 --cases 3000 --seconds 900 \\
        --output benchmarks/results/fuzz.md
    python benchmarks/fuzz_cli.py --seed 1 --case 417 --keep /tmp/case417   # one case, kept

The report lists every traceback with its case number, the command and the last line.
Bounded in count (``--cases``) and time (``--seconds``; the run stops starting new cases
after it, and each in-process case has an alarm of ``--case-seconds``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "knee_hip_basic"


# ============================================================================ fixtures
@dataclass
class Pristine:
    """Valid inputs the damage starts from (made once per run)."""

    csv: bytes
    clinic_csv: bytes
    mapping: bytes
    model_yaml: bytes
    counts_json: bytes
    counts_csv: bytes
    nodes: list[str]
    states: dict[str, list[str]]
    findings: list[str]
    origins: list[str]


def make_pristine(work: Path) -> Pristine:
    import kneehip_bn as kb
    from kneehip_bn.cli import main

    spec = kb.load_spec(MODEL)
    df = kb.simulate_audit(120, seed=7, missing=0.15, model=spec, hidden=("mechanism", "origin"),
                           diagnosis_noise=0.1)
    csv = df.to_csv(index=False).encode()
    (work / "p.csv").write_bytes(csv)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        main(["counts", str(work / "p.csv"), "--model", MODEL, "-o", str(work / "c.json")])
        main(["counts", str(work / "p.csv"), "--model", MODEL, "-o", str(work / "c.csv")])
    groups = {n: spec.nodes[n].group for n in spec.nodes}
    return Pristine(
        csv=csv,
        clinic_csv=(ROOT / "data" / "example_clinic_audit.csv").read_bytes(),
        mapping=(ROOT / "data" / "example_mapping.yaml").read_bytes(),
        model_yaml=(ROOT / "models" / f"{MODEL}.yaml").read_bytes(),
        counts_json=(work / "c.json").read_bytes(),
        counts_csv=(work / "c.csv").read_bytes(),
        nodes=list(spec.nodes),
        states={n: list(spec.nodes[n].states) for n in spec.nodes},
        findings=[n for n, g in groups.items() if g in ("finding", "test")],
        origins=[n for n, g in groups.items() if g == "origin"],
    )


# ============================================================================ damage
BYTES = [b",", b"\n", b"\r", b"\0", b'"', b" ", b"\xe9", b"\xff\xfe", b"\r\n", b"\t", b"x",
         b"'", b"#", b"\\", b"\x1b[31m", "é".encode(), b"NA"]


def damage_bytes(r: random.Random, data: bytes, *, lines_too: bool = True) -> bytes:
    """One to three random damages of a byte string."""
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        kind = r.choice(["cut", "delete", "insert", "replace", "dup_line", "drop_line", "join",
                         "swap", "empty"] if lines_too else ["cut", "delete", "insert", "replace"])
        n = len(data)
        if kind == "cut" and n:
            data = data[:r.randrange(n)]
        elif kind == "delete" and n:
            p = r.randrange(n)
            data = data[:p] + data[p + r.choice([1, 1, 2, 10]):]
        elif kind == "insert":
            p = r.randrange(n + 1)
            data = data[:p] + r.choice(BYTES) * r.choice([1, 1, 2, 50]) + data[p:]
        elif kind == "replace" and n:
            p = r.randrange(n)
            data = data[:p] + r.choice(BYTES) + data[p + 1:]
        elif kind == "empty":
            data = b"" if r.random() < 0.3 else data
        else:
            ls = data.split(b"\n")
            if len(ls) < 3:
                continue
            k = r.randrange(len(ls) - 1)
            if kind == "dup_line":
                ls.insert(k, ls[k])
            elif kind == "drop_line":
                del ls[k]
            elif kind == "join":
                ls[k:k + 2] = [ls[k] + ls[k + 1]]
            elif kind == "swap":
                j = r.randrange(len(ls))
                ls[k], ls[j] = ls[j], ls[k]
            data = b"\n".join(ls)
    return data


YAML_VALUES = ["nan", ".inf", "-.inf", "1e999", "-0.1", "1.5", "0", "''", "~", "[]", "{}",
               "'0.5'", "yes", "!!python/object/apply:os.system ['echo pwned']", "&a x",
               "*a", "9" * 5001, "0x10", "1_000", "!!binary aGVsbG8=", '"\\0"', "@", "`x`",
               "{a: 1, a: 2}", "- - - -", "\t0.3"]


def damage_yaml(r: random.Random, text: bytes) -> bytes:
    """Damage a YAML file as a careless editor would: values replaced, lines removed,
    duplicated (duplicate keys), indented wrongly, plus byte damage."""
    lines = text.split(b"\n")
    for _ in range(r.choice([1, 1, 2, 3])):
        k = r.randrange(len(lines))
        ln = lines[k]
        kind = r.choice(["value", "value", "value", "dup", "drop", "indent", "key", "bytes",
                         "comment"])
        if kind == "value" and b":" in ln:
            head = ln.split(b":", 1)[0]
            lines[k] = head + b": " + r.choice(YAML_VALUES).encode()
        elif kind == "dup":
            lines.insert(k, ln)
        elif kind == "drop":
            del lines[k]
        elif kind == "indent":
            lines[k] = (b" " * r.choice([1, 3, 8]) if r.random() < 0.7 else b"\t") + ln
        elif kind == "key" and b":" in ln:
            head, rest = ln.split(b":", 1)
            lines[k] = head[:-1] + b"x:" + rest if len(head) > 1 else ln
        elif kind == "comment":
            lines[k] = b"# " + ln
        else:
            lines[k] = damage_bytes(r, ln, lines_too=False)
    return b"\n".join(lines)


def alias_bomb(levels: int, where: str) -> bytes:
    out = ["format: kneehip-bn/1", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    prev = "a"
    for i in range(levels):
        name = f"b{i}"
        out.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
        prev = name
    out.append(f"{where}: *{prev}")
    return ("\n".join(out) + "\n").encode()


def damage_counts_json(r: random.Random, raw: bytes) -> bytes:
    d = json.loads(raw)
    for _ in range(r.choice([1, 1, 2])):
        kind = r.choice(["rows", "model", "count", "pattern", "datasets", "format", "states",
                         "columns", "drop", "bytes", "hash"])
        if kind == "rows":
            d["rows"] = r.choice(["lots", -1, 1e300, None, 10**400, 999999, [], 0.5])
        elif kind == "model":
            d["model"] = r.choice(["some_other_model", "", 5, None])
        elif kind == "count" and isinstance(d.get("counts"), list) and d["counts"]:
            d["counts"][r.randrange(len(d["counts"]))] = r.choice([1e300, -1, "x", None, 0,
                                                                    float("nan"), 1e-300, True])
        elif kind == "pattern" and isinstance(d.get("patterns"), list) and d["patterns"] and \
                isinstance(d["patterns"][0], list):
            i = r.randrange(len(d["patterns"]))
            d["patterns"][i] = r.choice([d["patterns"][i][:-1], d["patterns"][i] + ["absent"],
                                         ["x"] * len(d["patterns"][i]), None, "abc"])
        elif kind == "datasets":
            d["datasets"] = r.choice(["clinic", [], [1, 2], None, ["a"] * 3])
        elif kind == "format":
            d["format"] = r.choice(["kneehip-counts/2", None, ""])
        elif kind == "states" and isinstance(d.get("states"), dict) and d["states"]:
            c = r.choice(list(d["states"]))
            d["states"][c] = r.choice([d["states"][c][::-1], ["absent"], [], "absent"])
        elif kind == "columns" and isinstance(d.get("columns"), list):
            d["columns"] = r.choice([d["columns"][:-1], [*d["columns"], "knee_pain"], [], "x"])
        elif kind == "hash":
            d[r.choice(["checksum", "model_hash"])] = r.choice(["sha256:" + "0" * 64, "", None, 5])
        elif kind == "drop" and d:
            d.pop(r.choice(list(d)), None)
        else:
            return damage_bytes(r, raw, lines_too=False)
    return json.dumps(d, allow_nan=True).encode()


# ============================================================================ cases
@dataclass
class Case:
    index: int
    family: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    risky: bool = False  # run only through the real script, capped
    env: dict[str, str] = field(default_factory=dict)


WEIRD = ["", " ", "=", "==", "a=b=c", "knee_pain", "knee_pain=", "=present", "knee_pain=presnt",
         "knee_pian=present", "KNEE_PAIN=PRESENT", "knee_pain = present", "knee_pain=present ",
         "é=ü", "knee_pain=present\0", "x" * 5000 + "=present", "knee_pain=present,hip_pain=absent",
         "age_group=67", "age_group=-1", "age_group=1e9", "knee_pain=nan", "--", "-e",
         "knee_pain=\x1b[31mpresent", "../../etc/passwd", "age_group=60_plus", "\u202e=present"]
NUMS = ["0", "-1", "1", "2", "0.5", "-0.5", "1e309", "nan", "inf", "-inf", "", "x", "10000000000",
        "1e3", "0x10", "9" * 400, "1_0", " 3", "3 ", "+4", "0.0", "1e-320", "007"]
PLOT_EXT = ["png", "svg", "pdf", "jpg2", "", "PNG", "png/", "csv", "html", "tiff"]


def _evidence(r: random.Random, p: Pristine, n: int) -> list[str]:
    out: list[str] = []
    for _ in range(n):
        if r.random() < 0.5:
            node = r.choice(p.findings + p.nodes[:2])
            out += ["-e", f"{node}={r.choice(p.states[node])}"]
        elif r.random() < 0.3:
            node = r.choice(p.nodes)
            out += ["--do", f"{node}={r.choice(p.states[node] + ['x'])}"]
        else:
            out += ["-e", r.choice(WEIRD)]
    return out


def _sets(r: random.Random, p: Pristine) -> list[str]:
    o = r.choice(p.origins)
    f = r.choice(p.findings)
    edits = [f"{o}={r.choice(NUMS)}", f"{f}.leak={r.choice(NUMS)}",
             f"{f}.link.{o}={r.choice(NUMS)}", f"{o}[age_group=60_plus].present={r.choice(NUMS)}",
             f"{o}[age_group=60_plus,age_group=under_40].present=0.3", f"nope={r.choice(NUMS)}",
             f"{o}.present", f"{o}==0.1", f"age_group.60_plus={r.choice(NUMS)}", "", "=",
             f"{f}.link.nope=0.2", f"{o}[nope=x].present=0.2"]
    return ["--set", r.choice(edits)]


def make_case(seed: int, i: int, p: Pristine) -> Case:
    r = random.Random(f"{seed}:{i}")
    fam = r.choices(["csv", "model", "mapping", "counts", "options", "evidence"],
                    weights=[30, 16, 10, 12, 16, 16])[0]
    m = ["--model", MODEL]
    if fam == "csv":
        data = damage_bytes(r, p.csv)
        ext = r.choice(["csv"] * 8 + ["tsv", "txt", "parquet"])
        if ext == "tsv":
            data = data.replace(b",", b"\t")
        f = {f"a.{ext}": data}
        cmd = r.choices(["batch", "counts", "fit", "check", "batch_keep", "batch_pq"],
                        weights=[45, 30, 4, 4, 10, 7])[0]
        a = f"a.{ext}"
        chunks = ["--chunksize", r.choice(["7", "50", "1000000"])] if r.random() < 0.5 else []
        if cmd == "batch":
            argv = ["batch", a, *m, "-o", "post.csv", *chunks]
        elif cmd == "batch_pq":
            argv = ["batch", a, *m, "-o", "post.parquet"]
        elif cmd == "batch_keep":
            argv = ["batch", a, *m, "-o", "post.csv", "--keep", r.choice(["knee_pain", "x"])]
        elif cmd == "counts":
            argv = ["counts", a, *m, "-o", r.choice(["c.json", "c.csv", "c.parquet"])]
        elif cmd == "fit":
            argv = ["fit", a, *m, "-o", "fit.yaml", "--max-iter", "2", "--quiet"]
        else:
            argv = ["check", a, *m, "--max-given", "1"]
        return Case(i, f"csv:{cmd}", argv, f)
    if fam == "model":
        if r.random() < 0.05:
            levels = r.choice([3, 6, 9])
            where = r.choice(["name", "title", "nodes"])
            return Case(i, "model:alias_bomb", ["validate", "bomb.yaml"],
                        {"bomb.yaml": alias_bomb(levels, where)}, risky=levels > 4)
        if r.random() < 0.03:
            return Case(i, "model:dev_zero", ["diagnose", "--model", "/dev/zero"], risky=True)
        data = damage_yaml(r, p.model_yaml)
        cmd = r.choice(["validate", "diagnose", "sources", "export", "query"])
        argv = {"validate": ["validate", "m.yaml"],
                "diagnose": ["diagnose", "--model", "m.yaml", "-e", "knee_pain=present"],
                "sources": ["sources", "--model", "m.yaml"],
                "export": ["export", "--model", "m.yaml", "-o", "m.bif"],
                "query": ["query", "hip_pain", "--model", "m.yaml"]}[cmd]
        return Case(i, f"model:{cmd}", argv, {"m.yaml": data})
    if fam == "mapping":
        data = damage_yaml(r, p.mapping) if r.random() < 0.8 else damage_bytes(r, p.mapping)
        cmd = r.choice(["batch", "counts", "check"])
        out = {"batch": ["-o", "post.csv"], "counts": ["-o", "c.json"], "check": []}[cmd]
        return Case(i, f"mapping:{cmd}", [cmd, "clinic.csv", *m, "--mapping", "map.yaml", *out],
                    {"clinic.csv": p.clinic_csv, "map.yaml": data})
    if fam == "counts":
        if r.random() < 0.7:
            name, data = "c.json", damage_counts_json(r, p.counts_json)
        else:
            name, data = "c.csv", damage_bytes(r, p.counts_csv)
        if r.random() < 0.25:
            argv = ["fit", "--counts", name, *m, "-o", "fit.yaml", "--max-iter", "2", "--quiet"]
        else:
            argv = ["merge-counts", name, r.choice([name, "good.json"]), *m, "-o", "pooled.json"]
        return Case(i, f"counts:{argv[0]}", argv, {name: data, "good.json": p.counts_json})
    if fam == "options":
        num = r.choice(NUMS)
        cmd = r.choice(["simulate_n", "simulate_seed", "simulate_missing", "check_alpha",
                        "batch_chunksize", "fit_holdout", "fit_strength", "next_top",
                        "conflict_sim", "plot_ext", "exists", "validate_empty", "sources_node",
                        "fit_tol", "sensitivity", "line_bytes", "counts_min", "counts_threads",
                        "flip_threshold"])
        files = {"a.csv": p.csv}
        risky = False
        if cmd == "simulate_n":
            risky = num in ("10000000000", "9" * 400, "1e309")
            argv = ["simulate", *m, "--n", num, "--seed", "1", "-o", "s.csv"]
        elif cmd == "simulate_seed":
            argv = ["simulate", *m, "--n", "20", "--seed", num, "-o", "s.csv"]
        elif cmd == "simulate_missing":
            argv = ["simulate", *m, "--n", "20", "--missing", num, "-o", "s.csv"]
        elif cmd == "check_alpha":
            argv = ["check", "a.csv", *m, "--alpha", num, "--max-given", "1"]
        elif cmd == "batch_chunksize":
            argv = ["batch", "a.csv", *m, "--chunksize", num, "-o", "post.csv"]
        elif cmd == "fit_holdout":
            argv = ["fit", "a.csv", *m, "--holdout", num, "--max-iter", "2", "-o", "f.yaml", "--quiet"]
        elif cmd == "fit_strength":
            argv = ["fit", "a.csv", *m, "--strength", num, "--max-iter", "2", "-o", "f.yaml", "--quiet"]
        elif cmd == "fit_tol":
            argv = ["fit", "a.csv", *m, "--tol", num, "--max-iter", r.choice(["2", num]),
                    "-o", "f.yaml", "--quiet"]
            risky = True  # --max-iter from the list may be huge
        elif cmd == "next_top":
            argv = ["next-test", *m, "-e", "knee_pain=present", "--top", num]
        elif cmd == "conflict_sim":
            risky = num in ("10000000000", "9" * 400)
            argv = ["conflict", *m, "-e", "knee_pain=present", "--simulate", num, "--seed", "1"]
        elif cmd == "plot_ext":
            c = r.choice(["diagnose", "explain", "what-if", "next-test", "conflict", "sensitivity"])
            argv = [c, *m, "-e", "knee_pain=present", "--plot", f"fig.{r.choice(PLOT_EXT)}"]
            if c == "sensitivity":
                argv += ["--target", p.origins[0]]
        elif cmd == "exists":
            files["taken.csv"] = b"my notes\n"
            files["taken.png"] = b"my notes\n"
            c = r.choice(["batch", "simulate", "diagnose_plot", "counts", "export", "graph"])
            argv = {"batch": ["batch", "a.csv", *m, "-o", "taken.csv"],
                    "simulate": ["simulate", *m, "--n", "5", "-o", "taken.csv"],
                    "diagnose_plot": ["diagnose", *m, "--plot", "taken.png"],
                    "counts": ["counts", "a.csv", *m, "-o", "taken.csv"],
                    "export": ["export", *m, "-o", "taken.csv"],
                    "graph": ["graph", *m, "-o", "taken.png"]}[c]
        elif cmd == "line_bytes":
            c = r.choice(["batch", "check", "counts", "fit"])
            out = {"batch": ["-o", "post.csv"], "check": [], "counts": ["-o", "c.json"],
                   "fit": ["--max-iter", "2", "-o", "f.yaml", "--quiet"]}[c]
            argv = [c, "a.csv", *m, "--max-line-bytes", num, *out]
        elif cmd in ("counts_min", "counts_threads"):
            opt = "--min-count" if cmd == "counts_min" else "--threads"
            argv = ["counts", "a.csv", *m, opt, num, "-o", "c.json"]
        elif cmd == "flip_threshold":
            argv = ["flip", *m, "-e", "knee_pain=present", "--target", p.origins[0],
                    "--goal", "threshold", "--threshold", num]
        elif cmd == "validate_empty":
            argv = ["validate", r.choice(["", " ", ".", "nothing.yaml", "a.csv"])]
        elif cmd == "sources_node":
            argv = ["sources", *m, "--node", r.choice(["", "x", p.nodes[0], " " + p.nodes[0]])]
        else:
            argv = ["sensitivity", *m, "--target", r.choice([*p.origins, "", "knee_pain", "x"]),
                    "-e", "knee_pain=present", "--state", r.choice(["present", "x", ""])]
        return Case(i, f"options:{cmd}", argv, files, risky=risky)
    # evidence, edits, scenarios on the teaching commands
    cmd = r.choice(["diagnose", "query", "explain", "what-if", "next-test", "conflict",
                    "sensitivity", "sources"])
    argv = [cmd, *m]
    if cmd == "query":
        argv.insert(1, r.choice([*p.nodes, "", "nope"]))
    if cmd == "sensitivity":
        argv += ["--target", r.choice(p.origins)]
    argv += _evidence(r, p, r.randint(0, 4))
    if r.random() < 0.4:
        argv += _sets(r, p)
    if cmd == "what-if":
        o = r.choice(p.origins)
        f = r.choice(p.findings)
        argv += ["-s", r.choice([f"t:do={o}=absent", f"x:add={f}=present", f"y:set={o}=0.01",
                                 "bad", ":do=", f"z:nope={o}=1", f"a:do={o}=absent;b:add=",
                                 "c:context=age_group=60_plus", "", "d:set=x=2"])]
    if cmd in ("diagnose", "explain", "next-test", "conflict") and r.random() < 0.3:
        argv.append("--json")
    return Case(i, f"evidence:{cmd}", argv)


# ============================================================================ running
class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm


def _hashes(d: Path) -> dict[str, str]:
    out = {}
    for p in sorted(d.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(d))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_inprocess(case: Case, d: Path, limit: int) -> tuple[int | None, str, str | None]:
    """(exit status or None, stderr, traceback text or None), run in ``d``."""
    from kneehip_bn.cli import main

    err, out = io.StringIO(), io.StringIO()
    tb = None
    code: int | None = None
    old = os.getcwd()
    os.chdir(d)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(limit)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(case.argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except _Alarm:
        tb = f"timeout after {limit} s"
    except BaseException:
        tb = traceback.format_exc()
    finally:
        signal.alarm(0)
        os.chdir(old)
    return code, err.getvalue(), tb


def _cap(mem_bytes: int):
    def f():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    return f


def run_script(case: Case, d: Path, limit: int, mem: int) -> tuple[int | None, str, str | None]:
    exe = shutil.which("kneehip") or str(Path(sys.executable).with_name("kneehip"))
    try:
        proc = subprocess.run([exe, *case.argv], cwd=d, capture_output=True, timeout=limit,
                              preexec_fn=_cap(mem), env={**os.environ, **case.env},
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, "", f"timeout after {limit} s (real script)"
    except ValueError as exc:  # argv with a NUL byte cannot reach a real process
        return 2, f"(argv not passable to a process: {exc})", None
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode < 0:
        return None, stderr, f"killed by signal {-proc.returncode} (real script)"
    tb = stderr if "Traceback (most recent call last)" in stderr else None
    return proc.returncode, stderr, tb


def classify(code: int | None, stderr: str, tb: str | None) -> str:
    if tb is not None or "Traceback (most recent call last)" in stderr:
        return "traceback"
    if code == 0:
        return "answered"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("wrote ", "figure written"))]
    if code == 2 and lines and lines[-1].startswith("kneehip") and "error:" in lines[-1]:
        return "usage error"
    if code == 1 and lines and lines[0].startswith("error: ") and all(
            ln.startswith("  also: ") for ln in lines[1:]):
        return "clear error"
    if code == 1 and lines and lines[0].startswith("error: ") and lines[0].endswith(
            "problems:") and all(ln.startswith("  - at ") for ln in lines[1:]):
        return "clear error (a list)"
    return "unclear"


def _last_line(tb: str) -> str:
    lines = [ln for ln in tb.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else tb[:300]


def _where(tb: str) -> str:
    """The last frame of the package in a traceback (file:line function)."""
    frames = [ln.strip() for ln in tb.splitlines() if ln.strip().startswith("File ")]
    ours = [f for f in frames if "kneehip_bn" in f]
    f = (ours or frames or [""])[-1]
    return f.replace(str(ROOT) + "/", "").replace("File ", "")[:200]


def shell_argv(argv: list[str]) -> str:
    import shlex

    return "kneehip " + " ".join(shlex.quote(a) if "\0" not in a else repr(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000, help="number of cases (at most)")
    ap.add_argument("--seconds", type=float, default=900, help="stop starting cases after this")
    ap.add_argument("--case-seconds", type=int, default=60, help="alarm for one case")
    ap.add_argument("--script-sample", type=float, default=0.01,
                    help="fraction of safe cases also run through the real kneehip script")
    ap.add_argument("--memory", type=int, default=3 << 30, help="memory cap of script runs")
    ap.add_argument("--output", default=None, help="write the Markdown report here")
    ap.add_argument("--case", type=int, default=None, help="run only this case number")
    ap.add_argument("--keep", default=None, help="with --case: keep the case directory here")
    args = ap.parse_args(argv)

    os.environ.pop("KNEEHIP_DEBUG", None)
    import matplotlib

    matplotlib.use("Agg")
    work = Path(tempfile.mkdtemp(prefix="kneehip-fuzz-"))
    t0 = time.perf_counter()
    try:
        pristine = make_pristine(work)
        indices = [args.case] if args.case is not None else range(args.cases)
        verdicts: Counter[str] = Counter()
        by_family: dict[str, Counter[str]] = defaultdict(Counter)
        changed: list[tuple[int, str, list[str]]] = []
        left: list[tuple[int, str]] = []
        tracebacks: dict[tuple[str, str], list] = {}
        unclear: list[tuple[int, str, str]] = []
        mismatch: list[tuple[int, str, str, str]] = []
        via_script = 0
        tried = 0
        for i in indices:
            if args.case is None and time.perf_counter() - t0 > args.seconds:
                break
            try:
                case = make_case(args.seed, i, pristine)
            except Exception as exc:  # a bug of the generator: counted, never fatal
                verdicts["generator error"] += 1
                print(f"case {i}: generator error {exc!r}", file=sys.stderr)
                continue
            d = Path(args.keep) if args.keep else work / f"case{i}"
            d.mkdir(parents=True, exist_ok=True)
            for name, data in case.files.items():
                (d / name).write_bytes(data)
            before = _hashes(d)
            rng = random.Random(f"{args.seed}:{i}:script")
            if case.risky:
                code, err, tb = run_script(case, d, args.case_seconds, args.memory)
                via_script += 1
            else:
                code, err, tb = run_inprocess(case, d, args.case_seconds)
                if rng.random() < args.script_sample:
                    via_script += 1
                    sd = work / f"case{i}_script"
                    sd.mkdir()
                    for name, data in case.files.items():
                        (sd / name).write_bytes(data)
                    s_code, s_err, s_tb = run_script(case, sd, args.case_seconds, args.memory)
                    a, b = classify(code, err, tb), classify(s_code, s_err, s_tb)
                    if a != b:
                        mismatch.append((i, shell_argv(case.argv), a, b))
            tried += 1
            after = _hashes(d)
            verdict = classify(code, err, tb)
            verdicts[verdict] += 1
            by_family[case.family][verdict] += 1
            diff = [k for k in before if after.get(k) != before[k]]
            if diff:
                changed.append((i, shell_argv(case.argv), diff))
            if code not in (0, None) and set(after) - set(before):
                left.append((i, shell_argv(case.argv) + "  -> " + ", ".join(sorted(set(after) - set(before)))))
            if verdict == "traceback":
                text = tb or err
                key = (case.argv[0], _last_line(text))
                tracebacks.setdefault(key, [i, shell_argv(case.argv), _where(text), 0])[3] += 1
            elif verdict == "unclear":
                unclear.append((i, shell_argv(case.argv), err.strip()[:300]))
            if args.case is not None:
                print(shell_argv(case.argv))
                print(f"exit {code}; verdict {verdict}")
                print(err.strip()[:3000])
                if tb:
                    print(tb)
            elif not args.keep:
                shutil.rmtree(d, ignore_errors=True)
                shutil.rmtree(work / f"case{i}_script", ignore_errors=True)
            if tried % 250 == 0:
                print(f"{tried} cases, {time.perf_counter() - t0:.0f} s: {dict(verdicts)}",
                      file=sys.stderr)
        elapsed = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.case is not None:
        return 0
    report = _report(args, tried, elapsed, via_script, verdicts, by_family, changed, left,
                     tracebacks, unclear, mismatch)
    print(report)
    if args.output:
        Path(args.output).write_text(report, encoding="utf-8")
    return 0


def _report(args, tried, elapsed, via_script, verdicts, by_family, changed, left, tracebacks,
            unclear, mismatch) -> str:
    import platform

    import kneehip_bn

    cols = ["answered", "clear error", "clear error (a list)", "usage error", "unclear",
            "traceback"]
    out = [
        "# Fuzzing the kneehip command (benchmarks/fuzz_cli.py)",
        "",
        f"Command: `python benchmarks/fuzz_cli.py --seed {args.seed} --cases {args.cases} "
        f"--seconds {args.seconds:g}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"kneehip_bn {getattr(kneehip_bn, '__version__', '?')}, Python "
        f"{platform.python_version()}, model `{MODEL}`; a shared 2-core machine (under load).",
        "",
        f"**{tried} cases tried** in {elapsed:.0f} s ({via_script} through the real `kneehip` "
        "script in a subprocess with a 3 GB memory cap: the risky ones and a "
        f"{100 * args.script_sample:g}% sample; the rest through `kneehip_bn.cli.main` in "
        "process).",
        "",
        "| verdict | cases |",
        "|---|---|",
        *[f"| {c} | {verdicts.get(c, 0)} |" for c in cols],
        f"| **input changed** (any file that existed before, hashed before and after) | "
        f"**{len(changed)}** |",
        f"| output left after an error (a new file, exit status non-zero) | {len(left)} |",
        f"| in-process and real-script verdicts differ | {len(mismatch)} |",
        f"| generator error (a bug of the fuzzer; the case is skipped) | "
        f"{verdicts.get('generator error', 0)} |",
        "",
        "Verdicts: *answered* exit 0; *clear error* exit 1 and one line `error: ...` (plus "
        "`  also:` lines for further problems of an audit report); *clear error (a list)* "
        "exit 1, `error: ... has N problems:` and one `  - at WHERE: ...` line per problem "
        "(a model file's validation lists them all); *usage error* argparse's "
        "exit 2; *unclear* exit 1 without that form; *traceback* an exception out of `main`, "
        "`Traceback` on stderr, a signal or a timeout.",
        "",
        "## By family of input",
        "",
        "| family:command | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for fam in sorted(by_family):
        out.append(f"| {fam} | " + " | ".join(str(by_family[fam].get(c, 0)) for c in cols) + " |")
    out += ["", "## Tracebacks (distinct by command and last line)", ""]
    if not tracebacks:
        out.append("None.")
    else:
        out += ["| count | first case | command (reproducer) | where | last line |",
                "|---|---|---|---|---|"]
        for (_, last), (i, cmd, where, n) in sorted(tracebacks.items(), key=lambda kv: -kv[1][3]):
            out.append(f"| {n} | {i} | `{cmd[:200]}` | `{where}` | `{last[:200]}` |".replace("\n", " "))
        out += ["", f"Regenerate one case with its files: `python benchmarks/fuzz_cli.py --seed "
                f"{args.seed} --case N --keep /tmp/caseN` (then run the command in /tmp/caseN)."]
    out += ["", "## Inputs changed", ""]
    out += [f"- case {i}: `{cmd[:200]}` changed {', '.join(diff)}" for i, cmd, diff in changed] or ["None."]
    out += ["", "## Output left after an error", ""]
    out += [f"- case {i}: `{cmd[:250]}`" for i, cmd in left[:40]] or ["None."]
    out += ["", "## Unclear messages (first 30)", ""]
    out += [f"- case {i}: `{cmd[:150]}` -> `{msg[:200]}`".replace("\n", " ") for i, cmd, msg in unclear[:30]] or ["None."]
    if mismatch:
        out += ["", "## In-process vs real script", ""]
        out += [f"- case {i}: `{cmd[:150]}`: {a} in process, {b} as a script" for i, cmd, a, b in mismatch]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
