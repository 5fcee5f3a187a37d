"""SQL sources, read-only by construction.

An audit held in a database is read through an SQLAlchemy URL (``sqlite:///audit.db``,
``postgresql://user@host/db``) or a DuckDB database file (``duckdb:///audit.duckdb``) and
either a table name (``--table``) or one query (``--sql``). Three layers keep the database
unchanged whatever the user types:

1. **The query is parsed before anything is sent.** ``--sql`` must be exactly one
   ``SELECT`` statement (``WITH … SELECT`` and ``UNION``/``INTERSECT``/``EXCEPT`` of
   selects included), checked by a real SQL parser (sqlglot, in the database's dialect):
   DDL and DML (``DROP``, ``CREATE``, ``INSERT``, ``UPDATE``, ``DELETE``, ``MERGE``),
   ``SELECT … INTO``, data-modifying ``WITH`` clauses, ``ATTACH``/``DETACH``, ``PRAGMA``,
   ``VACUUM [INTO]``, ``COPY``, ``SET``, transactions, anything the parser cannot read and
   several statements (including a second statement after a comment) are refused with one
   line, and nothing reaches the database. What runs is the statement as the parser
   regenerated it, so the text checked is the text executed.
2. **``--table`` is an identifier, not text.** It must name an existing table (did-you-mean
   otherwise) and is quoted by the database dialect's own identifier quoting.
3. **The connection is read-only where the driver allows it**: SQLite opens the file with
   ``mode=ro`` (a missing file is never created) and an authorizer that denies every action
   but reading; DuckDB files open with ``read_only=True`` and external access (files,
   extensions) disabled; PostgreSQL transactions start with ``SET TRANSACTION READ ONLY``
   and MySQL/MariaDB with ``START TRANSACTION READ ONLY``. Every transaction is rolled back,
   never committed.

SQLite and DuckDB database files are tested (the database file is byte-identical after
every hostile query); the PostgreSQL and MySQL statements are written from their manuals
and not tested here (no server in CI).

For counting, the ``GROUP BY`` runs inside the database (:func:`grouped_rows`): only the
distinct patterns and their counts leave it, never the rows.

Examples
--------
>>> check_select("SELECT * FROM audit WHERE age_group = '60_plus'", "sqlite")
"SELECT * FROM audit WHERE age_group = '60_plus'"
>>> check_select("DROP TABLE audit", "sqlite")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kneehip_bn.errors.DataError: --sql: expected exactly one SELECT ...found a DROP statement; nothing was run
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kneehip_bn.errors import DataError, UnknownNameError

__all__ = ["COUNT_ALIAS", "ReadOnlyDatabase", "check_select", "grouped_rows", "iter_rows",
           "mask_url", "one_line", "open_readonly"]

#: name of the count column in grouped queries (chosen not to collide with audit columns)
COUNT_ALIAS = "kneehip_pattern_rows__"

# SQLAlchemy backend name -> sqlglot dialect
_DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql",
             "mariadb": "mysql", "mssql": "tsql", "oracle": "oracle", "duckdb": "duckdb",
             "snowflake": "snowflake", "bigquery": "bigquery", "redshift": "redshift",
             "trino": "trino", "databricks": "databricks", "clickhouse": "clickhouse"}


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none)."""
    s = str(exc).strip().splitlines()
    return s[0] if s else type(exc).__name__


def mask_url(url: str) -> str:
    """A database URL with its password masked (as given when SQLAlchemy cannot parse it)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


# ============================================================================ the parser check
def _refused_nodes() -> tuple[type, ...]:
    from sqlglot import exp

    names = ("Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command",
             "Pragma", "Attach", "Detach", "Copy", "Into", "Set", "Transaction", "Commit",
             "Rollback", "Use", "Lock", "LoadData", "Cache", "Uncache", "Refresh", "Analyze",
             "TruncateTable", "Grant", "Revoke", "Comment", "Install", "Kill", "Export",
             "Declare", "Execute")
    return tuple(getattr(exp, n) for n in names if hasattr(exp, n))


def _kind(node: Any) -> str:
    """A statement's kind for messages: 'a DROP statement', 'SELECT … INTO'."""
    from sqlglot import exp

    if isinstance(node, exp.Into):
        return "SELECT … INTO (which creates a table)"
    if isinstance(node, exp.Command):
        word = str(node.this or "").split()[:1]
        return f"a {word[0].upper() if word else 'command'} statement"
    name = type(node).__name__
    name = {"TruncateTable": "TRUNCATE", "LoadData": "LOAD DATA"}.get(name, name.upper())
    return f"a {name} statement"


