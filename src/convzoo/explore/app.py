"""The ASGI app of `convzoo explore`: one static page (explore/static) and the JSON/PNG API it
calls. Every answer comes from :class:`~convzoo.explore.service.Explorer`; this module only turns
HTTP into calls and errors into 4xx answers with a message.

API (``model``: an id from ``/api/models``; ``image``: an id from ``/api/upload``,
``/api/samples`` or ``/api/predict``; ``layer``: a row index of ``/api/model``'s ``layers``, or
``block``: a module name, the rows of ``/api/model?depth=N``):

- ``GET /api/models`` -- ``{"models": [...], "default": id}``
- ``GET /api/model?model=&depth=`` -- the model's card and its layer (or block) table
- ``GET /api/samples?model=`` -- labelled test images of its data set
- ``POST /api/upload`` (multipart field ``image``) -- ``{"image": id, ...}``
- ``POST /api/predict?model=`` (multipart field ``image``, or ``&image=id``) -- ``{"top5": [...]}``
- ``GET /api/image.png?image=``, ``/api/maps.png?model=&image=&layer=&which=output|input`` (layout
  in the ``X-Layout`` header), ``/api/values?model=&image=&layer=`` (a vector output as numbers;
  the logits with class names and probabilities), ``/api/filters.png?model=``,
  ``/api/gradcam.png?model=&image=&class=&layer=`` (``X-Info`` header)
- ``GET /api/overview.png?model=&image=&depth=`` (every operation's output as a thumbnail,
  their connections in the ``X-Layout`` header)
- ``GET /api/explain?model=&image=&layer=`` (what the operation does, with this image's
  numbers), ``/api/batchnorm?...&channel=`` (train and eval mode on a mini-batch),
  ``/api/dropout?...`` (train and eval mode)
- ``GET /api/conv?model=&image=&layer=&channel=&row=&col=`` (one output as the sum over its
  input channels), ``/api/im2col?model=&image=&layer=&patch=``, ``/api/pool?model=&image=&layer=``,
  ``/api/pool/example``, ``/api/compare?a=&b=&image=``
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import ConvzooError, shown
from .service import MAX_UPLOAD_BYTES, BadRequest, Explorer, slide_pool_example

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers around the image's bytes


def _arg(request: Request, name: str, kind: type = str, *, required: bool = True) -> Any:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        if required:
            raise BadRequest(f"missing query parameter {name!r}")
        return None
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be an integer, got {shown(raw)!r}") from None
    return raw


def _layer(request: Request, *, required: bool = True) -> int | str | None:
    """``block=NAME`` (a module of the table at a depth) or ``layer=INDEX`` (a leaf row)."""
    block = request.query_params.get("block")
    return block if block else _arg(request, "layer", int, required=required)


async def _upload_bytes(request: Request) -> tuple[bytes, str]:
    """The multipart field ``image``'s bytes and file name, refused (413/411/415/400) before the
    body is read when its declared size is over the cap, and unless it is an image type."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise BadRequest("upload needs a Content-Length header")
    if int(length) > MAX_UPLOAD_BYTES + FORM_OVERHEAD:
        err = BadRequest(f"upload is {int(length):,} bytes; the limit is {MAX_UPLOAD_BYTES:,}")
        err.status = 413
        raise err
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("upload the image as multipart/form-data, field 'image'")
    form = await request.form(max_files=1, max_fields=4)
    try:
        part = form.get("image")
        if part is None or isinstance(part, str):
            raise BadRequest("the upload has no file field 'image'")
        ctype = part.content_type or ""
        if not ctype.startswith("image/"):
            err = BadRequest(f"upload is {shown(ctype) or 'of no type'}, not an image type")
            err.status = 415
            raise err
        data = await part.read(MAX_UPLOAD_BYTES + 1)
        return data, part.filename or "upload"
    finally:
        await form.close()


