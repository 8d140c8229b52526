"""Draw docs/im2col.png: a convolution becomes one matrix product.

    .venv/bin/python docs/make_im2col_figure.py

A 2-channel 4x4 input, three 3x3 filters, stride 1, no padding: four output positions. Every
window of the input (coloured) becomes one column of ``cols`` (18 x 4); the filters become the rows
of W (3 x 18); Y = W @ cols (3 x 4) is the output, three 2x2 maps. The numbers are the input
pixels' indices, so one can follow each pixel into the columns it is copied to. The columns are
built by convzoo.scratch.im2col itself.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from convzoo.scratch import im2col  # noqa: E402

OUT = Path(__file__).resolve().parent / "im2col.png"
COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3"]  # one per output position / column
C, H, K, C_OUT = 2, 4, 3, 3


def grid(ax, values, colours=None, fmt="{:d}", title="", xlabel="", ylabel="", fontsize=9):
    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols):
            face = colours[i][j] if colours is not None else "white"
            ax.add_patch(Rectangle((j, rows - 1 - i), 1, 1, facecolor=face, edgecolor="grey",
                                   alpha=0.45 if face != "white" else 1.0, lw=0.6))
            ax.text(j + 0.5, rows - 0.5 - i, fmt.format(values[i, j]), ha="center",
                    va="center", fontsize=fontsize)
    ax.set_xlim(0, cols)
    ax.set_ylim(0, rows)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)


def main() -> None:
    x = np.arange(C * H * H).reshape(1, C, H, H)  # pixel indices 0..31
    cols, (oh, ow) = im2col(x, (K, K))  # (C*K*K, N*OH*OW) = (18, 4)

    fig = plt.figure(figsize=(13, 6.2))
    gs = fig.add_gridspec(2, 5, width_ratios=[1.1, 1.1, 1.6, 2.6, 1.6], height_ratios=[1, 1])

    # 1. input channels with the first window outlined in its colour, the others in theirs
    for c in range(C):
        ax = fig.add_subplot(gs[c, 0])
        grid(ax, x[0, c], title=f"x[0, {c}] (4x4)" if c == 0 else f"x[0, {c}]")
        for w, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
            off = 0.06 * w
            ax.add_patch(Rectangle((j + off, H - K - i + off), K - 2 * off, K - 2 * off,
                                   fill=False, edgecolor=COLOURS[w], lw=2.2))
    ax_txt = fig.add_subplot(gs[:, 1])
    ax_txt.axis("off")
    ax_txt.text(0.0, 0.5,
                "each 3x3x2 window\n(one output position)\nbecomes one column:\n\n"
                "view (C, kh, kw, N, OH, OW)\n= (2, 3, 3, 1, 2, 2),\nno copy;\n\n"
                "reshape -> cols\n(C*kh*kw, N*OH*OW)\n= (18, 4): the one copy",
                fontsize=9, va="center")

    # 2. the columns
    ax = fig.add_subplot(gs[:, 2])
    colours = [[COLOURS[j] for j in range(cols.shape[1])] for _ in range(cols.shape[0])]
    grid(ax, cols, colours, title="cols = im2col(x)\n(18 x 4)", xlabel="window (i, j)",
         ylabel="(c, p, q): 18 = C*kh*kw", fontsize=8)

    # 3. the weights as rows, and the product
    rng = np.random.default_rng(0)
    w = rng.integers(-1, 2, size=(C_OUT, C * K * K))
    ax = fig.add_subplot(gs[0, 3])
    grid(ax, w, title="W.reshape(C_out, C*kh*kw) (3 x 18): one filter per row", fmt="{:+d}",
         fontsize=7)
    y = w @ cols  # (3, 4)
    ax = fig.add_subplot(gs[1, 3])
    ax.axis("off")
    ax.text(0.02, 0.5, "Y = W @ cols\n(3 x 18) @ (18 x 4) = (3 x 4)\n\n"
            "one GEMM does all 3 x 4 dot products\n(per group when groups > 1)\n\n"
            "backward: dW = dY @ cols^T,\ndcols = W^T @ dY, dx = col2im(dcols)",
            fontsize=9, va="center")
    ax = fig.add_subplot(gs[0, 4])
    ycol = [[COLOURS[j] for j in range(y.shape[1])] for _ in range(y.shape[0])]
    grid(ax, y, ycol, title="Y (3 x 4)", xlabel="window (i, j)", ylabel="filter")
    maps = y.reshape(C_OUT, oh, ow)
    sub = gs[1, 4].subgridspec(1, C_OUT, wspace=0.15)
    map_colours = [[COLOURS[i * ow + j] for j in range(ow)] for i in range(oh)]
    for o in range(C_OUT):
        ax = fig.add_subplot(sub[0, o])
        grid(ax, maps[o], map_colours, title="reshape -> (C_out, OH, OW)" if o == 1 else "",
             xlabel=f"y[0, {o}]")
    fig.suptitle("im2col: a convolution as one matrix product (C=2, 4x4 input, three 3x3 filters)",
                 fontsize=12)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
