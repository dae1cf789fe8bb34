"""``genreclf serve``: a model over HTTP, for services and for people.

:func:`create_app` builds a FastAPI application around a fitted pipeline
(loaded through :func:`genreclf.tracking.load_pipeline` from any model URI,
``models:/<name>@<alias>`` included):

- ``POST /invocations``: MLflow's scoring protocol (JSON with
  ``dataframe_split``, ``dataframe_records``, ``inputs`` or ``instances``,
  and optional ``params``); rows of ``path`` and/or ``audio`` (base64) with
  an optional ``filename`` (see :mod:`genreclf.rows`). The answer is
  ``{"predictions": [...]}``, one record per row: ``genre``, a probability
  per genre and the top-k genres (``genre_<i>``, ``probability_<i>``);
  ``"params": {"windows": true}`` adds the genre of each window over time.
- ``GET /ping`` and ``GET /health``: 200 once the model is loaded.
- ``GET /``: a page where a person chooses or drops audio files and sees,
  for each, the top genres as bars and the genre of each window over time.
- ``GET /info``: the genres, the top-k and the limits (what the page reads).

Failed rows: a request any row of which fails (bytes that are not audio, a
missing file, a clip over the limits) is answered **400**, with a
``message`` naming every failed row and its reason **and** the
``predictions`` of every row: the others keep their answer, and a failed
one has ``genre`` null and an ``error``. With ``"params": {"on_error":
"row"}`` the same answer comes with status 200. A body over ``max_bytes``
is refused with 413 before it is read whole; a clip over ``max_duration``
(as its header declares) is refused without being decoded.

Predictions run one at a time (a lock around the model); requests wait
their turn.
"""

import asyncio
import importlib.resources
import json
import threading

from genreclf.exceptions import BadRequestError

__all__ = ["DEFAULT_TOP_K", "create_app", "serve"]

#: Top genres per row in the answer unless the request's ``params`` say.
DEFAULT_TOP_K = 3
#: Files of the page, served under ``/static/``.
_STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
_FORMATS = ("dataframe_split", "dataframe_records", "inputs", "instances")



def _static(name):
    return (importlib.resources.files("genreclf") / "static" / name).read_text(
        encoding="utf-8"
    )


def parse_request(body):
    """Read a scoring request: its rows and its ``params``.

    Parameters
    ----------
    body : bytes or str
        JSON in one of MLflow's formats: ``{"dataframe_split": {"columns":
        [...], "data": [[...]]}}``, ``{"dataframe_records": [{...}]}``,
        ``{"inputs": [...]}`` or ``{"instances": [...]}``, with an optional
        ``"params": {...}``.

    Returns
    -------
    rows : DataFrame, list or dict
        What :func:`genreclf.rows.rows_from_input` reads.
    params : dict

    Raises
    ------
    ValueError
        If the body is not such JSON.

    Examples
    --------
    >>> rows, params = parse_request(b'{"inputs": ["a.wav"], "params": {"top_k": 1}}')
    >>> rows, params
    (['a.wav'], {'top_k': 1})
    """
    import pandas as pd

    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequestError("expected a JSON object")
    found = [k for k in _FORMATS if k in payload]
    if len(found) != 1:
        raise BadRequestError(
            f"expected exactly one of {', '.join(_FORMATS)}, got keys "
            f"{sorted(payload)}"
        )
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequestError("'params' must be a JSON object")
    data = payload[found[0]]
    try:
        if found[0] == "dataframe_split":
            rows = pd.DataFrame(data=data["data"], columns=data.get("columns"))
        elif found[0] == "dataframe_records":
            rows = pd.DataFrame.from_records(data)
        else:
            rows = data
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError(f"cannot read {found[0]}: {exc}") from None
    return rows, params


def _options(params, top_k):
    """Validated ``top_k``, ``windows`` and ``on_error`` of a request."""
    unknown = set(params) - {"top_k", "windows", "on_error"}
    if unknown:
        raise BadRequestError(f"unknown params {sorted(unknown)}")
    k = params.get("top_k", top_k)
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise BadRequestError(f"'top_k' must be an integer >= 0, got {k!r}")
    windows = params.get("windows", False)
    if not isinstance(windows, bool):
        raise BadRequestError(f"'windows' must be true or false, got {windows!r}")
    on_error = params.get("on_error", "raise")
    if on_error not in ("raise", "row"):
        raise BadRequestError(f"'on_error' must be 'raise' or 'row', got {on_error!r}")
    return k, windows, on_error


