import pytest
import torch

from tsgen.generation import DELAY_EMBEDDINGS, DelayEmbedder, ts_to_img_loop
from tsgen.generation.delay import average_by_fold, transform_speed


@pytest.mark.parametrize("trial", range(12))
def test_round_trip_is_exact_and_matches_the_loop_on_random_lengths(trial):
    g = torch.Generator().manual_seed(trial)
    length = int(torch.randint(2, 120, (1,), generator=g))
    embedding = int(torch.randint(1, length + 1, (1,), generator=g))
    delay = int(torch.randint(1, embedding + 1, (1,), generator=g))
    emb = DelayEmbedder(length, delay, embedding)
    x = torch.rand(3, length, 2, generator=g)
    img = emb.ts_to_img(x)
    assert img.shape == (3, 2, emb.size, emb.size) and img.is_contiguous()
    assert torch.equal(img, ts_to_img_loop(x, length, delay, embedding))
    assert torch.equal(emb.img_to_ts(img), x)
    assert torch.equal(emb.img_to_ts(img, inverse="first"), x)
    # every time step is in at least one pixel; padding pixels hold the pad value
    assert (emb.counts >= 1).all()
    assert (emb.ts_to_img(x, pad_value=-7.0) == -7.0).sum() == 3 * 2 * (
        emb.size**2 - len(emb.valid_pixels)
    )


def test_pixel_mapping_follows_the_definition():
    emb = DelayEmbedder(24, 3, 8)
    x = torch.arange(24.0).view(1, 24, 1)
    img = emb.ts_to_img(x, pad_value=-1)[0, 0]
    # column c starts at c * delay; the 7th column
    # is the partial one (18..23), then padding
    assert img[:, 0].tolist() == list(range(8))
    assert img[:, 5].tolist() == list(range(15, 23))
    assert img[:, 6].tolist() == [18, 19, 20, 21, 22, 23, -1, -1]
    assert img[:, 7].tolist() == [-1] * 8


def test_averaging_inverse_is_the_mean_of_the_pixels_of_each_step():
    emb = DelayEmbedder(24, 3, 8)
    img = torch.randn(4, 3, 8, 8)
    flat = img.flatten(2)
    expected = torch.stack(
        [flat[..., emb.pixel_time == t].mean(-1) for t in range(24)], -1
    ).transpose(1, 2)
    assert torch.allclose(emb.img_to_ts(img), expected, atol=1e-6)
    # the first-pixel inverse reads the leftmost column that holds the step
    assert torch.equal(emb.img_to_ts(img, "first")[:, 5], img[:, :, 5, 0])
    assert torch.equal(emb.img_to_ts(img, "first")[:, 9], img[:, :, 6, 1])


@pytest.mark.parametrize("length", sorted(DELAY_EMBEDDINGS))
def test_paper_configurations_give_the_published_image_sizes(length):
    delay, embedding = DELAY_EMBEDDINGS[length]
    assert (
        DelayEmbedder(length, delay, embedding).size == {24: 8, 96: 16, 768: 64}[length]
    )


def test_bad_input_is_rejected():
    emb = DelayEmbedder(24, 3, 8)
    with pytest.raises(ValueError, match="expected series"):
        emb.ts_to_img(torch.zeros(2, 23, 1))
    with pytest.raises(ValueError, match="expected images"):
        emb.img_to_ts(torch.zeros(2, 1, 7, 7))
    with pytest.raises(ValueError, match="unknown inverse"):
        emb.img_to_ts(torch.zeros(2, 1, 8, 8), inverse="median")
    with pytest.raises(ValueError, match="cannot exceed"):
        DelayEmbedder(4, 1, 8)
    with pytest.raises(ValueError, match="skip time steps"):
        DelayEmbedder(24, 9, 8)


def _mean_of_each_step(emb, img):
    """The averaging inverse by its definition: the plain mean of the pixels of each step."""
    flat = img.double().flatten(2)
    return torch.stack(
        [flat[..., emb.pixel_time == t].mean(-1) for t in range(emb.length)], -1
    ).transpose(1, 2)


@pytest.mark.parametrize(
    "length, delay, embedding",
    [(768, 12, 64), (96, 6, 16), (50, 7, 9), (30, 1, 4), (12, 12, 12), (40, 5, 5)],
)
def test_inverses_follow_the_definitions_on_generated_like_images(
    length, delay, embedding
):
    # full and partial last columns, delay 1, delay == embedding, one column
    emb = DelayEmbedder(length, delay, embedding)
    g = torch.Generator().manual_seed(length)
    img = torch.randn(2, 3, emb.size, emb.size, generator=g)
    average = emb.img_to_ts(img)
    assert average.shape == (2, length, 3) and average.is_contiguous()
    assert torch.allclose(average.double(), _mean_of_each_step(emb, img), atol=1e-6)
    assert torch.allclose(average_by_fold(emb, img), average, atol=1e-5)
    # the first-pixel inverse reads the leftmost column holding each step
    flat = img.flatten(2)
    for t in range(length):
        column = max(0, -(-(t - embedding + 1) // delay))
        pixel = (t - column * delay) * emb.size + column
        assert emb.pixel_time[pixel] == t
        assert torch.equal(emb.img_to_ts(img, "first")[:, t], flat[..., pixel])


def test_transforms_accept_any_layout_dtype_and_keep_gradients():
    emb = DelayEmbedder(96, 6, 16)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 96, generator=g, dtype=torch.float64).transpose(1, 2)
    assert not x.is_contiguous()
    img = emb.ts_to_img(x)
    assert img.dtype == torch.float64
    assert torch.equal(img, ts_to_img_loop(x, 96, 6, 16))
    flipped = img.transpose(2, 3).contiguous().transpose(2, 3)  # same values
    assert torch.equal(emb.img_to_ts(flipped), x)
    assert torch.equal(emb.img_to_ts(flipped, "first"), x)
    # each step is copied into counts[t] pixels, and averaged back with weights 1/counts
    x = x.detach().float().requires_grad_()
    emb.ts_to_img(x).sum().backward()
    assert torch.equal(x.grad, emb.counts.float().view(1, -1, 1).expand_as(x))
    img = torch.rand(2, 3, emb.size, emb.size, requires_grad=True)
    emb.img_to_ts(img).sum().backward()
    weights = torch.zeros(emb.size * emb.size)
    weights[emb.valid_pixels] = 1 / emb.counts[emb.pixel_time[emb.valid_pixels]]
    assert torch.allclose(img.grad, weights.view(emb.size, emb.size).expand_as(img))


def test_transform_speed_times_every_operation_against_the_copy():
    timings = transform_speed(batch=4, n_features=2, presets={24: (3, 8)}, repeats=2)
    assert list(timings["operation"]) == [
        "image copy",
        "ts_to_img",
        "img_to_ts average",
        "img_to_ts first",
        "loop (released code)",
        "F.fold average",
    ]
    assert (timings["ms"] > 0).all() and (timings["length"] == 24).all()
    assert timings["per_copy"].iloc[0] == 1.0
    assert timings.attrs["clock"] in ("thread CPU time", "wall clock")
    # a baseline class (here the same one) adds its three transforms, checked alike
    with_baseline = transform_speed(
        batch=4, n_features=2, presets={24: (3, 8)}, repeats=1, baseline=DelayEmbedder
    )
    assert len(with_baseline) == 9
    with pytest.raises(ValueError, match="repeats"):
        transform_speed(repeats=0)
