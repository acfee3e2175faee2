import pytest

from tsgen.generation import GenerationConfig


def test_presets_and_json_round_trip():
    config = GenerationConfig.paper(96, 6)
    assert (config.delay, config.embedding, config.epochs, config.lr) == (
        6,
        16,
        1000,
        1e-4,
    )
    assert GenerationConfig.from_json(config.to_json()) == config
    assert isinstance(GenerationConfig.from_json(config.to_json()).unet_channels, tuple)
    assert GenerationConfig.build(
        24, 3, paper=False, epochs=5
    ) == GenerationConfig.for_length(24, 3, epochs=5)
    # an integral float is normalised
    assert GenerationConfig(batch_size=16.0).batch_size == 16


def test_read_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    GenerationConfig(epochs=7).to_json(path)
    assert GenerationConfig.read(path).epochs == 7
    path.write_text('{"lenght": 24}')
    with pytest.raises(ValueError, match="config.json.*unknown field"):
        GenerationConfig.read(path)


@pytest.mark.parametrize(
    "fields,message",
    [
        (dict(batch_size=2.5, sampling_steps=3.7), "must be a positive integer"),
        (dict(length="24"), "length must be a positive integer"),
        (dict(epochs=True), "epochs must be an integer >= 0"),
        (dict(sigma_data=0), "sigma_data must be a finite positive number"),
        (dict(lr=float("nan")), "lr must be a finite positive number"),
        (dict(masked=1), "masked must be True or False"),
        (dict(ema_decay=1.0), r"ema_decay must be in \[0, 1\)"),
        (dict(tst_dropout=-0.1), "tst_dropout"),
        (dict(completion="mean"), "completion='mean' is not supported"),
        (dict(tst_norm="GroupNorm"), "tst_norm"),
        (dict(seed=-1), "seed"),
        (
            dict(unet_channels=(8,), unet_attention=(False, True)),
            "one entry per resolution level",
        ),
        (dict(unet_channels=(8.5, 16)), "unet_channels must be positive integers"),
        (dict(unet_attention=(0, 1)), "unet_attention must be True or False"),
        (dict(embedding=30), "cannot exceed length"),
        (dict(delay=9), "would skip time steps"),
        (dict(tst_d_model=10, tst_heads=3), "divisible"),
        (dict(sigma_min=90.0), "sigma_min < sigma_max"),
    ],
)
def test_bad_fields_are_clear_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**fields)


def test_unknown_fields_and_lengths_without_a_preset():
    with pytest.raises(ValueError, match="unknown field"):
        GenerationConfig.from_dict({"lenght": 24})
    with pytest.raises(ValueError, match="no delay embedding preset"):
        GenerationConfig.for_length(50, 1)
    with pytest.raises(ValueError, match="no delay embedding preset"):
        GenerationConfig.paper(50, 1)
