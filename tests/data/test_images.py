"""One image opener, one pixel cap: data folders, ``predict`` and ``explore`` decode through
convzoo.data.images and refuse the same too-large image, naming the file where there is one."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.data import images
from convzoo.data.images import MAX_IMAGE_PIXELS, ImageTooLarge, decode_bytes, decode_file
from convzoo.errors import ConvzooError, DataError
from data.imagehelp import png_header_only, png_with_pixels


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# Just over the cap: a 8193 x 8192 image. The 4096^2 cap explore once had would refuse 5000^2.
OVER = (8193, 8192)


def test_the_cap_is_one_number_and_the_header_decides():
    assert MAX_IMAGE_PIXELS == 8192 * 8192
    with pytest.raises(ImageTooLarge, match=r"8193x8192 = 67,117,056 pixels, more than the "
                                            r"limit of 67,108,864"):
        images.check_pixels(png_header_only(*OVER))
    images.check_pixels(png_header_only(8192, 8192))  # at the cap: allowed (the header only)
    assert issubclass(ImageTooLarge, DataError)


def test_a_too_large_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(*OVER))
    with pytest.raises(ImageTooLarge, match=r"huge\.png: image is 8193x8192"):
        decode_file(path)


def test_predict_refuses_the_same_image_naming_it(tmp_path):
    from convzoo.analysis.loading import open_image

    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(*OVER))
    with pytest.raises(ConvzooError, match=r"huge\.png: image is 8193x8192 = 67,117,056 pixels, "
                                           r"more than the limit of 67,108,864"):
        open_image(path)
    (tmp_path / "notes.txt").write_text("not an image")
    assert open_image(tmp_path / "notes.txt") is None  # not an image: skipped, not refused


def test_explore_refuses_the_same_image():
    pytest.importorskip("starlette")
    from convzoo.explore.service import BadRequest, open_upload

    with pytest.raises(BadRequest, match=r"8193x8192 = 67,117,056 pixels, more than the limit "
                                         r"of 67,108,864"):
        open_upload(png_header_only(*OVER))
    # 5000 x 5000 is within the one cap: the header passes, and this one's pixel data is absent.
    with pytest.raises(BadRequest, match="cannot decode the PNG image"):
        open_upload(png_header_only(5000, 5000))


def test_data_predict_and_explore_decode_alike(tmp_path):
    from convzoo.analysis.loading import open_image
    from convzoo.explore.service import open_upload

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    path.write_bytes(png(rgb))
    want = torch.from_numpy(rgb).permute(2, 0, 1)
    assert torch.equal(decode_file(path), want)
    assert torch.equal(torch.from_numpy(np.array(open_image(path))).permute(2, 0, 1), want)
    assert torch.equal(torch.from_numpy(np.array(open_upload(png(rgb)))).permute(2, 0, 1), want)
    grey = rgb[..., 0]
    assert np.array_equal(np.asarray(open_upload(png(grey))), grey)  # grey stays one channel


def test_animated_gif_gives_its_first_frame():
    frames = [Image.fromarray(np.full((4, 5, 3), v, np.uint8)) for v in (10, 200)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    img = decode_bytes(buf.getvalue())
    assert img.shape == (3, 4, 5) and abs(int(img.float().mean()) - 10) <= 2


def _adam7_bytes(width: int, height: int) -> int:
    """Filter bytes + pixel bytes of an interlaced 8-bit RGB image, pass by pass (PNG spec 8.2)."""
    total = 0
    for r0, c0, dr, dc in ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2),
                           (0, 1, 2, 2), (1, 0, 2, 1)):
        cols, rows = len(range(c0, width, dc)), len(range(r0, height, dr))
        total += rows * (1 + 3 * cols) if cols and rows else 0
    return total


@pytest.mark.parametrize("interlace", [0, 1])
@pytest.mark.parametrize("size", [(8, 8), (7, 5), (1, 1), (13, 3)])
def test_png_with_too_little_pixel_data_is_refused_not_a_crash(size, interlace):
    """torchvision's PNG decoder dies with a segmentation fault on "Not enough image data"; the
    opener refuses such a file first, and still decodes one with exactly enough."""
    w, h = size
    need = _adam7_bytes(w, h) if interlace else h * (1 + 3 * w)
    assert decode_bytes(png_with_pixels(w, h, bytes(need), interlace=interlace)).shape == (3, h, w)
    with pytest.raises(DataError, match="corrupt or truncated image"):
        decode_bytes(png_with_pixels(w, h, bytes(need - 1), interlace=interlace))
    with pytest.raises(DataError, match="corrupt or truncated image"):
        decode_bytes(png_header_only(5000, 5000))  # the hostile upload: a big header, one byte
