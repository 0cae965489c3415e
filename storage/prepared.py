"""The hot path's statements, run on SQLite's own connection.

SQLAlchemy's execution of a statement (the session, the execution context, the result)
costs about 0.1 ms, several times what SQLite takes to run it, and a message runs about
ten. So the statements every message runs (``rows``) are compiled once per dialect
and, on SQLite, which runs in this thread (``storage.db._InlineSQLite``), executed on
the driver's connection in the session's transaction, their parameters and rows
processed by the same types (encryption, dates, JSON) SQLAlchemy would use. On
PostgreSQL they go through the session as any other statement.

Only statements built once (module level, or once per dialect) belong here: each is
compiled once and kept. Expanding parameters (``IN`` a list) are spelled out per call,
as SQLAlchemy does.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    compiled: Any  # SQLAlchemy's, for statements with expanding parameters
    expanding: bool
    sql: str
    names: tuple[str, ...]  # the parameters, in their places
    binds: tuple[_Processor, ...]
    defaults: Mapping[str, Any]  # values the statement gives itself (``.values(x=False)``)
    results: tuple[_Processor, ...]
    row: Callable[[Sequence[Any]], tuple[Any, ...]]  # a row with its columns' names


@functools.lru_cache(maxsize=64)
def _compile(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    # An INSERT or UPDATE names the columns it is given: one compilation per set of them.
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    processors = compiled._bind_processors  # SQLAlchemy's own, types' bind_param included
    defaults = {
        name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
    }
    columns = compiled._result_columns
    results = tuple(column.type._cached_result_processor(dialect, None) for column in columns)
    row: Any = namedtuple("Row", [column.keyname for column in columns], rename=True)  # type: ignore[misc]
    return _Compiled(
        compiled,
        bool(compiled.post_compile_params or compiled.literal_execute_params),
        compiled.string,
        names,
        tuple(processors.get(name) for name in names),
        defaults,
        results,
        row._make,
    )


async def rows(
    session: AsyncSession, statement: ClauseElement, params: Mapping[str, Any]
) -> Sequence[Any]:
    """Run ``statement`` in ``session``'s transaction; the rows it returns (RETURNING
    included), none when it returns none."""
    held = await _held(session)
    if held is None:
        result = await session.execute(statement, params)  # type: ignore[call-overload]
        return result.all() if result.returns_rows else []
    driver, connection = held.driver, held.connection
    prepared = _compile(statement, held.dialect, tuple(params))
    sql, values = _values(prepared, params)
    _announce(connection, sql, values, many=False)
    try:
        cursor = driver.execute(sql, values)
        fetched = cursor.fetchall() if cursor.description else []
        cursor.close()
    except sqlite3.Error as error:
        raise _as_sqlalchemys(sql, error) from error
    results, make = prepared.results, prepared.row
    if not any(results):
        return [make(row) for row in fetched]
    return [make(_processed(zip(row, results, strict=True))) for row in fetched]


async def many(
    session: AsyncSession, statement: ClauseElement, params: Sequence[Mapping[str, Any]]
) -> None:
    """Run ``statement`` once for each of ``params`` (no rows returned), in ``session``'s
    transaction."""
    if not params:
        return
    held = await _held(session)
    if held is None:
        await session.execute(statement, params)  # type: ignore[call-overload]
        return
    driver, connection = held.driver, held.connection
    prepared = _compile(statement, held.dialect, tuple(params[0]))
    if prepared.expanding:
        raise ValueError("run many times: no expanding parameters")
    values = [_values(prepared, p)[1] for p in params]
    _announce(connection, prepared.sql, values, many=True)
    try:
        driver.executemany(prepared.sql, values)
    except sqlite3.Error as error:
        raise _as_sqlalchemys(prepared.sql, error) from error


@contextlib.asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint in ``session``'s transaction for statements of this module only (no
    ORM objects): what failed inside is undone, the transaction goes on; the error is
    raised. SQLAlchemy's ``begin_nested`` costs ten times SQLite's work on it."""
    held = await _held(session)
    if held is None:
        async with session.begin_nested():
            yield
        return
    driver, connection = held.driver, held.connection
    _run(driver, connection, "SAVEPOINT tawasul")
    try:
        yield
    except BaseException:
        _run(driver, connection, "ROLLBACK TO tawasul")
        _run(driver, connection, "RELEASE tawasul")
        raise
    _run(driver, connection, "RELEASE tawasul")