def check_select(sql: str, dialect: str | None = None) -> str:
    """Check that ``sql`` is exactly one read-only SELECT; return it as the parser wrote it.

    Parameters
    ----------
    sql : str
        The user's query.
    dialect : str, optional
        sqlglot dialect (``sqlite``, ``duckdb``, ``postgres``, ...); ``None``: generic SQL.

    Returns
    -------
    str
        The statement regenerated by sqlglot in ``dialect`` (comments kept as ``/* */``, no
        trailing semicolon): what will be sent to the database.

    Raises
    ------
    DataError
        One line naming what was found (a DROP, several statements, unparseable text ...);
        nothing has been sent to any database.

    Examples
    --------
    >>> check_select("WITH a AS (SELECT * FROM audit) SELECT * FROM a;", "duckdb")
    'WITH a AS (SELECT * FROM audit) SELECT * FROM a'
    >>> check_select("SELECT 1; DROP TABLE audit")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kneehip_bn.errors.DataError: --sql: expected exactly one SELECT ...found 2 statements...
    """
    import logging  # stdlib, off the import path (as sqlite3): every start imports this module

    import sqlglot
    from sqlglot import exp

    head = ("--sql: expected exactly one SELECT (or WITH … SELECT) statement, read-only")
    if not isinstance(sql, str) or not sql.strip():
        raise DataError(f"{head}; found an empty query; nothing was run")
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.CRITICAL)  # sqlglot warns about 'Command' fallbacks; we refuse those
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect)
                      if s is not None and type(s).__name__ != "Semicolon"]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise DataError(f"{head}; found text the SQL parser cannot read ({one_line(exc)[:160]}); "
                        "nothing was run") from None
    except Exception as exc:  # sqlglot raises plain ValueError on some unknown dialect input
        raise DataError(f"{head}; found text the SQL parser cannot read ({one_line(exc)[:160]}); "
                        "nothing was run") from None
    finally:
        log.setLevel(level)
    if not statements:
        raise DataError(f"{head}; found no statement (only comments or semicolons); nothing was run")
    if len(statements) > 1:
        kinds = ", ".join(_kind(s) if not isinstance(s, (exp.Select, exp.SetOperation))
                          else "a SELECT" for s in statements[:4])
        raise DataError(f"{head}; found {len(statements)} statements ({kinds}); give one query; "
                        "nothing was run")
    stmt = statements[0]
    if not isinstance(stmt, (exp.Select, exp.SetOperation)):
        raise DataError(f"{head}; found {_kind(stmt)}; nothing was run")
    refused = _refused_nodes()
    for node in stmt.walk():
        if isinstance(node, refused):
            raise DataError(f"{head}; found {_kind(node)} inside the query; nothing was run")
    if stmt.args.get("locks"):
        raise DataError(f"{head}; found a locking read (FOR UPDATE/SHARE); nothing was run")
    return stmt.sql(dialect=dialect)


# ============================================================================ connections
def _sqlite_authorizer(action: int, arg1: Any, arg2: Any, dbname: Any, source: Any) -> int:
    """Deny everything but reading (second layer behind mode=ro and the parser check)."""
    import sqlite3

    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                  getattr(sqlite3, "SQLITE_RECURSIVE", 33)):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and arg2 is None and str(arg1).lower() in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK  # SQLAlchemy's inspector reads the schema this way
    return sqlite3.SQLITE_DENY


_READ_PRAGMAS = {"read_uncommitted", "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo",
                 "foreign_key_list", "database_list", "table_list", "collation_list"}


