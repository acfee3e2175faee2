import pytest
import torch

from tsgen.generation import DELAY_EMBEDDINGS, DelayEmbedder, ts_to_img_loop


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
