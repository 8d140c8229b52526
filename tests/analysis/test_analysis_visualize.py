"""visualize gradcam: the class name in the title, the image beside the overlay, a light colour
map whose opacity follows the map."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from convzoo.analysis import visualize as vis


def test_gradcam_figure_image_beside_overlay():
    cam = torch.linspace(0, 1, 16 * 16).reshape(16, 16)
    image = torch.rand(16, 16, 3)
    fig = vis.gradcam_figure(cam, image, title="Grad-CAM: horse (class 7) at layer3")
    left, right = fig.axes
    assert left.get_title().startswith("input (16x16") and "horse (class 7)" in right.get_title()
    assert len(left.images) == 1 and len(right.images) == 2
    np.testing.assert_allclose(left.images[0].get_array(), image.numpy())
    heat = np.asarray(right.images[1].get_array())  # RGBA: opacity follows the map
    assert heat.shape == (16, 16, 4) and heat[0, 0, 3] < 0.2 < 0.7 < heat[-1, -1, 3]
    assert heat[0, 0, :3].mean() > 0.9  # low values: near white (jet's were dark blue)
    alone = vis.gradcam_figure(cam, None, title="t")
    assert len(alone.axes) == 1


def test_visualize_gradcam_names_the_class(tmp_path, monkeypatch):
    figures = []
    real = vis._save
    monkeypatch.setattr(vis, "_save", lambda fig, path: (figures.append(fig), real(fig, path)))
    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
        img)
    r = vis.visualize("resnet20:cifar10", "gradcam", tmp_path / "cam.png", image=str(img),
                      target="horse")
    assert r["class"] == 7 and r["class_name"] == "horse" and (tmp_path / "cam.png").is_file()
    (fig,) = figures
    assert [ax.get_title() for ax in fig.axes] == [
        "input (32x32, as the model sees it)", f"Grad-CAM: horse (class 7) at {r['layer']}"]
    shown = fig.axes[0].images[0].get_array()  # the file's own pixels: normalisation undone
    np.testing.assert_allclose(shown, np.asarray(Image.open(img)) / 255, atol=1e-5)
