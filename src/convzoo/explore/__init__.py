"""`convzoo explore`: look inside any network of the zoo in the browser -- its layers with their
shapes, parameters, MACs and receptive fields, feature maps, filters, Grad-CAM, a convolution as a
matrix product, max-pool windows, the top-5 on your image, and two networks side by side.

:class:`Explorer` holds the state (models, images, cached forward passes); :func:`create_app` is
the ASGI app (Starlette) around it and :func:`serve` runs it with uvicorn; :func:`embed` serves
it from a background thread and shows it in a Jupyter cell. Needs the ``explore``
extra (``pip install 'convzoo[explore]'``).
"""

from .service import Explorer

__all__ = ["Explorer", "create_app", "embed", "serve"]


def __getattr__(name: str):
    # Starlette is imported only when the app is wanted
    if name in ("create_app", "embed", "serve"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