class ReadOnlyDatabase:
    """An open, read-only database: table names, identifier quoting, queries.

    Use through :func:`open_readonly` (a context manager that always rolls back and
    closes).
    """

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        self.label = mask_url(url)
        try:
            u = sa.engine.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise DataError(f"database URL {url!r}: {one_line(exc)}; expected e.g. "
                            "sqlite:///audit.db, duckdb:///audit.duckdb or "
                            "postgresql://user@host/dbname") from None
        self.backend = u.get_backend_name()
        self.dialect = _DIALECTS.get(self.backend)
        self._duck = None
        self._con = None
        self._engine = None
        if self.backend == "duckdb":
            self._open_duckdb(u.database)
        else:
            self._open_sqlalchemy(u)

    # ------------------------------------------------------------------ opening
    def _open_duckdb(self, path: str | None) -> None:
        import duckdb

        if path in (None, "", ":memory:"):
            raise DataError(f"database {self.label}: expected a DuckDB database file "
                            "(duckdb:///path/audit.duckdb), found an in-memory database")
        if not Path(path).is_file():  # duckdb would create an empty database
            raise DataError(f"database {self.label}: no such DuckDB file '{path}'")
        try:
            self._duck = duckdb.connect(path, read_only=True,
                                        config={"enable_external_access": False})
        except duckdb.Error as exc:
            raise DataError(f"database {self.label}: cannot open it read-only: "
                            f"{one_line(exc)}") from None

    def _open_sqlalchemy(self, u: Any) -> None:
        import sqlite3

        import sqlalchemy as sa

        kw: dict[str, Any] = {}
        if self.backend == "sqlite":
            db = u.database
            if db in (None, "", ":memory:"):
                raise DataError(f"database {self.label}: expected an SQLite database file "
                                "(sqlite:///path/audit.db), found an in-memory database")
            path = Path(db)
            if not path.is_file():  # sqlite would silently create an empty database
                raise DataError(f"database {self.label}: no such SQLite file '{db}'")
            uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"

            def creator() -> sqlite3.Connection:
                con = sqlite3.connect(uri, uri=True)
                con.set_authorizer(_sqlite_authorizer)
                return con

            kw["creator"] = creator
            u = sa.engine.make_url("sqlite://")
        try:
            self._engine = sa.create_engine(u, **kw)
            self._con = self._engine.connect()
            self._con.begin()
            if self.backend == "postgresql":
                self._con.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif self.backend in ("mysql", "mariadb"):
                self._con.rollback()
                self._con.exec_driver_sql("START TRANSACTION READ ONLY")
        except (sa.exc.SQLAlchemyError, ImportError, sqlite3.Error) as exc:
            self.close()
            cause = getattr(exc, "orig", None) or exc
            raise DataError(f"database {self.label}: cannot connect read-only: "
                            f"{one_line(cause)}") from None

    def close(self) -> None:
        """Roll back (never commit) and close."""
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.rollback()
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._duck is not None:
            with contextlib.suppress(Exception):
                self._duck.close()
            self._duck = None

    # ------------------------------------------------------------------ catalogue
    def table_names(self) -> list[str]:
        """Tables (and views) of the default schema."""
        if self._duck is not None:
            rows = self._duck.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() ORDER BY table_name").fetchall()
            return [r[0] for r in rows]
        import sqlalchemy as sa

        insp = sa.inspect(self._con)
        return sorted(set(insp.get_table_names()) | set(insp.get_view_names()))

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier in this database's dialect."""
        if self._duck is not None:
            return '"' + str(name).replace('"', '""') + '"'
        prep = self._engine.dialect.identifier_preparer
        return prep.quote_identifier(str(name))

    def source(self, table: str | None, sql: str | None) -> str:
        """The FROM clause for a table or a checked query (as a subquery)."""
        if (table is None) == (sql is None):
            raise DataError(f"{self.label}: expected exactly one of a table name (--table) or a "
                            f"query (--sql), found {'both' if table else 'neither'}")
        if table is not None:
            names = self.table_names()
            if table not in names:
                raise UnknownNameError.for_name("table", table, names, where=f"database {self.label}")
            return self.quote(table)
        return "(\n" + check_select(sql, self.dialect) + "\n) AS kneehip_source__"

    def _run(self, query: str) -> Any:
        if self._duck is not None:
            return self._duck.execute(query)
        import sqlalchemy as sa

        return self._con.execute(sa.text(query).execution_options(stream_results=True))

    def columns(self, src: str) -> list[str]:
        """Column names of a FROM clause (no rows fetched)."""
        res = self._run(f"SELECT * FROM {src} WHERE 1 = 0")
        if self._duck is not None:
            return [d[0] for d in res.description]
        cols = list(res.keys())
        res.close()
        return cols

    def fetch(self, query: str, chunksize: int | None) -> Iterator[tuple[list[str], list[tuple]]]:
        """Run ``query`` (built here from checked parts) and yield (columns, rows) chunks."""
        res = self._run(query)
        if self._duck is not None:
            cols = [d[0] for d in res.description]
            while True:
                rows = res.fetchmany(chunksize or 100_000)
                if not rows:
                    return
                yield cols, rows
        cols = list(res.keys())
        try:
            while True:
                rows = res.fetchmany(chunksize or 100_000)
                if not rows:
                    return
                yield cols, [tuple(r) for r in rows]
        finally:
            res.close()

    def errors(self) -> tuple[type[BaseException], ...]:
        """Exception types a query may raise on this database."""
        import sqlite3

        import sqlalchemy as sa

        out: list[type[BaseException]] = [sa.exc.SQLAlchemyError, sqlite3.Error]
        if self._duck is not None:
            import duckdb

            out.append(duckdb.Error)
        return tuple(out)


