import xml.etree.ElementTree as ET

import numpy as np
import pytest

from semalign.errors import SemalignError
from semalign.tracking.plotting import attention_figure, figure_to_rgb, save_figure

TOKENS = ["the", "cat", "sat", "$5", "."]


def _softmax_rows(rng, q_len, k_len):
    w = rng.random((q_len, k_len))
    return w / w.sum(-1, keepdims=True)


def _image(fig):
    (image,) = [im for ax in fig.axes for im in ax.get_images()][:1]
    return image


def test_single_map_sequential():
    rng = np.random.default_rng(0)
    w = _softmax_rows(rng, 5, 5)
    fig = attention_figure(w, TOKENS, TOKENS, title="dot")
    image = _image(fig)
    assert image.get_cmap().name == "viridis"
    assert image.norm.vmin == 0.0
    assert image.norm.vmax == pytest.approx(w.max())
    np.testing.assert_array_equal(image.get_array(), w)
    heat = fig.axes[0]
    assert [t.get_text() for t in heat.get_xticklabels()] == ["the", "cat", "sat", r"\$5", "."]
    assert [t.get_text() for t in heat.get_yticklabels()] == ["the", "cat", "sat", r"\$5", "."]
    assert heat.get_xlabel() == "key" and heat.get_ylabel() == "query"
    assert fig.get_suptitle() == "dot"
    assert len(fig.axes) == 2  # heat map + colour bar


def test_diverging_auto_for_negative_weights():
    w = np.array([[0.5, -0.25], [1.0, 0.0]])
    fig = attention_figure(w, ["a", "b"], ["c", "d"])
    image = _image(fig)
    assert image.get_cmap().name == "RdBu_r"
    assert (image.norm.vmin, image.norm.vmax) == (-1.0, 1.0)  # symmetric around 0


def test_diverging_forced_and_disabled():
    w = np.array([[0.5, 0.25], [0.0, 0.25]])
    fig = attention_figure(w, ["a", "b"], ["c", "d"], diverging=True)
    assert _image(fig).get_cmap().name == "RdBu_r"
    assert (_image(fig).norm.vmin, _image(fig).norm.vmax) == (-0.5, 0.5)
    neg = np.array([[-0.5, 0.25], [0.0, 0.25]])
    fig = attention_figure(neg, ["a", "b"], ["c", "d"], diverging=False)
    assert _image(fig).get_cmap().name == "viridis"
    assert (_image(fig).norm.vmin, _image(fig).norm.vmax) == (-0.5, 0.25)


def test_constant_zero_weights_have_a_valid_scale():
    fig = attention_figure(np.zeros((2, 2)), ["a", "b"], ["c", "d"])
    assert (_image(fig).norm.vmin, _image(fig).norm.vmax) == (0.0, 1.0)
    assert figure_to_rgb(fig).ndim == 3


def test_grid_layers_by_heads():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((2, 3, 4, 5))
    fig = attention_figure(w, TOKENS[:4], TOKENS, col_labels=["h0", "h1", "h2"])
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 6
    assert [ax.get_title() for ax in panels] == [
        "layer 0 · h0", "layer 0 · h1", "layer 0 · h2",
        "layer 1 · h0", "layer 1 · h1", "layer 1 · h2",
    ]  # fmt: skip
    norms = {(ax.get_images()[0].norm.vmin, ax.get_images()[0].norm.vmax) for ax in panels}
    assert len(norms) == 1  # one shared colour scale
    assert panels[0].get_images()[0].get_cmap().name == "RdBu_r"
    # token labels only on the outer panels
    assert len(panels[0].get_yticklabels()) == 4 and len(panels[1].get_yticklabels()) == 0
    assert len(panels[0].get_xticklabels()) == 0 and len(panels[3].get_xticklabels()) == 5


def test_size_scales_with_tokens_and_is_capped():
    small = attention_figure(np.ones((3, 3)) / 3, ["a"] * 3, ["b"] * 3)
    tokens = [f"t{i}" for i in range(40)]
    large = attention_figure(np.ones((40, 40)) / 40, tokens, tokens)
    assert (large.get_size_inches() > small.get_size_inches()).all()
    many = [f"t{i}" for i in range(300)]
    huge = attention_figure(np.ones((1, 8, 300, 300)), many, many)
    assert huge.get_size_inches().max() == pytest.approx(32.0)
    first = [ax for ax in huge.axes if ax.get_images()][0]
    assert 0 < len(first.get_xticklabels()) <= 50  # every k-th token labelled


def test_long_tokens_are_shortened():
    fig = attention_figure(np.ones((1, 1)), ["supercalifragilistic"], ["x"])
    assert fig.axes[0].get_yticklabels()[0].get_text() == "supercalifrag…"


@pytest.mark.parametrize(
    ("shape", "q", "k", "kwargs", "match"),
    [
        ((5,), 5, 5, {}, r"must be \[q_len, k_len\] or \[rows, cols, q_len, k_len\], got shape"),
        ((1, 2, 3), 2, 3, {}, r"got shape \(1, 2, 3\)"),
        ((2, 3), 3, 3, {}, r"need 2 query and 3 key tokens, got 3 and 3"),
        ((1, 2, 2, 2), 2, 2, {"row_labels": ["a", "b"]}, "needs 1 row labels and 2 column"),
    ],
)
def test_attention_figure_validates(shape, q, k, kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_figure(np.zeros(shape), ["q"] * q, ["k"] * k, **kwargs)


def test_figure_to_rgb_shape_and_dtype():
    fig = attention_figure(np.eye(3), ["a", "b", "c"], ["a", "b", "c"])
    fig.set_size_inches(4, 3)
    fig.set_dpi(50)
    rgb = figure_to_rgb(fig)
    assert rgb.shape == (150, 200, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous
    assert rgb.min() < 50 and rgb.max() == 255  # drawn, not blank


def test_unicode_tokens_render_without_warnings():
    fig = attention_figure(np.eye(2), ["日本", "😀"], ["日本", "😀"])
    assert figure_to_rgb(fig).shape[-1] == 3


def test_save_png(tmp_path):
    from matplotlib.image import imread

    fig = attention_figure(np.eye(4) * 0.5, TOKENS[:4], TOKENS[:4])
    fig.set_size_inches(5, 4)
    path = save_figure(fig, tmp_path / "att.png", dpi=40)
    assert path == tmp_path / "att.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(path).shape[:2] == (160, 200)
    save_figure(fig, tmp_path / "att_default.PNG")  # figure dpi, case-insensitive suffix
    assert imread(tmp_path / "att_default.PNG").shape[:2] == (400, 500)


def test_save_svg(tmp_path):
    fig = attention_figure(np.eye(2), ["a", "b"], ["c", "d"], title="svg")
    path = save_figure(fig, str(tmp_path / "att.svg"))
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_save_figure_errors(tmp_path):
    fig = attention_figure(np.eye(2), ["a", "b"], ["c", "d"])
    with pytest.raises(SemalignError, match=r"suffix '\.jpg' is not supported; .* \.png or \.svg"):
        save_figure(fig, tmp_path / "att.jpg")
    with pytest.raises(SemalignError, match="no suffix is not supported"):
        save_figure(fig, tmp_path / "att")
    with pytest.raises(SemalignError, match=r"folder '.*nope' does not exist"):
        save_figure(fig, tmp_path / "nope" / "att.png")
    assert list(tmp_path.iterdir()) == []