def create_app(explorer: Explorer, *, default: str | None = None) -> Starlette:
    """The app serving ``explorer``; ``default`` is the model the page opens with."""

    def json_ok(value: Any) -> JSONResponse:
        return JSONResponse(value)

    async def call(fn, *args, **kwargs):
        return await run_in_threadpool(fn, *args, **kwargs)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def models(request: Request) -> Response:
        entries = await call(explorer.entries)
        ids = [e.id for e in entries]
        first = default or next((e.id for e in entries if e.kind == "shipped"), ids[0])
        return json_ok({"models": [e.to_dict() for e in entries], "default": first})

    async def model(request: Request) -> Response:
        return json_ok(await call(explorer.describe, _arg(request, "model"),
                                  depth=_arg(request, "depth", int, required=False)))

    async def samples(request: Request) -> Response:
        return json_ok(await call(explorer.samples, _arg(request, "model")))

    async def upload(request: Request) -> Response:
        data, name = await _upload_bytes(request)
        pic = await call(explorer.add_upload, data, name)
        return json_ok({"image": pic.id, "name": pic.name, "size": list(pic.image.size)})

    async def predict(request: Request) -> Response:
        model_id = _arg(request, "model")
        pid = _arg(request, "image", required=False)
        if pid is None:
            data, name = await _upload_bytes(request)
            pid = (await call(explorer.add_upload, data, name)).id
        return json_ok(await call(explorer.predict, model_id, pid))

    async def image_png(request: Request) -> Response:
        png = await call(explorer.picture_png, _arg(request, "image"))
        return Response(png, media_type="image/png")

    async def maps_png(request: Request) -> Response:
        png, layout = await call(explorer.maps, _arg(request, "model"), _arg(request, "image"),
                                 _layer(request),
                                 which=_arg(request, "which", required=False) or "output",
                                 limit=_arg(request, "limit", int, required=False) or 64,
                                 channel=_arg(request, "channel", int, required=False),
                                 shared=_arg(request, "scale", required=False) == "layer")
        return Response(png, media_type="image/png", headers={"X-Layout": json.dumps(layout)})

    async def conv_at(request: Request) -> Response:
        return json_ok(await call(explorer.conv_at, _arg(request, "model"),
                                  _arg(request, "image"), _layer(request),
                                  channel=_arg(request, "channel", int),
                                  row=_arg(request, "row", int), col=_arg(request, "col", int)))

    def about(method):  # the endpoints that take a model, an image and a layer, and no more
        async def endpoint(request: Request) -> Response:
            return json_ok(await call(method, _arg(request, "model"), _arg(request, "image"),
                                      _layer(request)))
        return endpoint

    async def overview_png(request: Request) -> Response:
        png, layout = await call(explorer.overview, _arg(request, "model"),
                                 _arg(request, "image"),
                                 depth=_arg(request, "depth", int, required=False))
        return Response(png, media_type="image/png", headers={"X-Layout": json.dumps(layout)})

    async def batchnorm(request: Request) -> Response:
        return json_ok(await call(explorer.batchnorm, _arg(request, "model"),
                                  _arg(request, "image"), _layer(request),
                                  channel=_arg(request, "channel", int, required=False)))

    async def values(request: Request) -> Response:
        return json_ok(await call(explorer.values, _arg(request, "model"), _arg(request, "image"),
                                  _layer(request)))

    async def filters_png(request: Request) -> Response:
        png = await call(explorer.filters_png, _arg(request, "model"))
        return Response(png, media_type="image/png")

    async def gradcam_png(request: Request) -> Response:
        png, info = await call(explorer.gradcam_png, _arg(request, "model"),
                               _arg(request, "image"),
                               target=_arg(request, "class", int, required=False),
                               layer=_layer(request, required=False))
        return Response(png, media_type="image/png", headers={"X-Info": json.dumps(info)})

    async def im2col(request: Request) -> Response:
        return json_ok(await call(explorer.im2col, _arg(request, "model"), _arg(request, "image"),
                                  _layer(request),
                                  patch=_arg(request, "patch", int, required=False)))

    async def pool(request: Request) -> Response:
        return json_ok(await call(explorer.pool, _arg(request, "model"), _arg(request, "image"),
                                  _layer(request),
                                  channel=_arg(request, "channel", int, required=False)))

    async def pool_example(request: Request) -> Response:
        return json_ok(slide_pool_example())

    async def compare(request: Request) -> Response:
        return json_ok(await call(explorer.compare, _arg(request, "a"), _arg(request, "b"),
                                  _arg(request, "image")))

    async def convzoo_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status", 400)
        return JSONResponse({"error": str(exc)}, status_code=status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("explore: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=500)

    routes = [
        Route("/", index),
        Route("/api/models", models),
        Route("/api/model", model),
        Route("/api/samples", samples),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/image.png", image_png),
        Route("/api/maps.png", maps_png),
        Route("/api/values", values),
        Route("/api/conv", conv_at),
        Route("/api/explain", about(explorer.explain)),
        Route("/api/overview.png", overview_png),
        Route("/api/batchnorm", batchnorm),
        Route("/api/dropout", about(explorer.dropout)),
        Route("/api/filters.png", filters_png),
        Route("/api/gradcam.png", gradcam_png),
        Route("/api/im2col", im2col),
        Route("/api/pool", pool),
        Route("/api/pool/example", pool_example),
        Route("/api/compare", compare),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={ConvzooError: convzoo_error,
                                                        Exception: server_error})


def _server(explorer: Explorer, *, host: str, port: int, default: str | None, ready=None):
    """A uvicorn server of the app; ``ready(url)`` is called once it listens."""
    import uvicorn

    config = uvicorn.Config(create_app(explorer, default=default), host=host, port=port,
                            log_level="warning")
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            if server.started:  # the port actually bound (``port=0``: one the system chose)
                bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
                ready(f"http://{host}:{bound}/")

        server.startup = startup  # type: ignore[method-assign]
    return server


def serve(explorer: Explorer, *, host: str = "127.0.0.1", port: int = 8000,
          default: str | None = None, ready=None) -> None:
    """Serve the app with uvicorn until interrupted; ``ready(url)`` is called once listening."""
    _server(explorer, host=host, port=port, default=default, ready=ready).run()


class EmbeddedExplorer:
    """The explorer served from this process (a background thread), shown in a Jupyter cell as
    a frame of its page: ``convzoo.explore.embed()`` as a cell's value. The frame loads the page
    from ``url`` on 127.0.0.1, so the browser must run on the kernel's machine (a local Jupyter,
    not a hosted one). :meth:`stop` ends the server."""

    def __init__(self, server, thread, url: str, height: int) -> None:
        self.server, self.thread, self.url, self.height = server, thread, url, height

    def _repr_html_(self) -> str:
        import html

        return (f"<iframe src='{html.escape(self.url)}' style='width:100%;height:{self.height}px;"
                f"border:1px solid #ddd'></iframe><p><a href='{html.escape(self.url)}' "
                f"target='_blank'>{html.escape(self.url)}</a></p>")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def embed(explorer: Explorer | None = None, *, port: int = 0, default: str | None = None,
          height: int = 760, timeout: float = 30.0) -> EmbeddedExplorer:
    """Start the explorer (``Explorer()`` unless given: the shipped weights and ``runs/``) on
    127.0.0.1 in a daemon thread, ``port`` 0 choosing a free one, and return it for display."""
    import queue
    import threading

    urls: queue.Queue[str] = queue.Queue()
    server = _server(explorer or Explorer(), host="127.0.0.1", port=port, default=default,
                     ready=urls.put)
    thread = threading.Thread(target=server.run, name="convzoo-explore", daemon=True)
    thread.start()
    try:
        url = urls.get(timeout=timeout)
    except queue.Empty:
        server.should_exit = True
        raise ConvzooError(f"explore: the server did not start within {timeout:.0f} s (port "
                           f"{port} taken?)") from None
    return EmbeddedExplorer(server, thread, url, height)