@contextlib.contextmanager
def open_readonly(url: str) -> Iterator[ReadOnlyDatabase]:
    """Open ``url`` read-only (see the module docstring); always rolled back and closed."""
    db = ReadOnlyDatabase(url)
    try:
        yield db
    finally:
        db.close()


def _what(table: str | None, sql: str | None) -> str:
    return f"query {sql!r}" if sql is not None else f"table {table!r}"


def iter_rows(url: str, table: str | None, sql: str | None,
              chunksize: int | None) -> Iterator[Any]:
    """The rows of a table or checked query as pandas DataFrames of at most ``chunksize``
    rows (one DataFrame when ``chunksize`` is None); an empty result yields one empty
    frame with the columns."""
    import pandas as pd

    with open_readonly(url) as db:
        src = db.source(table, sql)
        try:
            cols = db.columns(src)
            empty = True
            for names, rows in db.fetch(f"SELECT * FROM {src}", chunksize or 1_000_000):
                empty = False
                yield _frame(pd, names, rows)
            if empty:
                yield pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        except db.errors() as exc:
            cause = getattr(exc, "orig", None) or exc
            raise DataError(f"database {db.label}, {_what(table, sql)}: {one_line(cause)}") from None


def _frame(pd: Any, names: Sequence[str], rows: list[tuple]) -> Any:
    """Rows as a DataFrame typed like ``pandas.read_sql`` (numbers with blanks as floats)."""
    return pd.DataFrame.from_records(rows, columns=list(names), coerce_float=True)


def grouped_rows(url: str, table: str | None, sql: str | None,
                 plan_columns: Any) -> tuple[list[str], Any, Any]:
    """Count the distinct patterns of some columns inside the database.

    ``plan_columns(all_columns)`` is called with the source's columns and returns the
    columns to group by (the mapped ones). Runs ``SELECT cols, COUNT(*) FROM source GROUP
    BY cols`` in the database; only distinct patterns travel.

    Returns
    -------
    (all_columns, frame, counts)
        The source's columns, a DataFrame of the distinct patterns (raw database values)
        and an int64 array of rows per pattern.
    """
    import numpy as np
    import pandas as pd

    with open_readonly(url) as db:
        src = db.source(table, sql)
        try:
            cols = db.columns(src)
            use = list(plan_columns(cols))
            if not use:
                n = next(iter(db.fetch(f"SELECT COUNT(*) FROM {src}", None)))[1][0][0]
                return cols, pd.DataFrame(index=range(1 if n else 0)), np.array(
                    [n] if n else [], dtype=np.int64)
            q = ", ".join(db.quote(c) for c in use)
            query = (f"SELECT {q}, COUNT(*) AS {db.quote(COUNT_ALIAS)} FROM {src} "
                     f"GROUP BY {q}")
            frames = [_frame(pd, names, rows) for names, rows in db.fetch(query, 100_000)]
        except db.errors() as exc:
            cause = getattr(exc, "orig", None) or exc
            raise DataError(f"database {db.label}, {_what(table, sql)}: {one_line(cause)}") from None
    if frames:
        out = pd.concat(frames, ignore_index=True)
    else:
        out = pd.DataFrame({c: pd.Series([], dtype=object) for c in [*use, COUNT_ALIAS]})
    counts = out.pop(out.columns[-1]).to_numpy(np.int64)
    out.columns = use
    return cols, out, counts
