"""The one image opener of the package: encoded bytes or a file -> uint8 (C, H, W), under one pixel
cap.

Data folders, ``convzoo predict`` / ``visualize`` and ``convzoo explore``'s uploads all decode here,
so an image one of them reads the others read the same way, and one too large for one is too large
for all (:data:`MAX_IMAGE_PIXELS`, read from the header before anything is decoded).

Decoding uses ``torchvision.io.decode_image`` (libjpeg-turbo / libpng), with PIL as the fallback for
the formats it lacks (BMP, TIFF, ...). Grey, palette, CMYK, RGBA and 16-bit images are converted to
the channels asked for (RGB or grey); an animated GIF gives its first frame. A file that cannot be
decoded, an empty file, or one that is not an image raises :class:`~convzoo.errors.DataError`
naming it; one over the pixel cap raises :class:`ImageTooLarge` (a DataError).
"""

from __future__ import annotations

import io
import os
import warnings
import zlib

import torch
from torchvision.io import ImageReadMode, decode_image

from ..errors import DataError

# torchvision 0.29 warns on every decode that TorchCodec will take over image decoding; the calls
# used here still work, and the warning would flood logs with one line per image.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of "
                        "TorchVision are deprecated", category=DeprecationWarning)


# Decoded pixels an image may have, whoever reads it (192 MB as RGB), read from its header before
# decoding: a 20000x20000 PNG of 400 kB would decode to 1.2 GB.
MAX_IMAGE_PIXELS = 8192 * 8192


class ImageTooLarge(DataError):
    """An image whose header declares more than :data:`MAX_IMAGE_PIXELS` pixels, refused before
    decoding. ``predict``, which skips files that are not images, stops on this one: it is an
    image, only too large (resize it first)."""


def _pil_decode(data: bytes, channels: int) -> torch.Tensor:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(data))
        im.load()  # raises on truncated data (ImageFile.LOAD_TRUNCATED_IMAGES is False)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale to 8 bits rather than clip, as convert("L") would.
        import numpy as np

        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    im = im.convert("L" if channels == 1 else "RGB")
    t = torch.from_numpy(__import__("numpy").asarray(im).copy())
    return t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1).contiguous()



def check_pixels(data: bytes | torch.Tensor, limit: int = MAX_IMAGE_PIXELS) -> None:
    """Raise ImageTooLarge when the header of encoded ``data`` declares more than ``limit`` pixels;
    formats that cannot be read are left to the decoder to refuse.

    PNG (where the bombs are: deflate packs a blank 20000x20000 into 400 kB): its IHDR, at a
    fixed offset. JPEG: its frame header (SOF), found by walking the segments before it (a
    1 kB file may declare 30000x30000: decoders allocate for the declared size first).
    Anything else: PIL reads the header only.
    """
    head = bytes(data[:24].numpy()) if isinstance(data, torch.Tensor) else bytes(data[:24])
    size = None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif head[:2] == b"\xff\xd8":
        size = jpeg_size(bytes(data[:65536].numpy()) if isinstance(data, torch.Tensor)
                         else bytes(data[:65536]))
    if size is not None:
        w, h = size
    else:
        from PIL import Image

        raw = data.numpy().tobytes() if isinstance(data, torch.Tensor) else data
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                w, h = Image.open(io.BytesIO(raw)).size
        except Image.DecompressionBombError:  # PIL's own check, far above ours
            raise ImageTooLarge(f"image has more pixels than the limit of {limit:,}") from None
        except Exception:  # not a format PIL knows, or a broken header: the decoder says why
            return
    if w * h > limit:
        raise ImageTooLarge(f"image is {w}x{h} = {w * h:,} pixels, more than the limit of "
                            f"{limit:,}")


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (SOF0..SOF15 but DHT, JPG, DAC); None when
    ``data`` ends before one (the decoder then says what is wrong)."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7],
                                                                             "big")
        if marker in (0x01, *range(0xD0, 0xD8)):  # TEM, RSTn: no length
            i += 2
            continue
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return None