def create_app(model, *, limits=None, top_k=DEFAULT_TOP_K):
    """Build the HTTP application that serves a model.

    Parameters
    ----------
    model : str, path-like or Pipeline
        A model URI or file (see :func:`genreclf.tracking.load_pipeline`), or
        a fitted pipeline.
    limits : genreclf.rows.Limits, optional
        Bounds on the body and each clip; default: ``Limits()`` (50 MiB, an
        hour), or the ``GENRECLF_MAX_*`` variables.
    top_k : int, default=3
        Top genres per row, unless a request's ``params`` say otherwise.

    Returns
    -------
    app : fastapi.FastAPI
        Run it with uvicorn (:func:`serve`) or starlette's test client.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.concurrency import run_in_threadpool

    from genreclf.rows import Limits, predict_rows

    if hasattr(model, "predict_proba"):
        pipeline = model
    else:
        from genreclf.tracking import load_pipeline

        pipeline = load_pipeline(model)
    limits = Limits.from_env() if limits is None else limits
    classes = [str(c) for c in pipeline.classes_]
    lock = threading.Lock()
    app = FastAPI(title="genreclf", docs_url=None, redoc_url=None)

    def error(message, status, **extra):
        return JSONResponse(
            {"error_code": "INVALID_PARAMETER_VALUE", "message": message, **extra},
            status_code=status,
        )

    async def read_body(request):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limits.max_bytes:
                raise BadRequestError(
                    f"request body of {declared} bytes is over the limit of "
                    f"{limits.max_bytes} bytes",
                    413,
                )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_bytes:
                raise BadRequestError(
                    f"request body is over the limit of {limits.max_bytes} bytes",
                    413,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def answer(rows, windows):
        with lock:
            return predict_rows(pipeline, rows, limits=limits, windows=windows)

    @app.get("/ping")
    @app.get("/health")
    def ping():
        return PlainTextResponse("\n")

    @app.get("/info")
    def info():
        return {
            "genres": classes,
            "top_k": top_k,
            "max_bytes": limits.max_bytes,
            "max_duration": limits.max_duration,
        }

    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(_static("index.html"))

    @app.get("/static/{name}")
    def static(name: str):
        if name not in _STATIC:
            return PlainTextResponse("not found\n", status_code=404)
        return PlainTextResponse(_static(name), media_type=_STATIC[name])

    @app.post("/invocations")
    async def invocations(request: Request):
        try:
            body = await read_body(request)
            rows, params = parse_request(body)
            k, windows, on_error = _options(params, top_k)
            result = await run_in_threadpool(answer, rows, windows)
        except BadRequestError as exc:
            return error(str(exc), exc.status)
        except (ValueError, OSError) as exc:
            return error(str(exc), 400)
        predictions = result.records(top_k=k)
        if result.errors and on_error == "raise":
            return error(
                f"{len(result.errors)} of {len(predictions)} row(s) could not be "
                f"predicted: {result.message()}",
                400,
                predictions=predictions,
            )
        return JSONResponse({"predictions": predictions})

    return app


def serve(model, host="127.0.0.1", port=5000, *, limits=None, top_k=DEFAULT_TOP_K):
    """Serve a model over HTTP until interrupted (``genreclf serve``).

    Parameters
    ----------
    model : str, path-like or Pipeline
        See :func:`create_app`.
    host : str, default="127.0.0.1"
        Address to listen on; the default answers this machine only.
    port : int, default=5000
        TCP port.
    limits : genreclf.rows.Limits, optional
        See :func:`create_app`.
    top_k : int, default=3
        See :func:`create_app`.
    """
    import uvicorn

    app = create_app(model, limits=limits, top_k=top_k)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", workers=1)
    server = uvicorn.Server(config)
    print(f"genreclf: serving on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    asyncio.run(server.serve())