def _run(driver: sqlite3.Connection, connection: Connection, sql: str) -> None:
    _announce(connection, sql, (), many=False)
    try:
        driver.execute(sql)
    except sqlite3.Error as error:
        raise _as_sqlalchemys(sql, error) from error


def _values(prepared: _Compiled, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """The SQL to run and its parameters in their places, each processed by its type."""
    if prepared.expanding:
        state = prepared.compiled.construct_expanded_state(params)
        processors = state.processors or {}
        given = state.parameters
        placed = ((given[name], processors.get(name)) for name in state.positiontup)
        return state.statement, _processed(placed)
    defaults = prepared.defaults
    placed = (
        (params[name] if name in params else defaults[name], process)
        for name, process in zip(prepared.names, prepared.binds, strict=True)
    )
    return prepared.sql, _processed(placed)


def _processed(pairs: Iterable[tuple[Any, _Processor]]) -> list[Any]:
    """Each value through its type's processor (None stays None, as in SQLAlchemy)."""
    return [
        value if process is None or value is None else process(value) for value, process in pairs
    ]


def begin_immediate(connection: Connection) -> None:
    """SQLite's ``BEGIN IMMEDIATE`` on the driver's connection, as the engine's ``begin``
    listener (``storage.db``): through SQLAlchemy's execution it cost ten times SQLite's
    work on it."""
    # Busy beyond busy_timeout: SQLAlchemy's error, as before.
    _run(_sqlite_of(connection), connection, "BEGIN IMMEDIATE")


def _as_sqlalchemys(sql: str, error: sqlite3.Error) -> StatementError:
    """SQLite's error as SQLAlchemy raises it (``IntegrityError`` and the rest), its
    parameters (names, national IDs) left out."""
    return DBAPIError.instance(sql, None, error, sqlite3.Error, hide_parameters=True)


_DRIVER = "tawasul.sqlite_driver"


def _announce(connection: Connection, sql: str, values: Any, *, many: bool) -> None:
    """Tell the engine's ``before_cursor_execute`` listeners, as SQLAlchemy would (the
    tests' statement budget counts with one)."""
    listeners = connection.dispatch.before_cursor_execute
    if listeners:
        listeners(connection, None, sql, values, None, many)


@dataclass(frozen=True, slots=True)
class _Held:
    """SQLite's connection under a session's transaction, and SQLAlchemy's over it."""

    transaction: Any  # the session's, for which these hold
    driver: sqlite3.Connection
    connection: Connection
    dialect: Dialect


_ELSEWHERE = "not SQLite"  # in a session's info: its statements go through SQLAlchemy


async def _held(session: AsyncSession) -> _Held | None:
    """SQLite's connection under ``session``'s transaction (begun here if it was not),
    after what the session holds unflushed (as SQLAlchemy would before a statement);
    None on another database. Kept in the session's ``info`` for its transaction."""
    sync = session.sync_session
    info = sync.info
    held = info.get(_DRIVER)
    if held is _ELSEWHERE:
        return None
    if not sync._is_clean():
        await session.flush()
    transaction = sync.get_transaction()
    if held is not None and transaction is not None and held.transaction is transaction:
        return held  # type: ignore[no-any-return]
    dialect = sync.get_bind().dialect
    if dialect.name != "sqlite":
        info[_DRIVER] = _ELSEWHERE
        return None
    connection: Connection = (await session.connection()).sync_connection  # type: ignore[assignment]
    held = _Held(sync.get_transaction(), _sqlite_of(connection), connection, dialect)
    info[_DRIVER] = held
    return held


def _sqlite_of(connection: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under SQLAlchemy's (through aiosqlite's, which runs it in
    this thread: ``storage.db._InlineSQLite``)."""
    fairy: Any = connection.connection
    driver: sqlite3.Connection = fairy.driver_connection._connection
    return driver