# Samples per pixel of each PNG colour type (grey, RGB, palette, grey + alpha, RGBA).
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7 interlacing: (first row, first column, row step, column step) of each of the 7 passes.
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2),
          (1, 0, 2, 1))


def check_png_data(data: bytes) -> None:
    """Raise DataError when a PNG's image data inflate to fewer bytes than its header needs.

    torchvision 0.29's PNG decoder crashes the process (a segmentation fault, not an exception)
    on such a file ("libpng error: Not enough image data"): a header of 5000x5000 with one byte
    of pixels, as a hostile upload or a damaged file may be. The IDAT stream is inflated here
    and counted, not kept, so the check needs little memory; what else is wrong with the file is
    left to the decoder to say.
    """
    if len(data) < 33 or data[12:16] != b"IHDR":
        return
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, ctype, interlace = data[24], data[25], data[28]
    if ctype not in _PNG_SAMPLES:
        return
    bits = depth * _PNG_SAMPLES[ctype]
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    need = 0
    for r0, c0, dr, dc in passes:
        pw, ph = (w - c0 + dc - 1) // dc, (h - r0 + dr - 1) // dr
        if pw > 0 and ph > 0:
            need += ph * (1 + (pw * bits + 7) // 8)  # a filter byte, then the row's pixels
    inflate, got, i = zlib.decompressobj(), 0, 8
    while i + 8 <= len(data) and got < need:
        size, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8]
        if kind == b"IDAT":
            chunk = data[i + 8:i + 8 + size]
            try:
                while chunk and got < need:
                    got += len(inflate.decompress(chunk, 1 << 20))
                    chunk = inflate.unconsumed_tail
            except zlib.error:
                return  # a broken stream: the decoder says so, as an exception
        elif kind == b"IEND":
            break
        i += 12 + size
    if got < need:
        raise DataError(f"corrupt or truncated image (PNG of {w}x{h} holds {got:,} bytes of "
                        f"pixel data; its header needs {need:,})")


def decode_bytes(data: bytes | torch.Tensor, channels: int = 3) -> torch.Tensor:
    """Encoded image -> uint8 (channels, H, W); raises DataError with the reason (also for more
    than :data:`MAX_IMAGE_PIXELS` pixels)."""
    if len(data) == 0:
        raise DataError("empty file (0 bytes)")
    check_pixels(data)
    if bytes(data[:8]) == b"\x89PNG\r\n\x1a\n":
        check_png_data(data.numpy().tobytes() if isinstance(data, torch.Tensor) else data)
    buf = data if isinstance(data, torch.Tensor) else torch.frombuffer(bytearray(data),
                                                                       dtype=torch.uint8)
    mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
    try:
        img = decode_image(buf, mode=mode)
    except RuntimeError as e:
        msg = str(e)
        if "Unsupported image file" not in msg:  # torchvision knows the format but it is broken
            reason = msg.rsplit(",", 1)[-1].strip() or "cannot decode"
            raise DataError(f"corrupt or truncated image ({reason})") from None
        try:
            img = _pil_decode(bytes(buf.numpy()), channels)
        except Exception as pe:  # PIL raises many types for non-images and broken files
            raise DataError(f"not a readable image ({type(pe).__name__}: {pe})") from None
    if img.ndim == 4:  # an animated GIF: (frames, C, H, W); its first frame, as PIL shows it
        img = img[0]
    if img.dtype == torch.uint16:  # 16-bit PNG: keep the top 8 bits
        img = (img.to(torch.int32) >> 8).to(torch.uint8)
    elif img.dtype != torch.uint8:
        raise DataError(f"unsupported pixel type {img.dtype}")
    if img.ndim != 3 or img.shape[0] != channels:
        raise DataError(f"decoded to shape {tuple(img.shape)}, expected ({channels}, H, W)")
    return img


def decode_file(path: str | os.PathLike, channels: int = 3) -> torch.Tensor:
    """Read and decode one image file -> uint8 (channels, H, W); DataError names the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return decode_bytes(data, channels)
    except DataError as e:  # the same kind (ImageTooLarge stays one), now naming the file
        raise type(e)(f"{path}: {e}") from None
